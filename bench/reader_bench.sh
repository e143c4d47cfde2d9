#!/bin/sh
# reader_bench.sh - run the StreamReader benchmark in C and in CPython 3.13,
# interleaved, in one session, and print the results side by side.
#
#   bench/reader_bench.sh [MiB] [runs]      (defaults: 1024 MiB, 3 runs)
#
# Needs the C benchmark built (`make bench/reader_bench`) and python3.13
# (pyenv 3.13.0 by default; set PYTHON to override).  Both sides get the same
# glibc malloc settings, so CPython's 256 KiB-ish allocations do not pay
# mmap/munmap per chunk (see reference/performance.md, section 5).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
mib=${1:-1024}
runs=${2:-3}
PYTHON=${PYTHON:-$HOME/.pyenv/versions/3.13.0/bin/python3}
BENCH=${BENCH:-./bench/reader_bench}
export MALLOC_MMAP_THRESHOLD_=268435456 MALLOC_TRIM_THRESHOLD_=268435456

for mode in readline readexactly; do
    i=0
    while [ "$i" -lt "$runs" ]; do
        "$BENCH" "$mode" "$mib"
        "$PYTHON" "$here/reader_bench.py" "$mode" "$mib"
        i=$((i + 1))
    done
done
