#!/usr/bin/env bash
# run_echo.sh - echo server benchmark: every present peer, side by side.
#
# usage: bench/run_echo.sh [--quick] [--reps R] [--secs T] [--warm W]
#                          [--conns "1 10 100 500"] [--sizes "64 1024 65536"]
#                          [--no-install] [--pin] [--only "libuv select"]
#                          [--backends "select poll epoll"] [--threads "1 2"]
#                          [--idle I]
#
# For each (connections N, message size) cell, each peer server is measured
# R times by bench/loadgen (closed-loop ping-pong, depth 1): W seconds of
# uncounted warm-up on fresh connections, then T seconds counted.  The peers
# take turns, and each repetition starts with a different peer, so slow
# drifts of this shared machine fall on all of them alike.  Every server is
# started once and first given an uncounted warm-up pass of its own (a fresh
# CPython server runs its first seconds several times slower).  Medians and
# ratios to libuv go to bench/out/results.csv and results.md, and a plot to
# bench/out/echo.svg when gnuplot is present.
#
# Peers: collect_peers in bench/lib.sh, one "name|command" entry each.  A
# command is split on blanks (no quoting) and ends in the port argument 0; the
# server must print, on stdout, one line "PORT n" (or "listening on
# 127.0.0.1:n") once it listens on 127.0.0.1 port n, echo every byte, set
# TCP_NODELAY, and exit on SIGTERM.  More: EXTRA_PEERS="name=cmd 0;name2=cmd 0".
# asyncstreams' own examples/echo_server is added by itself once it is built;
# --backends runs it once per backend named (peers asyncstreams-select, ...)
# and --threads adds, for each N > 1, asyncstreams-BACKEND-Nt: N loops on
# N threads (see collect_peers).  N up to 10,000 connections works: the
# script raises its open-file limit to the hard limit for every peer.
# --idle I opens I more connections that never send (loadgen -i): the
# server watches N + I sockets and N of them are ever ready, which is
# where a multiplexer's cost per turn shows.
#
# Nothing is pinned by default: on this Firecracker guest, a ping-pong between
# a server pinned to one vCPU and a load generator pinned to the other costs
# ~90 us of CPU per round trip on each side (cross-vCPU wake-ups), ten times
# the unpinned cost; --pin (server on CPU 1, load generator on CPU 0) is there
# to check that on another machine.
#
# Default run (3 sizes x 4 N x 5 peers x 3 repetitions): about 9 minutes.
# --quick (1 KiB at N=10 and 100, 3 repetitions of 1 s): about a minute.
set -u

HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(dirname "$HERE")
OUT=$HERE/out
PY=/usr/bin/python3

CONNS="1 10 100 500"
SIZES="64 1024 65536"
REPS=3
SECS=2
WARM=0.5
INSTALL=1
PIN=0
IDLE=0
while [ $# -gt 0 ]; do
    case "$1" in
    --quick) CONNS="10 100"; SIZES="1024"; REPS=3; SECS=1 ;;
    --reps) REPS=$2; shift ;;
    --secs) SECS=$2; shift ;;
    --warm) WARM=$2; shift ;;
    --conns) CONNS=$2; shift ;;
    --sizes) SIZES=$2; shift ;;
    --no-install) INSTALL=0 ;;
    --pin) PIN=1 ;;
    --only) ONLY_PEERS=$2; shift ;;
    --backends) AS_BACKENDS=$2; shift ;;
    --threads) AS_THREADS=$2; shift ;;
    --idle) IDLE=$2; shift ;;
    -h|--help) sed -n '2,40p' "$0"; exit 0 ;;
    *) echo "run_echo.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done

say() { printf '%s\n' "$*" >&2; }
mkdir -p "$OUT" || exit 1
# Every server and the load generator need N fds and some; the peers inherit
# this limit.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || say "could not raise the open-file limit above $(ulimit -n)"
for c in $CONNS; do
    [ "$((c + IDLE))" -lt "$(($(ulimit -n) - 64))" ] ||
        { say "N=$c needs more than the open-file limit of $(ulimit -n)"; exit 1; }
done

# ------------------------------------------------------------ optional peers
# shellcheck source=SCRIPTDIR/lib.sh
. "$HERE/lib.sh"
install_optional "$INSTALL" libuv1-dev libevent-dev python3-uvloop python3-dev swig gnuplot-nox
build_all || exit 1
build_py_peer

collect_peers

# ------------------------------------------------------------ server control
declare -A PID PORTOF CMD
NAMES=()
for p in "${PEERS[@]}"; do
    n=${p%%|*}
    NAMES+=("$n")
    CMD[$n]=${p#*|}
done
trap 'stop_all' EXIT
trap 'exit 130' INT TERM

start_peer() { # name
    local n=$1 pid port
    # shellcheck disable=SC2086
    if [ "$PIN" = 1 ]; then
        taskset -c 1 ${CMD[$n]} >"$OUT/$n.stdout" 2>"$OUT/$n.log" &
    else
        ${CMD[$n]} >"$OUT/$n.stdout" 2>"$OUT/$n.log" &
    fi
    pid=$!
    port=$(wait_port "$OUT/$n.stdout" "$pid") || {
        say "peer $n: did not print its port; see $OUT/$n.log"
        kill "$pid" 2>/dev/null
        return 1
    }
    PID[$n]=$pid
    PORTOF[$n]=$port
    say "peer $n: pid $pid port $port (${CMD[$n]})"
}

stop_all() {
    local n
    for n in "${!PID[@]}"; do
        stop_pid "${PID[$n]}"
    done
}

LG=("$OUT/loadgen")
[ "$PIN" = 1 ] && LG=(taskset -c 0 "$OUT/loadgen")

run_lg() { # name conns size warm secs -> loadgen's line on stdout
    local n=$1
    if ! kill -0 "${PID[$n]}" 2>/dev/null; then
        say "peer $n: server died; restarting (see $OUT/$n.log)"
        start_peer "$n" || return 1
    fi
    "${LG[@]}" -p "${PORTOF[$n]}" -P "${PID[$n]}" -c "$2" -s "$3" -w "$4" -t "$5" -i "$IDLE" \
        2>>"$OUT/loadgen.log"
}

LIVE=()
for n in "${NAMES[@]}"; do
    start_peer "$n" && LIVE+=("$n")
done
[ ${#LIVE[@]} -gt 0 ] || { say "no peer could be started"; exit 1; }
say "peers measured: ${LIVE[*]}"

# A throwaway pass per server, before anything is counted.
for n in "${LIVE[@]}"; do
    run_lg "$n" 10 1024 0 2 >/dev/null
    run_lg "$n" 100 65536 0 1 >/dev/null
done

RAW=$OUT/results_raw.csv
echo "date,size,conns,rep,peer,rtt_per_s,p50_us,p99_us,total,errors,srv_cpu_us_per_rt,lg_cpu_us_per_rt" >"$RAW"
field() { # key line
    local f
    for f in $2; do
        case "$f" in "$1="*) printf '%s' "${f#*=}"; return ;; esac
    done
    printf 'na'
}
np=${#LIVE[@]}
start=$(date +%s)
for size in $SIZES; do
    for c in $CONNS; do
        for ((r = 0; r < REPS; r++)); do
            for ((k = 0; k < np; k++)); do
                n=${LIVE[$(((k + r) % np))]}
                line=$(run_lg "$n" "$c" "$size" "$WARM" "$SECS")
                [ -n "$line" ] || line="errors=1"
                printf '%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s\n' "$(date -u +%FT%TZ)" \
                    "$size" "$c" "$r" "$n" "$(field rtt_per_s "$line")" \
                    "$(field p50_us "$line")" "$(field p99_us "$line")" \
                    "$(field total "$line")" "$(field errors "$line")" \
                    "$(field srv_cpu_us_per_rt "$line")" "$(field lg_cpu_us_per_rt "$line")" >>"$RAW"
                say "size=$size N=$c rep=$r $n: $line"
            done
        done
    done
done
say "measured in $(($(date +%s) - start)) s"

if have_python; then
    $PY "$HERE/summarize.py" "$RAW" "$OUT" libuv || exit 1
    cat "$OUT/results.md"
    if command -v gnuplot >/dev/null 2>&1; then
        plot_results "$OUT" "$SIZES" && say "plot: $OUT/echo.svg"
    else
        say "plot: skipped, gnuplot is not installed (apt-get install gnuplot-nox)"
    fi
else
    say "summary: skipped, $PY is missing; raw figures are in $RAW"
fi
{
    echo "date: $(date -u +%F)"
    echo "kernel: $(uname -sr)"
    echo "cpu: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'), $(nproc) online"
    echo "peers: ${LIVE[*]}"
    echo "cells: sizes [$SIZES] x N [$CONNS], $REPS repetitions, warm-up $WARM s + $SECS s each, pinned=$PIN, idle connections $IDLE"
    versions
} >"$OUT/machine.txt"
cat "$OUT/machine.txt" >&2
