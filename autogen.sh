#!/bin/sh
# autogen.sh - install what the build needs, then bootstrap and configure.
#
# Run as root on Debian/Ubuntu, it installs the missing packages with apt-get;
# otherwise it prints the exact command to run.  Extra arguments go to
# ./configure (for example --enable-sanitizers).
set -e
cd "$(dirname "$0")"

# command-to-look-for:debian-package
needs="autoreconf:autoconf automake:automake libtoolize:libtool pkg-config:pkg-config make:make cc:gcc"
missing=""
for pair in $needs; do
    cmd=${pair%%:*}; pkg=${pair#*:}
    command -v "$cmd" >/dev/null 2>&1 || missing="$missing $pkg"
done
# Check is a library: ask pkg-config (if present) or dpkg.
if ! { command -v pkg-config >/dev/null 2>&1 && pkg-config --exists check; }; then
    missing="$missing check"
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
