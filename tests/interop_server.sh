#!/bin/sh
# interop_server.sh - our servers against clients that share no code with
# them:
#   1. examples/echo_server against CPython 3.13 asyncio clients (three at
#      once, asyncio.gather) and against socat;
#   2. SIGTERM with a client still connected: the client sees EOF and the
#      server exits 0 within 2 s;
#   3. examples/echo_server --raw against socat: binary bytes, no lines;
#   4. examples/you_said and examples/chat_server, PORT mode, against
#      asyncio clients, then SIGTERM (exit 0 within 2 s).
# Servers listen on port 0 and print "PORT n".  PYTHON313 comes from
# configure; a missing interpreter or socat is a failure, not a skip.
set -u
: "${PYTHON313:=}"
srcdir=${srcdir:-.}
if [ -z "$PYTHON313" ] || ! "$PYTHON313" -c 'import sys; assert sys.version_info[:2] == (3, 13)' 2>/dev/null; then
    echo "interop_server: FAIL: CPython 3.13 not found (PYTHON313='$PYTHON313')." >&2
    echo "  Install it (pyenv install 3.13.0) and re-run configure, or configure PYTHON313=/path/to/python3.13." >&2
    exit 1
fi
if ! command -v socat >/dev/null 2>&1; then
    echo "interop_server: FAIL: socat not found; install it (apt-get install socat)." >&2
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
    echo "interop_server: FAIL: $*"
    status=1
}

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
    echo "interop_server: $name did not start:"
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
    wait "$2"
    rc=$?
    if [ $rc -ne 0 ]; then
        fail "$1 exited with status $rc after SIGTERM:"
        cat "$tmp/$1.out"
    else
        echo "ok: $1 exited 0 after SIGTERM"
    fi
}

py_version=$("$PYTHON313" -c 'import platform; print(platform.python_version())')

# 1. The seed's three asyncio clients, then socat, against the line echo.
start echo_server ./examples/echo_server 0
echo_pid=$pid
if out=$("$PYTHON313" "$srcdir/tests/interop_echo_clients.py" echo "$port" 2>&1) &&
   [ "$(printf '%s\n' "$out" | grep -c '^ok: ')" -eq 3 ]; then
    echo "ok: three CPython $py_version asyncio clients at once against echo_server"
else
    fail "asyncio clients against echo_server:"; printf '%s\n' "$out"
fi
printf 'one\ntwo\nthree, no newline' >"$tmp/lines.in"
socat -t 10 - "TCP:127.0.0.1:$port" <"$tmp/lines.in" >"$tmp/lines.got" 2>"$tmp/socat.err"
if cmp -s "$tmp/lines.in" "$tmp/lines.got"; then
    echo "ok: socat against echo_server (lines, the last one unterminated)"
else
    fail "socat against echo_server: sent 'one two three', got:"; cat "$tmp/lines.got" "$tmp/socat.err"
fi

# 2. SIGTERM while a client is connected: it must see EOF.
"$PYTHON313" "$srcdir/tests/interop_echo_clients.py" hold "$port" >"$tmp/hold.out" 2>&1 &
hold_pid=$!
pids="$pids $hold_pid"
i=0
while [ $i -lt 100 ] && ! grep -q '^HELD$' "$tmp/hold.out"; do sleep 0.1; i=$((i + 1)); done
grep -q '^HELD$' "$tmp/hold.out" || fail "the holding client did not connect: $(cat "$tmp/hold.out")"
stop echo_server "$echo_pid"
if wait "$hold_pid" && grep -q '^EOF$' "$tmp/hold.out"; then
    echo "ok: the connected client saw EOF on shutdown"
else
    fail "the connected client did not see a clean EOF:"; cat "$tmp/hold.out"
fi
grep -q 'SIGTERM, shutting down' "$tmp/echo_server.out" ||
    fail "echo_server did not report the signal: $(cat "$tmp/echo_server.out")"

# 3. --raw: 300 KB of binary bytes (NULs, no line structure), with backpressure.
start echo_raw ./examples/echo_server --raw 127.0.0.1 0
head -c 300000 /dev/urandom >"$tmp/raw.in" 2>/dev/null ||
    dd if=/dev/urandom of="$tmp/raw.in" bs=1000 count=300 2>/dev/null
socat -t 10 - "TCP:127.0.0.1:$port" <"$tmp/raw.in" >"$tmp/raw.got" 2>"$tmp/socat.err"
if cmp -s "$tmp/raw.in" "$tmp/raw.got"; then
    echo "ok: socat against echo_server --raw (300000 random bytes)"
else
    fail "socat against echo_server --raw: $(wc -c <"$tmp/raw.got") of 300000 bytes came back"
    cat "$tmp/socat.err"
fi
stop echo_raw "$pid"

# 4. you_said and chat_server in PORT mode.
start you_said ./examples/you_said 0
if out=$("$PYTHON313" "$srcdir/tests/interop_line_clients.py" you_said "$port" 2>&1) &&
   [ "$(printf '%s\n' "$out" | grep -c '^ok: ')" -eq 2 ]; then
    echo "ok: two asyncio clients against you_said"
else
    fail "asyncio clients against you_said:"; printf '%s\n' "$out"
fi
stop you_said "$pid"

start chat_server ./examples/chat_server 0
if out=$("$PYTHON313" "$srcdir/tests/interop_line_clients.py" chat "$port" 2>&1) &&
   printf '%s\n' "$out" | grep -q '^ok: '; then
    echo "$out"
else
    fail "asyncio clients against chat_server:"; printf '%s\n' "$out"
fi
stop chat_server "$pid"
exit $status
