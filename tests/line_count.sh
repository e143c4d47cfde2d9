#!/bin/sh
# line_count.sh - examples/line_count (tutorial chapter 16) with input piped
# into its stdin, against wc -l and wc -c on the same bytes: many lines (more
# than a pipe holds), empty lines, a last line without "\n", no input at all,
# and stdin through a FIFO.  A regular file on stdin must be refused with
# exit 2 and AS_ENOTPIPE's message.  POSIX sh.
set -u
prog=./examples/line_count
[ -x "$prog" ] || { echo "line_count.sh: build $prog first" >&2; exit 1; }
tmp=${TMPDIR:-/tmp}/line_count.$$
mkdir "$tmp" || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM
status=0

# want FILE: what line_count must print for FILE's bytes, from wc.
want() {
    echo "$(($(wc -l < "$1"))) lines, $(($(wc -c < "$1"))) bytes"
}

# check NAME FILE OUTPUT RC
check() {
    if [ "$4" -ne 0 ] || [ "$3" != "$(want "$2")" ]; then
        echo "FAIL: $1: got '$3' (exit $4), want '$(want "$2")'"
        status=1
    else
        echo "ok: $1: $3"
    fi
}

i=0
while [ $i -lt 20000 ]; do
    echo "line $i of the input"
    [ $((i % 1000)) -eq 0 ] && echo
    i=$((i + 1))
done > "$tmp/many"
printf 'one\ntwo\nno newline at the end' > "$tmp/tail"
: > "$tmp/empty"

for f in many tail empty; do
    out=$(cat "$tmp/$f" | "$prog"); rc=$?
    check "$f through a pipe" "$tmp/$f" "$out" $rc
done

if mkfifo "$tmp/fifo" 2>/dev/null; then
    cat "$tmp/many" > "$tmp/fifo" &
    out=$("$prog" < "$tmp/fifo"); rc=$?
    wait
    check "many through a FIFO" "$tmp/many" "$out" $rc
fi

out=$("$prog" < "$tmp/tail" 2>&1); rc=$?
case $rc:$out in
    2:*"pipe transports are for pipes, FIFOs and character devices only"*)
        echo "ok: a regular file is refused: $out" ;;
    *) echo "FAIL: a regular file: exit $rc, '$out'"; status=1 ;;
esac
exit $status
