#!/bin/sh
# check_listings.sh - every code listing in tutorial/*.md must equal the
# region of the example file it names (see tests/listings.awk for the marker
# format).  Run by `make check`, which sets $top_srcdir so VPATH builds read
# the chapters and examples from the source tree.
#
#   tests/check_listings.sh            check; exit 1 on any mismatch
#   tests/check_listings.sh --update   rewrite the chapters from the files
#                                      (this is `make listings`)
#
# POSIX sh and awk only.
set -u

mode=check
case ${1-} in
    '') ;;
    --update) mode=update ;;
    *) echo "usage: $0 [--update]" >&2; exit 2 ;;
esac

top=${top_srcdir:-.}
here=$(dirname "$0")
script=$here/listings.awk
[ -f "$script" ] || script=$top/tests/listings.awk
if [ ! -f "$script" ]; then
    echo "check_listings: cannot find listings.awk next to $0 or in $top/tests" >&2
    exit 2
fi
AWK=${AWK:-awk}

status=0
chapters=0
listings=0
for chapter in "$top"/tutorial/*.md; do
    [ -f "$chapter" ] || continue
    rel=tutorial/${chapter##*/}
    chapters=$((chapters + 1))
    if [ "$mode" = check ]; then
        if out=$("$AWK" -v mode=check -v chapter="$rel" -v srcdir="$top" \
                    -f "$script" "$chapter"); then
            :
        else
            status=1
        fi
        n=${out#listings }
        case $n in ''|*[!0-9]*) n=0 ;; esac
        listings=$((listings + n))
    else
        tmp=$chapter.listings-tmp.$$
        if "$AWK" -v mode=update -v chapter="$rel" -v srcdir="$top" \
                -f "$script" "$chapter" > "$tmp"; then
            if cmp -s "$tmp" "$chapter"; then
                :
            else
                # cat, not mv, so the chapter keeps its inode and mode.
                cat "$tmp" > "$chapter" && echo "check_listings: updated $rel"
            fi
        else
            echo "check_listings: left $rel unchanged" >&2
            status=1
        fi
        rm -f "$tmp"
    fi
done

if [ "$chapters" -eq 0 ]; then
    echo "check_listings: no chapters found in $top/tutorial (is top_srcdir right?)" >&2
    exit 1
fi
if [ "$mode" = check ]; then
    if [ "$status" -eq 0 ]; then
        echo "check_listings: $listings listings in $chapters chapters match their files"
    else
        echo "check_listings: FAILED; see the messages above" >&2
    fi
fi
exit $status
