#!/bin/sh
# reader_bench.sh - run the StreamReader benchmark in C and in CPython 3.13,
# interleaved, in one session, and print the results side by side.
#
#   bench/reader_bench.sh [MiB] [runs]      (defaults: 1024 MiB, 3 runs)
#
# Run it from the top of a built tree (`make` first): it compiles
# bench/reader_bench.c into bench/out/ against lib/.libs/libasyncstreams.a,
# with -O2 like the library.  Needs python3.13 (pyenv 3.13.0 by default;
# set PYTHON to override).  Both sides get the same
# glibc malloc settings, so CPython's 256 KiB-ish allocations do not pay
# mmap/munmap per chunk (they are above glibc's 128 KiB mmap threshold,
# so by default each one maps, remaps and unmaps fresh pages).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
mib=${1:-1024}
runs=${2:-3}
PYTHON=${PYTHON:-$HOME/.pyenv/versions/3.13.0/bin/python3}
OUT=${OUT:-bench/out}
LIBA=${LIBA:-lib/.libs/libasyncstreams.a}
if [ ! -f "$LIBA" ]; then
    echo "reader_bench.sh: $LIBA not found: run make first (from the build tree)" >&2
    exit 1
fi
mkdir -p "$OUT"
BENCH=$OUT/reader_bench
${CC:-cc} -std=c99 -D_POSIX_C_SOURCE=200809L -O2 -g -Wall -Wextra \
    -I"$here/../lib" -o "$BENCH" "$here/reader_bench.c" "$LIBA" -pthread
export MALLOC_MMAP_THRESHOLD_=268435456 MALLOC_TRIM_THRESHOLD_=268435456

for mode in readline readexactly; do
    i=0
    while [ "$i" -lt "$runs" ]; do
        "$BENCH" "$mode" "$mib"
        "$PYTHON" "$here/reader_bench.py" "$mode" "$mib"
        i=$((i + 1))
    done
done
