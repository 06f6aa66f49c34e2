#!/usr/bin/env bash
# run.sh - chapter 7's benchmark driver: every server in a list, echo at
# 1/100/1000 connections and HTTP at 50/500, R runs each, one CSV.
#
#   run.sh --loadgen PATH --probe PATH --servers FILE --out DIR [options]
#
# (The build runs it for you: `cmake --build build/release --target
# ch07-bench`; README.md in this directory says more.)
#
# For each run, each connection count and each server (interleaved, so
# that a slow minute of a busy machine falls on every server alike), it
# starts the server on a free loopback port pinned to CPU 0, waits until it
# accepts connections, runs the client pinned to CPU 1 for a fixed time,
# reads the server's CPU time from /proc (all threads and children), stops
# the server with SIGTERM (it must exit 0) and appends a row to
# OUT/results.csv:
#
#   server,protocol,connections,run,round_trips_per_s,p50_us,p99_us,
#   cpu_us_per_rt,max_us,server_cpu_pct,client_cpu_pct,other_cpu_pct,client
#
# (CPU shares in % of one core: the server's, the client's, and the rest of
# the machine's. Each measurement waits for a quiet half second first, and
# one during which other programs took more than --max-other % of a core
# is taken again, twice at most: on a shared machine a neighbour's build
# would otherwise be measured as a slow server.)
#
# Then OUT/summary.csv and OUT/summary.md (summarize.sh): medians over the
# clean runs and the ratios to the baseline (the first echo server of the
# list, the first http server), each ratio taken within a run and then the
# median of those; OUT/caption.txt (when, where, how); with gnuplot, the SVG
# plots (plot.sh).
#
# The server list (FILE) has one server per line, "name protocol command",
# where the command may use {port} and {dir} (a scratch directory), or
# "name protocol SKIP reason" for one that is not available. Echo load
# comes from the bench's own load generator, HTTP load from wrk when it is
# installed (else the load generator's HTTP mode: --http-client).
#
# Exit status 0 when every measurement succeeded, 1 when any failed (a
# mismatch, a lost echo, a non-200 answer, a server that did not start or
# did not stop cleanly: the rest still run), 2 on bad arguments.
set -uo pipefail

usage() {
    cat <<'USAGE'
Usage: run.sh --loadgen PATH --probe PATH --servers FILE --out DIR [options]

  --work DIR             scratch directory: logs, nginx's prefix (default OUT/work)
  --seconds S            measured seconds per run, an integer (default 3)
  --warmup S             load generator's warm-up before measuring (default 0.5)
  --runs R               runs of every measurement (default 3)
  --echo-connections L   echo connection counts (default "1 100 1000")
  --http-connections L   HTTP connection counts (default "50 500")
  --size B               echo message size (default 64)
  --depth D              messages in flight per connection (default 1)
  --http-path PATH       what HTTP clients ask for (default /bytes/13)
  --http-client C        wrk, loadgen or auto: wrk when installed (default auto)
  --only REGEX           only the servers whose name matches
  --no-pin               do not pin the server to CPU 0 and the client to CPU 1
  --max-other PCT        wait for the rest of the machine to use less than PCT %
                         of a core before measuring, and measure again when it
                         used more meanwhile (default 25; 0: never)
  --clean PCT            the summary's medians keep the runs during which the rest
                         of the machine used at most PCT % of a core (default 10)
  --plot PATH            plot.sh to run at the end (default: next to run.sh)
  --caption TEXT         what the servers run on, for the caption (default "One
                         server thread")
USAGE
}

here=$(cd "$(dirname "$0")" && pwd)
loadgen='' probe='' servers='' out='' work=''
seconds=3 warmup=0.5 runs=3 size=64 depth=1
echo_connections='1 100 1000' http_connections='50 500'
http_path=/bytes/13 http_client=auto only='' pin=yes plot=$here/plot.sh max_other=25 clean=10
caption_threads='One server thread'
while [ $# -gt 0 ]; do
    case $1 in
    --loadgen) loadgen=$2 ;;
    --probe) probe=$2 ;;
    --servers) servers=$2 ;;
    --out) out=$2 ;;
    --work) work=$2 ;;
    --seconds) seconds=$2 ;;
    --warmup) warmup=$2 ;;
    --runs) runs=$2 ;;
    --echo-connections) echo_connections=$2 ;;
    --http-connections) http_connections=$2 ;;
    --size) size=$2 ;;
    --depth) depth=$2 ;;
    --http-path) http_path=$2 ;;
    --http-client) http_client=$2 ;;
    --only) only=$2 ;;
    --plot) plot=$2 ;;
    --max-other) max_other=$2 ;;
    --clean) clean=$2 ;;
    --caption) caption_threads=$2 ;;
    --no-pin) pin=no; shift; continue ;;
    -h | --help) usage; exit 0 ;;
    *) usage >&2; exit 2 ;;
    esac
    [ $# -ge 2 ] || { usage >&2; exit 2; }
    shift 2
done
is_count() { case $1 in '' | *[!0-9]*) return 1 ;; *) [ "$1" -gt 0 ] ;; esac; }
if [ -z "$loadgen" ] || [ -z "$probe" ] || [ -z "$servers" ] || [ -z "$out" ] ||
    ! is_count "$seconds" || ! is_count "$runs" || ! is_count "$size" || ! is_count "$depth" ||
    ! [[ $max_other =~ ^[0-9]+$ ]] || ! [[ $clean =~ ^[0-9]+$ ]]; then
    usage >&2
    exit 2
fi
for c in $echo_connections $http_connections; do is_count "$c" || { usage >&2; exit 2; }; done
case $http_client in
auto) if command -v wrk >/dev/null; then http_client=wrk; else http_client=loadgen; fi ;;
wrk | loadgen) ;;
*) usage >&2; exit 2 ;;
esac
[ -n "$work" ] || work=$out/work
mkdir -p "$out" "$work" || exit 1
failures=0
fail() { echo "FAILED: $*"; failures=$((failures + 1)); }

# ---- the servers ------------------------------------------------------------------------
echo_names=() echo_commands=() http_names=() http_commands=()
while read -r name protocol command; do
    case $name in '' | '#'*) continue ;; esac
    if [ -n "$only" ] && ! [[ $name =~ $only ]]; then continue; fi
    if [[ $command == SKIP* ]]; then
        echo "skipped: $name ($protocol): ${command#SKIP }"
        continue
    fi
    case $protocol in
    echo) echo_names+=("$name") echo_commands+=("$command") ;;
    http) http_names+=("$name") http_commands+=("$command") ;;
    *) echo "run.sh: $servers: unknown protocol '$protocol' for $name" >&2; exit 2 ;;
    esac
done <"$servers"
if [ ${#http_names[@]} -gt 0 ] && [ "$http_client" = wrk ] && ! command -v wrk >/dev/null; then
    echo "run.sh: --http-client wrk, but wrk is not installed (Debian: apt-get install wrk)" >&2
    exit 2
fi

# ---- the machine: pinning, descriptors -------------------------------------------------------
server_pin=() client_pin=()
cores=$(nproc)
if [ $pin = yes ] && command -v taskset >/dev/null && [ "$cores" -ge 2 ]; then
    server_pin=(taskset -c 0) client_pin=(taskset -c 1)
    pinning="server pinned to CPU 0, client to CPU 1"
else
    pinning="not pinned"
fi
# 1000 connections need 1000 descriptors in the client and in the server,
# more than a shell's usual soft limit (1024) allows with everything else.
most=1
for c in $echo_connections $http_connections; do [ "$c" -gt "$most" ] && most=$c; done
needed=$((most + 64))
soft=$(ulimit -Sn) hard=$(ulimit -Hn)
if [ "$soft" != unlimited ] && [ "$soft" -lt "$needed" ]; then
    if [ "$hard" = unlimited ] || [ "$hard" -ge "$needed" ]; then
        ulimit -Sn "$needed"
    else
        echo "run.sh: $most connections need $needed descriptors, the hard limit is $hard" >&2
        exit 1
    fi
fi
echo "descriptors: soft limit $(ulimit -Sn), hard $(ulimit -Hn); $pinning; HTTP client: $http_client"

# ---- one server ----------------------------------------------------------------------------
server_pid=''
alive() { # the process exists and is not a zombie
    local state
    state=$(sed -e 's/^.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1) || return 1
    [ -n "$state" ] && [ "$state" != Z ]
}
stop_server() { # SIGTERM, 10 s to stop, then SIGKILL; returns its exit status
    local pid=$server_pid status
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null
    for _ in $(seq 100); do alive "$pid" || break; sleep 0.1; done
    if alive "$pid"; then
        echo "  $pid did not stop within 10 s of SIGTERM: SIGKILL"
        kill -KILL "$pid" 2>/dev/null
    fi
    wait "$pid" 2>/dev/null
    status=$?
    server_pid=''
    return $status
}
trap 'stop_server; exit 130' INT TERM
trap 'stop_server' EXIT

start_server() { # name command dir: sets server_pid and port
    local name=$1 template=$2 dir=$3 command argv
    for _ in 1 2 3; do
        port=$("$probe" free-port) || return 1
        command=${template//\{port\}/$port}
        command=${command//\{dir\}/$dir}
        read -r -a argv <<<"$command"
        "${server_pin[@]}" "${argv[@]}" >"$dir/server.log" 2>&1 &
        server_pid=$!
        # Up to 10 s for it to accept, unless it has died already.
        for _ in $(seq 50); do
            if "$probe" wait-port "$port" 0.2; then
                alive "$server_pid" && return 0
                break
            fi
            alive "$server_pid" || break
        done
        stop_server # it did not start (the port was taken?): another port
    done
    echo "  $name did not start; its output:"
    sed 's/^/    /' "$dir/server.log"
    return 1
}

# ---- a quiet machine ------------------------------------------------------------------------
# Before each measurement, wait (60 s at most) for half a second in which
# the rest of the machine keeps its CPUs busy for less than --max-other %
# of a core: a neighbour's burst passes instead of landing in the numbers.
wait_quiet() {
    [ "$max_other" -gt 0 ] || return 0
    local before after waited=0
    while [ $waited -lt 120 ]; do
        before=$("$probe" busy-ns) || return 0
        sleep 0.5
        after=$("$probe" busy-ns) || return 0
        # busy ns over 0.5 s, in % of one core: (after - before) / 5e6
        [ $(((after - before) / 5000000)) -le "$max_other" ] && return 0
        waited=$((waited + 1))
    done
    printf '(the machine stayed busy) '
}

# ---- one measurement -----------------------------------------------------------------------
results=$out/results.csv
echo "server,protocol,connections,run,round_trips_per_s,p50_us,p99_us,cpu_us_per_rt,max_us,server_cpu_pct,client_cpu_pct,other_cpu_pct,client" >"$results"

to_us() { # wrk's "283.00us", "1.21ms", "2.00s"
    awk -v v="$1" 'BEGIN {
        n = v + 0
        if (v ~ /us$/) print n; else if (v ~ /ms$/) print n * 1000;
        else if (v ~ /s$/) print n * 1000000; else print "" }'
}

# echo, or http with the load generator: its CSV line
run_loadgen() { # protocol connections log
    local extra=()
    [ "$1" = http ] && extra=(--http "$http_path")
    timeout -k 5 $((seconds + 60)) "${client_pin[@]}" "$loadgen" --port "$port" \
        --connections "$2" --size "$size" --depth "$depth" --seconds "$seconds" \
        --warmup "$warmup" --server-pid "$server_pid" --csv "${extra[@]}" 2>"$3"
}

# http with wrk: the same fields, from its text and /proc around it
run_wrk() { # connections log
    local cpu_before cpu_after busy_before busy_after start end times requests span
    cpu_before=$("$probe" cpu-ns "$server_pid") || return 1
    busy_before=$("$probe" busy-ns) || return 1
    start=$(date +%s%N)
    TIMEFORMAT='%3U %3S'
    { time timeout -k 5 $((seconds + 60)) "${client_pin[@]}" wrk -t1 -c"$1" -d"${seconds}s" \
        --latency --timeout 10s "http://127.0.0.1:$port$http_path" >"$2" 2>&1; } 2>"$2.time"
    local status=$?
    end=$(date +%s%N)
    busy_after=$("$probe" busy-ns) || return 1
    cpu_after=$("$probe" cpu-ns "$server_pid") || return 1
    [ $status -eq 0 ] || return $status
    if grep -q 'Non-2xx or 3xx responses' "$2"; then
        echo "  wrk: $(grep 'Non-2xx' "$2")" >&2
        return 1
    fi
    if grep -q 'Socket errors' "$2"; then
        echo "  wrk: $(grep 'Socket errors' "$2")" >&2
        return 1
    fi
    requests=$(awk '/requests in/ { print $1 }' "$2")
    span=$(awk '/requests in/ { sub(/s,$/, "", $4); print $4 }' "$2")
    times=$(cat "$2.time")
    [ -n "$requests" ] && [ "$requests" -gt 0 ] || return 1
    awk -v requests="$requests" -v span="$span" -v wall_ns=$((end - start)) \
        -v cpu_ns=$((cpu_after - cpu_before)) -v busy_ns=$((busy_after - busy_before)) \
        -v times="$times" \
        -v p50="$(to_us "$(awk '$1 == "50%" { print $2 }' "$2")")" \
        -v p99="$(to_us "$(awk '$1 == "99%" { print $2 }' "$2")")" \
        -v max="$(to_us "$(awk '$1 == "Latency" && NF >= 4 { print $4 }' "$2")")" 'BEGIN {
            split(times, t, " ")
            client_ns = (t[1] + t[2]) * 1e9
            other = (busy_ns - cpu_ns - client_ns) / wall_ns * 100
            printf "%.0f,%s,%s,%s,%.3f,%.1f,%.1f,%.1f,%d,%s\n", requests / span, p50, p99, max,
                cpu_ns / 1000 / requests, cpu_ns / wall_ns * 100, client_ns / wall_ns * 100,
                other < 0 ? 0 : other, requests, span }'
}

measure() { # name protocol command connections run
    local name=$1 protocol=$2 command=$3 connections=$4 run=$5 client line status stopped
    local dir=$work/$name-$protocol-$connections-$run attempt
    client=loadgen
    [ "$protocol" = http ] && client=$http_client
    printf '%-9s %-4s %4s connections, run %s: ' "$name" "$protocol" "$connections" "$run"
    for attempt in 1 2 3; do
        wait_quiet
        rm -rf "$dir" && mkdir -p "$dir"
        if ! start_server "$name" "$command" "$dir"; then
            fail "$name $protocol $connections connections run $run: the server did not start"
            return
        fi
        if [ $client = wrk ]; then
            line=$(run_wrk "$connections" "$dir/client.log")
        else
            line=$(run_loadgen "$protocol" "$connections" "$dir/client.log")
        fi
        status=$?
        stop_server
        stopped=$?
        if [ $status -ne 0 ] || [ -z "$line" ]; then
            fail "$name $protocol $connections connections run $run: the client said (status $status):"
            sed 's/^/    /' "$dir/client.log"
            return
        fi
        # round_trips_per_s,p50,p99,max,cpu_us_per_rt,server%,client%,other%,round_trips,seconds
        IFS=, read -r rate p50 p99 max cpu server_pct client_pct other_pct _ <<<"$line"
        if [ "$max_other" -eq 0 ] || [ $attempt -eq 3 ] || [ -z "$other_pct" ] ||
            [ "${other_pct%.*}" -le "$max_other" ]; then
            break
        fi
        printf 'other programs took %s %% of a core: again\n%-9s %-4s %4s connections, run %s: ' \
            "$other_pct" "$name" "$protocol" "$connections" "$run"
    done
    echo "$name,$protocol,$connections,$run,$rate,$p50,$p99,$cpu,$max,$server_pct,$client_pct,$other_pct,$client" >>"$results"
    printf '%8s/s  p50 %7s us  p99 %7s us  CPU %6s us  server %5s %%  client %5s %%  other %4s %%\n' \
        "$rate" "$p50" "$p99" "$cpu" "$server_pct" "$client_pct" "$other_pct"
    if [ $stopped -ne 0 ]; then
        fail "$name did not stop cleanly on SIGTERM (exit status $stopped); its output:"
        sed 's/^/    /' "$dir/server.log"
    fi
}

# ---- the runs -------------------------------------------------------------------------------
echo "echo servers: ${echo_names[*]:-none}; HTTP servers: ${http_names[*]:-none}"
echo "$runs run(s) of $seconds s each (after a ${warmup} s warm-up for the load generator)"
for run in $(seq "$runs"); do
    for connections in $echo_connections; do
        for i in "${!echo_names[@]}"; do
            measure "${echo_names[$i]}" echo "${echo_commands[$i]}" "$connections" "$run"
        done
    done
    for connections in $http_connections; do
        for i in "${!http_names[@]}"; do
            measure "${http_names[$i]}" http "${http_commands[$i]}" "$connections" "$run"
        done
    done
done

# ---- the summary ----------------------------------------------------------------------------
"$here/summarize.sh" "$out" "$clean" || fail "the summary"

# ---- when, where, how: the caption of every plot ------------------------------------------
cpu_model=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
virtual=''
grep -qw hypervisor /proc/cpuinfo && virtual=', virtual machine'
http_how="wrk -t1"
[ "$http_client" = loadgen ] && http_how="the load generator's HTTP mode"
{
    echo "Measured $(date -u +%Y-%m-%d) on ${cpu_model:-an unknown CPU} ($cores cores$virtual), Linux $(uname -r)."
    echo "$caption_threads; $pinning; $runs runs of $seconds s, medians of the runs other programs left alone; server CPU time from schedstat."
    echo "Echo: the bench's load generator (raw epoll), ${size}-byte messages, depth $depth. HTTP: $http_how, GET $http_path."
} >"$out/caption.txt"
echo
echo "results: $results, $out/summary.csv, $out/summary.md"
if command -v gnuplot >/dev/null && [ -x "$plot" ]; then
    "$plot" "$out" "$out" || fail "the plots"
else
    echo "skipped: the plots (gnuplot not installed: Debian: apt-get install gnuplot-nox)"
fi
if [ $failures -gt 0 ]; then
    echo "$failures measurement(s) failed"
    exit 1
fi
