#!/bin/sh
# check_reader_cpython.sh - differential test of the StreamReader against
# CPython 3.13's (tests/reader_diff.py): random scripts of feeds, reads,
# cancels and errors must give identical results, errors and buffers.
# Skipped (exit 77) when no CPython 3.13 is found; set PYTHON313 to choose.
top=${top_srcdir:-.}
py=${PYTHON313:-}
if [ -z "$py" ]; then
    for c in python3.13 "$HOME/.pyenv/versions/3.13.0/bin/python3"; do
        if command -v "$c" >/dev/null 2>&1 &&
           "$c" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 13))' 2>/dev/null; then
            py=$c
            break
        fi
    done
fi
if [ -z "$py" ]; then
    echo "check_reader_cpython: no CPython 3.13 found: SKIP" >&2
    exit 77
fi
exec "$py" "$top/tests/reader_diff.py" ./tests/reader_trace "${READER_DIFF_COUNT:-400}"
