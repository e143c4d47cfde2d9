#!/bin/sh
# interop_python.sh - our clients against CPython 3.13 peers:
#   1. examples/echo_client against an asyncio echo server (start_server);
#   2. examples/fetch_page against `python3 -m http.server` on 127.0.0.1.
# Ports are chosen by the OS (port 0) and read back from the servers.
# PYTHON313 comes from configure (AC_PATH_PROGS python3.13); a missing
# interpreter is a failure, not a skip.
set -u
: "${PYTHON313:=}"
srcdir=${srcdir:-.}
if [ -z "$PYTHON313" ] || ! "$PYTHON313" -c 'import sys; assert sys.version_info[:2] == (3, 13)' 2>/dev/null; then
    echo "interop_python: FAIL: CPython 3.13 not found (PYTHON313='$PYTHON313')." >&2
    echo "  Install it (pyenv install 3.13.0) and re-run configure, or configure PYTHON313=/path/to/python3.13." >&2
    exit 1
fi

tmp=$(mktemp -d) || exit 1
pids=
cleanup() {
    for p in $pids; do kill "$p" 2>/dev/null; done
    rm -rf "$tmp"
}
trap cleanup EXIT INT TERM
status=0

# Wait until $1 contains a line matching $2; print the match.
wait_line() {
    i=0
    while [ $i -lt 100 ]; do
        m=$(grep -E "$2" "$1" 2>/dev/null | head -n 1)
        if [ -n "$m" ]; then echo "$m"; return 0; fi
        sleep 0.1
        i=$((i + 1))
    done
    return 1
}

# 1. Echo client against CPython's asyncio echo server.
"$PYTHON313" -u "$srcdir/tests/interop_echo_server.py" >"$tmp/echo.out" 2>&1 &
pids="$pids $!"
line=$(wait_line "$tmp/echo.out" '^PORT [0-9]+$') || { echo "echo server did not start:"; cat "$tmp/echo.out"; exit 1; }
port=${line#PORT }
msg="interop with CPython asyncio"
out=$(./examples/echo_client 127.0.0.1 "$port" "$msg" 2>&1)
if [ $? -ne 0 ] || ! printf '%s\n' "$out" | grep -qxF "Received: '$msg'"; then
    echo "interop_python: FAIL: echo client against asyncio server:"; printf '%s\n' "$out"
    status=1
else
    echo "ok: echo_client against CPython $("$PYTHON313" -c 'import platform; print(platform.python_version())') asyncio.start_server"
fi

# 2. fetch_page against python3 -m http.server.
mkdir "$tmp/www"
i=0
while [ $i -lt 200 ]; do echo "line $i of the test page"; i=$((i + 1)); done >"$tmp/www/page.txt"
size=$(wc -c <"$tmp/www/page.txt" | tr -d ' ')
"$PYTHON313" -u -m http.server --bind 127.0.0.1 --directory "$tmp/www" 0 >"$tmp/http.out" 2>&1 &
pids="$pids $!"
line=$(wait_line "$tmp/http.out" 'port [0-9]+') || { echo "http.server did not start:"; cat "$tmp/http.out"; exit 1; }
port=$(echo "$line" | sed -E 's/.* port ([0-9]+).*/\1/')
out=$(./examples/fetch_page 127.0.0.1 "$port" /page.txt 2>&1)
if [ $? -ne 0 ] || ! printf '%s\n' "$out" | grep -q "^HTTP header> HTTP/1.0 200 OK" ||
   ! printf '%s\n' "$out" | grep -qx "body: $size bytes"; then
    echo "interop_python: FAIL: fetch_page against http.server (expected body: $size bytes):"; printf '%s\n' "$out"
    status=1
else
    echo "ok: fetch_page against python -m http.server ($size bytes)"
fi
exit $status
