#!/bin/sh
# bulk_run.sh - the connection benchmarks, in one session:
#   1. bulk transfer: 1 GiB through write+drain / readexactly, against a
#      plain blocking read/write loop (bench/bulk_transfer);
#   2. pipelined line protocol, depth 16: system calls per line of our
#      server with write coalescing on and off (strace -c), and lines/s
#      without strace.
#
#   bench/bulk_run.sh [MiB] [lines]     (defaults: 1024 MiB, 200000 lines)
# Build first: make bench/bulk_transfer bench/bulk_lines
set -eu
mib=${1:-1024}
lines=${2:-200000}
B=${B:-./bench}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

"$B/bulk_transfer" "$mib" 3

start_server() { # $1 = coalesce, $2 = strace or not
    if [ "$2" = strace ]; then
        strace -f -c -o "$tmp/strace.$1" "$B/bulk_lines" server "$1" >"$tmp/port" 2>"$tmp/err" &
    else
        "$B/bulk_lines" server "$1" >"$tmp/port" 2>"$tmp/err" &
    fi
    spid=$!
    i=0
    while ! grep -q PORT "$tmp/port" 2>/dev/null; do
        sleep 0.05; i=$((i + 1)); [ $i -lt 200 ] || { echo "server did not start"; exit 1; }
    done
    port=$(sed -n 's/^PORT //p' "$tmp/port")
}

echo "pipelined line protocol, 64-byte lines, depth 16, $lines lines"
for c in 1 0 1 0; do
    start_server "$c" plain
    printf 'coalescing %s: ' "$c"; "$B/bulk_lines" client "$port" "$lines" 16
    wait "$spid"
done
for c in 1 0; do
    start_server "$c" strace
    "$B/bulk_lines" client "$port" "$lines" 16 >/dev/null
    wait "$spid"
    calls=$(awk '$NF == "total" { print $(NF-2) }' "$tmp/strace.$c")
    echo "coalescing $c: $calls system calls for $lines lines = $(echo "scale=3; $calls / $lines" | bc) per line"
    sort -k4 -n -r "$tmp/strace.$c" | awk 'NR<=6 && $NF != "total" && $NF != "syscall"' | sed 's/^/    /'
done
