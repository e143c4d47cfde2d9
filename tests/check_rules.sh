#!/bin/sh
# check_rules.sh - every "rule N" cross-reference in the tree must name a
# numbered rule that exists: "loop.h rule 3" an item 3 of loop.h's
# Lifetimes list, "design rule 4" an item 4 of the rules in docs/design.md,
# a bare "rule 2" in lib/X.c an item 2 of lib/X.h's list (tests/rules.awk
# says exactly what counts).  Run by `make check`, which sets $top_srcdir
# so VPATH builds read the source tree.
#
# The files are found, not listed: whatever is added under the directories
# below is checked too.  The checker's own files are left out, because they
# quote broken references on purpose.
#
#   tests/check_rules.sh        exit 1, naming file and line, on any
#                               dangling reference or misnumbered list
#   tests/check_rules.sh --list also print every reference and the rule
#                               it was resolved to
#
# POSIX sh, find and awk only.
set -u

listrefs=0
case ${1-} in
    '') ;;
    --list) listrefs=1 ;;
    *) echo "usage: $0 [--list]" >&2; exit 2 ;;
esac

top=${top_srcdir:-.}
here=$(dirname "$0")
script=$here/rules.awk
[ -f "$script" ] || script=$top/tests/rules.awk
if [ ! -f "$script" ]; then
    echo "check_rules: cannot find rules.awk next to $0 or in $top/tests" >&2
    exit 2
fi
AWK=${AWK:-awk}

list=./check_rules.files.$$
trap 'rm -f "$list"' EXIT INT TERM
: > "$list" || exit 2
for d in lib bindings examples tutorial docs tests; do
    [ -d "$top/$d" ] || continue
    # Build products (.deps, .libs, a staged package) are not sources.
    find "$top/$d" \( -name '.?*' -o -name pkg \) -prune -o -type f \
        \( -name '*.[ch]' -o -name '*.i' -o -name '*.py' -o -name '*.md' \
           -o -name '*.sh' -o -name '*.awk' -o -name '*.dot' -o -name '*.in' \) \
        -print >> "$list"
done
[ -f "$top/README.md" ] && echo "$top/README.md" >> "$list"

files=$(grep -v -e '/tests/check_rules\.sh$' -e '/tests/check_rules_selftest\.sh$' \
             -e '/tests/rules\.awk$' "$list" | sort)
if [ -z "$files" ]; then
    echo "check_rules: no files found under $top (is top_srcdir right?)" >&2
    exit 1
fi

# File names in this tree have no blanks, so word splitting is safe here.
# shellcheck disable=SC2086
if out=$("$AWK" -v top="$top" -v listrefs="$listrefs" -f "$script" $files); then
    status=0
else
    status=1
fi
[ "$listrefs" = 1 ] && printf '%s\n' "$out" | sed 1d
if [ "$status" -eq 0 ]; then
    set -- $(printf '%s\n' "$out" | sed -n 1p)
    echo "check_rules: ${2-0} references to ${4-0} rule lists in ${6-0} files all hold"
else
    echo "check_rules: FAILED; see the messages above" >&2
fi
exit $status
