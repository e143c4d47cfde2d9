#!/bin/sh
# tls_examples.sh - chapter 14's examples against peers that share no code
# with them, with certificates from tests/tls_certs.sh (a test CA):
#   1. examples/https_status against a CPython 3.13 HTTPS server: the CA
#      given with --cafile, or through SSL_CERT_FILE for the default trust
#      store; without it, verification fails; a 503 is reported as down;
#   2. examples/tls_echo_server against three CPython asyncio TLS clients
#      at once, then SIGTERM (exit 0 within 2 s);
#   3. examples/tls_echo_server --starttls against an asyncio client that
#      upgrades with writer.start_tls(), and one that does not.
# PYTHON313 comes from configure; a missing interpreter or openssl program
# is a failure, not a skip.
set -u
: "${PYTHON313:=}"
srcdir=${srcdir:-.}
if [ -z "$PYTHON313" ] || ! "$PYTHON313" -c 'import sys; assert sys.version_info[:2] == (3, 13)' 2>/dev/null; then
    echo "tls_examples: FAIL: CPython 3.13 not found (PYTHON313='$PYTHON313')." >&2
    exit 1
fi
if ! command -v openssl >/dev/null 2>&1; then
    echo "tls_examples: FAIL: the openssl program is needed to make the test certificates." >&2
    exit 1
fi

tmp=$(mktemp -d) || exit 1
pids=
cleanup() {
    for p in $pids; do kill -KILL "$p" 2>/dev/null; done
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM
status=0
fail() {
    echo "tls_examples: FAIL: $*"
    status=1
}

if ! sh "$srcdir/tests/tls_certs.sh" "$tmp/certs" >"$tmp/certs.log" 2>&1; then
    echo "tls_examples: FAIL: tls_certs.sh:"; cat "$tmp/certs.log"
    exit 1
fi
ca=$tmp/certs/ca.pem
peers=$srcdir/tests/tls_example_peers.py

# start NAME PROGRAM ARGS...: run a server in the background, output in
# $tmp/NAME.out; sets $pid and $port.
start() {
    name=$1
    shift
    "$@" >"$tmp/$name.out" 2>&1 &
    pid=$!
    pids="$pids $pid"
    i=0
    port=
    while [ $i -lt 100 ]; do
        port=$(sed -n 's/^PORT \([0-9][0-9]*\)$/\1/p' "$tmp/$name.out" | head -n 1)
        [ -n "$port" ] && return 0
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
        i=$((i + 1))
    done
    echo "tls_examples: $name did not start:"
    cat "$tmp/$name.out"
    exit 1
}

# stop NAME PID: SIGTERM; the server must exit with status 0 within 2 s.
stop() {
    kill -TERM "$2" 2>/dev/null
    i=0
    while [ $i -lt 20 ] && kill -0 "$2" 2>/dev/null; do
        sleep 0.1
        i=$((i + 1))
    done
    if kill -0 "$2" 2>/dev/null; then
        fail "$1 still running 2 s after SIGTERM"
        kill -KILL "$2" 2>/dev/null
        wait "$2" 2>/dev/null
        return
    fi
    if wait "$2"; then
        echo "ok: $1 exited 0 after SIGTERM"
    else
        fail "$1 did not exit 0 after SIGTERM:"; cat "$tmp/$1.out"
    fi
}

# expect WHAT RC PATTERN CMD...: CMD exits RC and prints PATTERN (grep -E).
expect() {
    what=$1 want_rc=$2 pattern=$3
    shift 3
    out=$("$@" 2>&1)
    rc=$?
    if [ "$rc" -eq "$want_rc" ] && printf '%s\n' "$out" | grep -Eq "$pattern"; then
        echo "ok: $what"
    else
        fail "$what: exit $rc (wanted $want_rc), output:"; printf '%s\n' "$out"
    fi
}

# 1. https_status against an HTTPS server.
start https "$PYTHON313" "$peers" https "$tmp/certs/server.pem" "$tmp/certs/server.key" 200
expect "https_status --cafile: the status line" 0 '^localhost: HTTP/1\.1 200 OK$' \
    ./examples/https_status --cafile "$ca" localhost "$port"
expect "https_status without the test CA: verification fails" 1 \
    'localhost: \[SSL: CERTIFICATE_VERIFY_FAILED\] certificate verify failed' \
    ./examples/https_status localhost "$port"
expect "https_status with SSL_CERT_FILE: the default trust store" 0 '^localhost: HTTP/1\.1 200 OK$' \
    env SSL_CERT_FILE="$ca" ./examples/https_status localhost "$port"
kill -TERM "$pid" 2>/dev/null
start https503 "$PYTHON313" "$peers" https "$tmp/certs/server.pem" "$tmp/certs/server.key" 503
expect "https_status: a 503 is down" 1 '^localhost: HTTP/1\.1 503 ' \
    ./examples/https_status --cafile "$ca" localhost "$port"
kill -TERM "$pid" 2>/dev/null

# 2. tls_echo_server: ssl= on start_server.
start tls_echo ./examples/tls_echo_server "$tmp/certs/server.pem" "$tmp/certs/server.key" 0
expect "three asyncio TLS clients at once against tls_echo_server" 0 'ok: client 2 echoed over TLSv1\.3' \
    "$PYTHON313" "$peers" echo "$port" "$ca"
stop tls_echo "$pid"

# 3. tls_echo_server --starttls: start_tls on a live connection.
start tls_starttls ./examples/tls_echo_server --starttls "$tmp/certs/server.pem" "$tmp/certs/server.key" 0
expect "STARTTLS with an asyncio client (writer.start_tls)" 0 'refused' \
    "$PYTHON313" "$peers" starttls "$port" "$ca"
stop tls_starttls "$pid"

exit $status
