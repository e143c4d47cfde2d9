#!/bin/sh
# tls_certs.sh DIR - make the certificates the TLS tests use, in DIR, at
# test time (nothing here is checked in).  Needs the openssl program.
#
#   ca.pem / ca.key          a test CA (the one the tests trust)
#   other-ca.pem             a second CA, trusted by nobody's server
#   server.pem / server.key  localhost, 127.0.0.1 and ::1, signed by ca
#   client.pem / client.key  a client certificate (mutual TLS), signed by ca
#   self.pem / self.key      localhost, self-signed
#   expired.pem / expired.key  localhost, signed by ca, expired in 2020
#   other.pem / other.key    localhost, signed by other-ca
#
# P-256 keys: quick to make, and what a modern server would use.  The
# extensions satisfy X509_V_FLAG_X509_STRICT, which CPython 3.13's default
# context turns on, as our client does.
set -e
d=${1:?usage: tls_certs.sh DIR}
mkdir -p "$d"
cd "$d"

cat > certs.cnf <<CNF
[ req ]
distinguished_name = dn
prompt = no
[ dn ]
CN = asyncstreams test
[ ca_ext ]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
[ server_ext ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1, IP:::1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ client_ext ]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[ ca ]
default_ca = test_ca
[ test_ca ]
database = index.txt
new_certs_dir = .
serial = serial
default_md = sha256
policy = any
copy_extensions = none
x509_extensions = server_ext
[ any ]
commonName = supplied
CNF

key() {
    openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null
}

# A CA: self-signed, by `openssl req -x509`.
make_ca() { # name subject
    key "$1.key"
    openssl req -x509 -config certs.cnf -extensions ca_ext -key "$1.key" \
        -subj "$2" -days 2 -out "$1.pem" 2>/dev/null
}

# A leaf signed by a CA, by `openssl req -x509 -CA`.
make_leaf() { # name ca extensions subject
    key "$1.key"
    openssl req -x509 -config certs.cnf -extensions "$3" -key "$1.key" \
        -CA "$2.pem" -CAkey "$2.key" -subj "$4" -days 2 -out "$1.pem" 2>/dev/null
}

make_ca ca "/CN=asyncstreams test CA"
make_ca other-ca "/CN=asyncstreams other CA"
make_leaf server ca server_ext "/CN=localhost"
make_leaf client ca client_ext "/CN=test client"
make_leaf other other-ca server_ext "/CN=localhost"

key self.key
openssl req -x509 -config certs.cnf -extensions server_ext -key self.key \
    -subj "/CN=localhost" -days 2 -out self.pem 2>/dev/null

# Expired: `openssl ca` is the one tool that takes explicit dates.
key expired.key
openssl req -new -config certs.cnf -key expired.key -subj "/CN=localhost" \
    -out expired.csr 2>/dev/null
: > index.txt
echo 01 > serial
openssl ca -batch -config certs.cnf -cert ca.pem -keyfile ca.key \
    -in expired.csr -out expired.pem -notext \
    -startdate 20200101000000Z -enddate 20200102000000Z 2>/dev/null
