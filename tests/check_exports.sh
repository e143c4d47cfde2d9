#!/bin/sh
# check_exports.sh - design rule 13: the shared library exports only the
# public as_* names; an internal as__* name (or any other) in its dynamic
# symbol table fails, named.  Run by `make check` from the build tree.
# Skipped (77) only where there is no shared library to look at (a
# --disable-shared build) or no nm.
set -u

lib=lib/.libs/libasyncstreams.so
[ -f "$lib" ] || { echo "check_exports: no $lib (static-only build)"; exit 77; }
command -v nm > /dev/null 2>&1 || { echo "check_exports: no nm"; exit 77; }

names=$(nm -D --defined-only "$lib" | awk 'NF == 3 { print $3 }') || exit 1
if [ -z "$names" ]; then
    echo "check_exports: $lib exports nothing (nm failed?)" >&2
    exit 1
fi
bad=$(printf '%s\n' "$names" | grep -v '^as_[a-z]')
if [ -n "$bad" ]; then
    echo "check_exports: $lib exports names outside as_*:" >&2
    printf '  %s\n' $bad >&2
    exit 1
fi
echo "check_exports: $(printf '%s\n' "$names" | wc -l) names, all as_*"
