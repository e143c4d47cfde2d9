#!/usr/bin/env bash
# count_costs.sh - the noise-free costs of each echo peer: user-space
# instructions and system calls per round trip.
#
# usage: bench/count_costs.sh [--short N1] [--long N2] [--conns "1 10"]
#                             [--size BYTES] [--only "libuv select"] [--no-install]
#                             [--backends "select poll epoll"] [--threads "1 2"]
#
# Wall-clock figures on this shared two-core machine swing by +-15%; these
# do not.  Each server is started under valgrind --tool=callgrind (user-space
# instructions of the whole process, all threads) and, separately, under
# strace -f -c (system calls), and driven by bench/loadgen for exactly N1 and
# then, in a fresh server, N2 round trips (defaults 2000 and 6000, 1 KiB, at
# N = 1 and 10 connections).  Start-up, connection set-up and shutdown are
# the same in both runs, so (count(N2) - count(N1)) / (N2 - N1) is the cost of
# one round trip.  Under callgrind the server is ~50x slower than the load
# generator, so at N > 1 it finds more connections ready per loop turn than it
# would natively: per-turn costs (select/epoll_wait) are amortised more
# thinly there.  That is the same for every peer, which is what matters.
#
# --backends and --threads choose asyncstreams' C peers as in run_echo.sh.
# Output: a table on stdout, and bench/out/costs.csv and costs.md.
set -u

HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(dirname "$HERE")
OUT=$HERE/out
PY=/usr/bin/python3
SHORT=2000
LONG=6000
CONNS="1 10"
SIZE=1024
INSTALL=1
while [ $# -gt 0 ]; do
    case "$1" in
    --short) SHORT=$2; shift ;;
    --long) LONG=$2; shift ;;
    --conns) CONNS=$2; shift ;;
    --size) SIZE=$2; shift ;;
    --only) ONLY_PEERS=$2; shift ;;
    --backends) AS_BACKENDS=$2; shift ;;
    --threads) AS_THREADS=$2; shift ;;
    --no-install) INSTALL=0 ;;
    -h|--help) sed -n '2,24p' "$0"; exit 0 ;;
    *) echo "count_costs.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
    esac
    shift
done
[ "$LONG" -gt "$SHORT" ] || { echo "count_costs.sh: --long must exceed --short" >&2; exit 2; }

say() { printf '%s\n' "$*" >&2; }
mkdir -p "$OUT/costs" || exit 1
ulimit -n "$(ulimit -Hn)" 2>/dev/null
# shellcheck source=SCRIPTDIR/lib.sh
. "$HERE/lib.sh"
install_optional "$INSTALL" valgrind strace libuv1-dev libevent-dev python3-uvloop python3-dev swig
build_all || exit 1
build_py_peer
collect_peers
HAVE_CG=1
HAVE_ST=1
command -v valgrind >/dev/null 2>&1 || { HAVE_CG=0; say "instructions: skipped, valgrind is not installed"; }
command -v strace >/dev/null 2>&1 || { HAVE_ST=0; say "system calls: skipped, strace is not installed"; }
# Same hash seed every run: CPython's dict and set work then repeats exactly.
export PYTHONHASHSEED=0

SERVER=     # pid of the server itself (not of strace)
WRAPPER=    # pid to wait for: valgrind's (the same process) or strace's

# run_one TOOL NAME CMD CONNS COUNT: start CMD under TOOL, drive COUNT round
# trips, stop it cleanly; the tool's output goes to $OUT/costs/TOOL.NAME.CONNS.COUNT
run_one() {
    local tool=$1 name=$2 cmd=$3 c=$4 n=$5 f port kids
    local -a words envs=()
    f=$OUT/costs/$tool.$name.$c.$n
    rm -f "$f" "$f.stdout"
    # A command of the form "env VAR=value... prog args": the variables go
    # to the tool's environment, so that valgrind runs prog itself (it does
    # not follow env's exec, and would count env's instructions).
    read -r -a words <<<"$cmd"
    if [ "${words[0]}" = env ]; then
        words=("${words[@]:1}")
        while [ ${#words[@]} -gt 0 ] && [[ ${words[0]} == *=* ]]; do
            envs+=("${words[0]}")
            words=("${words[@]:1}")
        done
    fi
    case "$tool" in
    callgrind)
        env "${envs[@]}" valgrind --tool=callgrind --callgrind-out-file="$f" "${words[@]}" >"$f.stdout" 2>"$f.log" &
        WRAPPER=$!
        SERVER=$WRAPPER
        ;;
    strace)
        env "${envs[@]}" strace -f -c -o "$f" "${words[@]}" >"$f.stdout" 2>"$f.log" &
        WRAPPER=$!
        SERVER=
        ;;
    esac
    if ! port=$(wait_port "$f.stdout" "$WRAPPER" 120); then
        say "$tool $name: no port announced; see $f.log"
        kill -KILL "$WRAPPER" 2>/dev/null
        wait "$WRAPPER" 2>/dev/null
        return 1
    fi
    if [ -z "$SERVER" ]; then   # strace's child is the server
        kids=$(cat "/proc/$WRAPPER/task/$WRAPPER/children" 2>/dev/null)
        SERVER=${kids%% *}
    fi
    if ! "$OUT/loadgen" -p "$port" -c "$c" -s "$SIZE" -w 0 -n "$n" -T 600 >>"$f.log" 2>&1; then
        say "$tool $name c=$c n=$n: load generator failed; see $f.log"
        stop_pid "$SERVER" 60
        wait "$WRAPPER" 2>/dev/null
        return 1
    fi
    stop_pid "$SERVER" 120
    wait "$WRAPPER" 2>/dev/null
    return 0
}

cg_total() { # callgrind out file -> total instructions (Ir)
    awk '/^(summary|totals):/ { print $2; exit }' "$1" 2>/dev/null
}
st_total() { # strace -c file -> total calls
    awk '$NF == "total" { print $4 }' "$1" 2>/dev/null
}
# per-syscall difference, per round trip, the largest first: "recvfrom 1.00 ..."
st_breakdown() { # short long count
    awk -v d="$3" '
        FNR == 1 { file++ }
        $1 ~ /^[0-9.]+$/ && $NF != "total" { calls[$NF, file] = $4; names[$NF] = 1 }
        END {
            for (s in names) {
                v = (calls[s, 2] - calls[s, 1]) / d
                if (v >= 0.005 || v <= -0.005) printf "%s %.2f\n", s, v
            }
        }' "$1" "$2" | sort -k2,2 -g -r | head -6 | awk '{ printf "%s%s %s", (NR > 1 ? ", " : ""), $1, $2 }'
}

CSV=$OUT/costs.csv
echo "peer,conns,size,instr_per_rt,syscalls_per_rt,syscall_breakdown" >"$CSV"
delta=$((LONG - SHORT))
for p in "${PEERS[@]}"; do
    name=${p%%|*}
    cmd=${p#*|}
    for c in $CONNS; do
        ipr=na
        spr=na
        brk=
        if [ "$HAVE_CG" = 1 ] &&
            run_one callgrind "$name" "$cmd" "$c" "$SHORT" &&
            run_one callgrind "$name" "$cmd" "$c" "$LONG"; then
            a=$(cg_total "$OUT/costs/callgrind.$name.$c.$SHORT")
            b=$(cg_total "$OUT/costs/callgrind.$name.$c.$LONG")
            [ -n "$a" ] && [ -n "$b" ] && ipr=$(awk -v a="$a" -v b="$b" -v d="$delta" 'BEGIN { printf "%.0f", (b - a) / d }')
        fi
        if [ "$HAVE_ST" = 1 ] &&
            run_one strace "$name" "$cmd" "$c" "$SHORT" &&
            run_one strace "$name" "$cmd" "$c" "$LONG"; then
            a=$(st_total "$OUT/costs/strace.$name.$c.$SHORT")
            b=$(st_total "$OUT/costs/strace.$name.$c.$LONG")
            [ -n "$a" ] && [ -n "$b" ] && spr=$(awk -v a="$a" -v b="$b" -v d="$delta" 'BEGIN { printf "%.2f", (b - a) / d }')
            brk=$(st_breakdown "$OUT/costs/strace.$name.$c.$SHORT" "$OUT/costs/strace.$name.$c.$LONG" "$delta")
        fi
        echo "$name,$c,$SIZE,$ipr,$spr,\"$brk\"" >>"$CSV"
        say "$name c=$c: $ipr instructions, $spr system calls per round trip ($brk)"
    done
done

# The table: one row per peer, instructions then system calls per N.
{
    printf '| peer |'
    for c in $CONNS; do printf ' instr/rt N=%s |' "$c"; done
    for c in $CONNS; do printf ' syscalls/rt N=%s |' "$c"; done
    printf ' system calls per round trip at N=%s |\n|---|' "${CONNS##* }"
    for c in $CONNS $CONNS; do printf -- '---|'; done
    printf -- '---|\n'
    for p in "${PEERS[@]}"; do
        name=${p%%|*}
        printf '| %s |' "$name"
        for c in $CONNS; do printf ' %s |' "$(awk -F, -v n="$name" -v c="$c" '$1 == n && $2 == c { print $4 }' "$CSV")"; done
        for c in $CONNS; do printf ' %s |' "$(awk -F, -v n="$name" -v c="$c" '$1 == n && $2 == c { print $5 }' "$CSV")"; done
        printf ' %s |\n' "$(awk -F, -v n="$name" -v c="${CONNS##* }" '$1 == n && $2 == c { sub(/^[^"]*"/, ""); sub(/"$/, ""); print }' "$CSV")"
    done
} >"$OUT/costs.md"
echo
echo "$SIZE-byte messages, difference of $LONG and $SHORT round trips ($(date -u +%F), $(uname -sr)):"
cat "$OUT/costs.md"
