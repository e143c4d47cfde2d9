#!/bin/sh
# autogen.sh - install what the build and `make check` need, then bootstrap
# and configure.
#
# Run as root on Debian/Ubuntu, it installs the missing packages with apt-get;
# otherwise it prints the exact command to run.  Extra arguments go to
# ./configure (for example --enable-sanitizers).
set -e
cd "$(dirname "$0")"

# command-to-look-for:debian-package
# The last two are test peers: make check runs socat against the servers,
# and openssl s_server / s_client against TLS (which also makes its
# certificates).
needs="autoreconf:autoconf automake:automake libtoolize:libtool pkg-config:pkg-config make:make cc:gcc swig:swig socat:socat openssl:openssl"
missing=""
for pair in $needs; do
    cmd=${pair%%:*}; pkg=${pair#*:}
    command -v "$cmd" >/dev/null 2>&1 || missing="$missing $pkg"
done
# Check is a library: ask pkg-config (if present) or dpkg.
if ! { command -v pkg-config >/dev/null 2>&1 && pkg-config --exists check; }; then
    missing="$missing check"
fi
# TLS: OpenSSL's headers and libraries (configure --without-openssl builds
# without them, and every TLS call then says AS_ENOTSUP).
if ! { command -v pkg-config >/dev/null 2>&1 && pkg-config --exists openssl; }; then
    missing="$missing libssl-dev"
fi

# The Python binding needs the headers of the Python it is built for
# ($PYTHON, else python3).  Debian's python3-dev provides them for
# /usr/bin/python3; a pyenv or venv Python ships its own.
py=${PYTHON:-python3}
if command -v "$py" >/dev/null 2>&1 &&
   ! "$py" -c 'import os, sys, sysconfig; sys.exit(not os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h")))' 2>/dev/null; then
    missing="$missing python3-dev"
fi

# The Lua binding: Lua 5.4's headers (pkg-config lua5.4) and interpreter.
command -v lua5.4 >/dev/null 2>&1 || missing="$missing lua5.4"
if ! { command -v pkg-config >/dev/null 2>&1 && pkg-config --exists lua5.4; }; then
    missing="$missing liblua5.4-dev"
fi

if [ -n "$missing" ]; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "autogen.sh: installing:$missing"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $missing
    else
        echo "autogen.sh: missing:$missing" >&2
        echo "autogen.sh: install them with:  sudo apt-get install$missing" >&2
        exit 1
    fi
fi

mkdir -p m4
autoreconf -fi
./configure "$@"
