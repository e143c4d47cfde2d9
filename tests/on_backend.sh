#!/bin/sh
# on_backend.sh BACKEND - run the suites that exercise the loop again, with
# ASYNCSTREAMS_BACKEND=BACKEND, so that every loop they make (as_loop_new(),
# asyncstreams.Loop()) runs on that backend: the loop, connection, server and
# pipe Check suites ($AS_BACKEND_C_TESTS) and the Python binding's tests
# ($AS_BACKEND_PY_TESTS, through bindings/python/tests/runtest.sh).  The
# Makefile sets both lists; tests/backend_poll.sh and backend_epoll.sh call
# this.  The first line of the log says which backend ran; each suite's
# output follows, and any failure fails the whole run.
set -u
backend=$1
srcdir=${srcdir:-.}
ASYNCSTREAMS_BACKEND=$backend
export ASYNCSTREAMS_BACKEND
echo "on_backend: ASYNCSTREAMS_BACKEND=$backend"
status=0
for t in ${AS_BACKEND_C_TESTS-}; do
    echo "== $t (backend $backend)"
    ./"$t" || { echo "on_backend: FAIL: $t on $backend"; status=1; }
done
for t in ${AS_BACKEND_PY_TESTS-}; do
    echo "== $t (backend $backend)"
    ${SHELL:-/bin/sh} "$srcdir/bindings/python/tests/runtest.sh" "$srcdir/$t" 2>&1 ||
        { echo "on_backend: FAIL: $t on $backend"; status=1; }
done
[ $status -eq 0 ] && echo "on_backend: all passed on $backend"
exit $status
