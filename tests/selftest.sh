# selftest.sh - the harness the checkers' self-tests share (sourced, POSIX
# sh).  The sourcing script sets $work (its scratch tree) and defines run(),
# which runs its checker with output in $work/out; this file gives it the
# verdicts and the summary:
#
#   expect_pass WHAT        the checker must succeed
#   expect_fail WHAT TEXT   the checker must fail, saying TEXT
#   fail MESSAGE            count a failure of the self-test itself
#   selftest_done NAME      report and exit 0, or 1 if anything failed

fails=0

fail() { echo "FAIL: $*" >&2; fails=$((fails + 1)); }

expect_pass() {
    if run; then :; else fail "$1: check failed:"; cat "$work/out" >&2; fi
}

expect_fail() {
    if run; then
        fail "$1: check passed but should have failed"
    elif grep -F -- "$2" "$work/out" > /dev/null; then
        :
    else
        fail "$1: message lacks '$2':"; cat "$work/out" >&2
    fi
}

selftest_done() {
    if [ "$fails" -ne 0 ]; then
        echo "$1: $fails failures" >&2
        exit 1
    fi
    echo "$1: all cases behave"
    exit 0
}
