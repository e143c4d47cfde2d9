#!/bin/sh
# backend_epoll.sh - the loop, connection, server, pipe and Python suites on the
# epoll backend (tests/on_backend.sh); built on Linux only.
exec ${SHELL:-/bin/sh} "${srcdir:-.}/tests/on_backend.sh" epoll
