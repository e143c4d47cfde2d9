# lib.sh - helpers shared by run_echo.sh and count_costs.sh (sourced, not run).
# shellcheck shell=bash
# Expects HERE, OUT and PY to be set by the caller.

# install_optional ENABLED PKG... : apt-get install the missing ones if we are
# root and ENABLED is 1; otherwise say which are missing and how to add them.
install_optional() {
    local enabled=$1 p missing=()
    shift
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
            missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && { say "optional packages: all present ($*)"; return 0; }
    if [ "$enabled" = 1 ] && [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        say "installing: ${missing[*]}"
        if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >"$OUT/apt.log" 2>&1; then
            DEBIAN_FRONTEND=noninteractive apt-get update -q >>"$OUT/apt.log" 2>&1
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >>"$OUT/apt.log" 2>&1 ||
                say "install failed (see $OUT/apt.log); the peers that need them are skipped"
        fi
    else
        say "not installing ${missing[*]} (not root, no apt-get, or --no-install);" \
            "the peers that need them are skipped.  To add them: apt-get install ${missing[*]}"
    fi
}

# collect_peers: fill PEERS with "name|command" for every peer present.  This
# is the one place to add a peer.  The built-in servers also get a lifetime
# limit (the second argument) so that none outlives a killed script.
collect_peers() {
    PEERS=()
    PEERS+=("select|$OUT/select_echo 0 3600")
    [ -x "$OUT/uv_echo" ] && PEERS+=("libuv|$OUT/uv_echo 0 3600")
    [ -x "$OUT/event_echo" ] && PEERS+=("libevent|$OUT/event_echo 0 3600")
    have_python && PEERS+=("asyncio|$PY $HERE/peers/asyncio_echo.py 0 3600")
    have_uvloop && PEERS+=("uvloop|$PY $HERE/peers/asyncio_echo.py --uvloop 0 3600")
    # The same Python server on asyncstreams' binding, on the interpreter the
    # asyncio and uvloop peers use ($PY), so that only the streams differ:
    # build_py_peer made a build of the binding for it in $PYBUILD.
    if [ -n "${PYBUILD:-}" ] && [ -f "$PYBUILD/bindings/python/pkg.stamp" ]; then
        PEERS+=("asyncstreams-py|env PYTHONPATH=$PYBUILD/bindings/python/pkg LD_LIBRARY_PATH=$PYBUILD/lib/.libs $PY $HERE/peers/asyncstreams_echo.py 0 3600")
    else
        say "peer asyncstreams-py: skipped, the Python binding could not be built for $PY"
    fi
    # asyncstreams' own C echo server (issue 6): prints "PORT n" on stdout;
    # --raw echoes bytes as they come (the messages here are not lines).
    # AS_BACKENDS="select poll epoll" (--backends) runs it once per backend
    # instead, as peers asyncstreams-BACKEND, through ASYNCSTREAMS_BACKEND;
    # AS_THREADS="1 2" (--threads) adds asyncstreams-BACKEND-Nt for each
    # N > 1: N loops on N threads, one SO_REUSEPORT listener each.
    ASYNCSTREAMS_ECHO=${ASYNCSTREAMS_ECHO:-$OUT/as_echo_server}
    if [ -x "$ASYNCSTREAMS_ECHO" ]; then
        if [ -z "${AS_BACKENDS:-}" ]; then
            PEERS+=("asyncstreams|$ASYNCSTREAMS_ECHO --raw 0")
        else
            local b t
            for b in $AS_BACKENDS; do
                for t in ${AS_THREADS:-1}; do
                    if [ "$t" = 1 ]; then
                        PEERS+=("asyncstreams-$b|env ASYNCSTREAMS_BACKEND=$b $ASYNCSTREAMS_ECHO --raw 0")
                    else
                        PEERS+=("asyncstreams-$b-${t}t|env ASYNCSTREAMS_BACKEND=$b $ASYNCSTREAMS_ECHO --raw --threads $t 0")
                    fi
                done
            done
        fi
    else
        say "peer asyncstreams: skipped, $ASYNCSTREAMS_ECHO is not built (yet)"
    fi
    # The same server as `make` builds it: examples/echo_server over the
    # tree's shared library, with whatever flags configure chose (issue 15
    # measures this one).  Run as the program libtool's wrapper script
    # runs, so that valgrind counts the server and not the shell.
    if [ -x "$TOP/examples/.libs/echo_server" ] && [ -d "$TOP/lib/.libs" ]; then
        PEERS+=("asyncstreams-so|env LD_LIBRARY_PATH=$TOP/lib/.libs $TOP/examples/.libs/echo_server --raw 0")
    else
        say "peer asyncstreams-so: skipped, make has not built examples/echo_server over the shared library"
    fi
    if [ -n "${EXTRA_PEERS:-}" ]; then
        local extra e
        IFS=';' read -r -a extra <<<"$EXTRA_PEERS"
        for e in "${extra[@]}"; do
            [ -n "$e" ] && PEERS+=("${e%%=*}|${e#*=}")
        done
    fi
    if [ -n "${ONLY_PEERS:-}" ]; then
        local kept=() p
        for p in "${PEERS[@]}"; do
            case " $ONLY_PEERS " in *" ${p%%|*} "*) kept+=("$p") ;; esac
        done
        PEERS=("${kept[@]}")
    fi
    return 0
}

have_python() { [ -x "$PY" ]; }
have_uvloop() { have_python && "$PY" -c 'import uvloop' 2>/dev/null; }

# build_all: the C parts into $OUT with cc and pkg-config, warnings on.
build_all() {
    local cc=${CC:-cc} flags="-std=c99 -O2 -g -Wall -Wextra"
    # shellcheck disable=SC2086
    $cc $flags -o "$OUT/loadgen" "$HERE/loadgen.c" || { say "build of loadgen failed"; return 1; }
    # shellcheck disable=SC2086
    $cc $flags -o "$OUT/select_echo" "$HERE/peers/select_echo.c" ||
        { say "build of select_echo failed"; return 1; }
    if pkg-config --exists libuv 2>/dev/null; then
        # shellcheck disable=SC2046,SC2086
        $cc $flags $(pkg-config --cflags libuv) -o "$OUT/uv_echo" "$HERE/peers/uv_echo.c" \
            $(pkg-config --libs libuv) || say "build of uv_echo failed: peer libuv skipped"
    else
        rm -f "$OUT/uv_echo"
        say "peer libuv: skipped, libuv1-dev is not installed"
    fi
    if pkg-config --exists libevent 2>/dev/null; then
        # shellcheck disable=SC2046,SC2086
        $cc $flags $(pkg-config --cflags libevent) -o "$OUT/event_echo" "$HERE/peers/event_echo.c" \
            $(pkg-config --libs libevent) || say "build of event_echo failed: peer libevent skipped"
    else
        rm -f "$OUT/event_echo"
        say "peer libevent: skipped, libevent-dev is not installed"
    fi
    # asyncstreams' own echo server, compiled here from the library's sources
    # with the peers' flags: examples/echo_server is a libtool wrapper script
    # (valgrind would count the shell) and carries whatever flags configure
    # was given (-O0, sanitizers).  Needs configure's config.h.
    if [ -f "$TOP/config.h" ]; then
        # shellcheck disable=SC2086
        $cc $flags -D_POSIX_C_SOURCE=200809L -I"$TOP" -I"$TOP/lib" -o "$OUT/as_echo_server" \
            "$TOP"/lib/*.c "$TOP/examples/echo_server.c" -pthread -lm ||
            say "build of asyncstreams' echo_server failed: peer asyncstreams skipped"
    else
        rm -f "$OUT/as_echo_server"
        say "peer asyncstreams: skipped, run ./configure first (config.h is missing)"
    fi
    have_python || say "peers asyncio and uvloop: skipped, $PY is missing"
    have_python && ! have_uvloop && say "peer uvloop: skipped, python3-uvloop is not installed"
    return 0
}

# build_py_peer: set PYBUILD to a build of asyncstreams whose Python binding
# is for $PY.  The tree's own build is used when configure's PYTHON is $PY;
# otherwise (say, a pyenv python3 first on PATH) the tree's sources are
# configured again in $OUT/pybuild with PYTHON=$PY (`make distdir`, then
# configure and make: about a minute), because comparing servers on two
# different interpreters would measure the interpreters.  Needs $PY's
# development files (Debian: python3-dev).
build_py_peer() {
    local want have
    PYBUILD=
    have_python || return 0
    want=$("$PY" -c 'import sys; print(sys.executable)' 2>/dev/null)
    have=$(sed -n 's/^PYTHON = //p' "$TOP/Makefile" 2>/dev/null)
    if [ -n "$have" ] && [ "$have" = "$want" ] && [ -f "$TOP/bindings/python/pkg.stamp" ]; then
        PYBUILD=$TOP
        return 0
    fi
    say "building the Python binding for $PY in $OUT/pybuild (configure's PYTHON is ${have:-unset})"
    rm -rf "$OUT/pybuild"
    if ! make -C "$TOP" distdir distdir="$OUT/pybuild" >"$OUT/pybuild.log" 2>&1 ||
        ! (cd "$OUT/pybuild" && ./configure PYTHON="$PY" && make -j2) >>"$OUT/pybuild.log" 2>&1; then
        say "build of the binding for $PY failed (see $OUT/pybuild.log)"
        return 0
    fi
    PYBUILD=$OUT/pybuild
}

# wait_port FILE PID [SECS]: print the port the server announced in FILE,
# waiting up to SECS (20) s while PID lives.  Accepts "PORT n" and
# "listening on 127.0.0.1:n".
wait_port() {
    local f=$1 pid=$2 i line tries=$((${3:-20} * 10))
    for ((i = 0; i < tries; i++)); do
        line=$(grep -m1 -E '^PORT [0-9]+$|listening on 127\.0\.0\.1:[0-9]+' "$f" 2>/dev/null)
        if [ -n "$line" ]; then
            line=${line##*[ :]}
            printf '%s\n' "$line"
            return 0
        fi
        kill -0 "$pid" 2>/dev/null || return 1
        sleep 0.1
    done
    return 1
}

# stop_pid PID [SECS]: SIGTERM, then SIGKILL if it is still there after SECS
# (10) s.
stop_pid() {
    local pid=$1 i tries=$((${2:-10} * 10))
    kill -TERM "$pid" 2>/dev/null || return 0
    for ((i = 0; i < tries; i++)); do
        kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return 0; }
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    return 0
}

# plot_results OUTDIR "SIZES": round trips/s (top) and server CPU per round
# trip (bottom) against N, one panel per size, one line per peer.
plot_results() {
    local out=$1 sizes=$2 s ns=0 label
    for s in $sizes; do ns=$((ns + 1)); done
    {
        echo "set terminal svg size $((420 * ns)),720 dynamic noenhanced font 'sans,11'"
        echo "set output '$out/echo.svg'"
        echo "set multiplot layout 2,$ns title 'echo ping-pong, depth 1: medians (bench/run_echo.sh, $(date -u +%F))'"
        echo "set key top left font 'sans,9'"
        echo "set grid ytics"
        echo "set xlabel 'connections N'"
        echo "set style data linespoints"
        for s in $sizes; do
            if [ "$s" -ge 1024 ] && [ $((s % 1024)) -eq 0 ]; then label="$((s / 1024)) KiB"; else label="$s B"; fi
            echo "set title '$label messages'"
            echo "set ylabel 'thousand round trips / s'"
            echo "set yrange [0:*]"
            echo "plot for [i=2:*] '$out/plot_$s.dat' using i:xtic(1) title columnheader(i)"
        done
        for s in $sizes; do
            if [ "$s" -ge 1024 ] && [ $((s % 1024)) -eq 0 ]; then label="$((s / 1024)) KiB"; else label="$s B"; fi
            echo "set title '$label: server CPU per round trip'"
            echo "set ylabel 'CPU us / round trip (log)'"
            echo "set logscale y"
            echo "set yrange [*:*]"
            echo "plot for [i=2:*] '$out/cpu_$s.dat' using i:xtic(1) title columnheader(i)"
            echo "unset logscale y"
        done
        echo "unset multiplot"
    } >"$out/echo.gp"
    gnuplot "$out/echo.gp" 2>"$out/gnuplot.log" || { say "plot failed: see $out/gnuplot.log"; return 1; }
}

versions() {
    echo "cc: $(${CC:-cc} --version | head -1)"
    pkg-config --exists libuv 2>/dev/null && echo "libuv: $(pkg-config --modversion libuv)"
    pkg-config --exists libevent 2>/dev/null && echo "libevent: $(pkg-config --modversion libevent)"
    have_python && echo "python: $("$PY" -V 2>&1)"
    have_uvloop && echo "uvloop: $("$PY" -c 'import uvloop; print(uvloop.__version__)')"
    return 0
}
