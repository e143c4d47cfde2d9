#!/bin/sh
# backend_poll.sh - the loop, connection, server, pipe and Python suites on the
# poll() backend (tests/on_backend.sh).
exec ${SHELL:-/bin/sh} "${srcdir:-.}/tests/on_backend.sh" poll
