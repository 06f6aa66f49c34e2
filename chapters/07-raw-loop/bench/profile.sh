#!/usr/bin/env bash
# profile.sh - where an echo server's CPU time goes under the bench's load:
# the server pinned to CPU 0, the load generator to CPU 1 (as in run.sh),
# and while it runs
#   1. perf stat counts the server's system calls, by kind;
#   2. perf record samples it (user and kernel, no call graphs: the release
#      build keeps no frame pointers), and perf report lists the top symbols.
#
#   profile.sh --loadgen PATH --probe PATH --out DIR [--connections N]
#              [--seconds S] NAME COMMAND...
#
# COMMAND starts the server, with {port} where the port goes. Writes
# DIR/NAME.syscalls.txt (counts and per round trip), DIR/NAME.report.txt
# (perf report, flat, symbols over 0.5 %), DIR/NAME.dso.txt (by program and
# library: the kernel's share), DIR/NAME.user.txt (user-space symbols over
# 0.1 %) and DIR/NAME.loadgen.txt. Two
# separate load runs, one per perf mode, so that neither pays for the other.
# Needs perf (Debian: linux-perf) and the right to trace the server (root,
# or kernel.perf_event_paranoid <= 1 for kernel samples).
set -uo pipefail
loadgen='' probe='' out='' connections=100 seconds=4
while [ $# -gt 0 ]; do
    case $1 in
    --loadgen) loadgen=$2; shift 2 ;;
    --probe) probe=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    --connections) connections=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    *) break ;;
    esac
done
if [ -z "$loadgen" ] || [ -z "$probe" ] || [ -z "$out" ] || [ $# -lt 2 ]; then
    echo "Usage: profile.sh --loadgen PATH --probe PATH --out DIR [--connections N] [--seconds S] NAME COMMAND..." >&2
    exit 2
fi
command -v perf >/dev/null || { echo "profile.sh: perf is not installed (Debian: linux-perf)" >&2; exit 2; }
name=$1
shift
mkdir -p "$out" || exit 1
pid=''
trap '[ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null' EXIT

start() { # the server on a free port, pinned to CPU 0
    port=$("$probe" free-port) || exit 1
    local argv=("${@//\{port\}/$port}")
    taskset -c 0 "${argv[@]}" >"$out/$name.server.txt" 2>&1 &
    pid=$!
    "$probe" wait-port "$port" 10 || { echo "profile.sh: $name did not start" >&2; exit 1; }
}
stop() {
    kill -TERM "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
    pid=''
}
load() { # round trips in a fixed count: the loadgen's count is the divisor
    taskset -c 1 "$loadgen" --port "$port" --connections "$connections" --seconds "$seconds" \
        --warmup 0 --server-pid "$pid" >>"$out/$name.loadgen.txt" 2>&1
}
round_trips() { # of the last load run in the loadgen's text
    awk '/round trips +[0-9]+ \(/ { n = $3 } END { print n }' "$out/$name.loadgen.txt"
}

: >"$out/$name.loadgen.txt"
# 1. system calls, by kind (tracepoints count every call; no sampling)
start "$@"
events=raw_syscalls:sys_enter
for call in epoll_wait epoll_pwait epoll_ctl recvfrom sendto recvmsg sendmsg read write readv \
    writev futex accept4; do
    events+=",syscalls:sys_enter_$call"
done
perf stat -x, -e "$events" -p "$pid" -o "$out/$name.perf-stat.csv" &
stat_pid=$!
sleep 0.2
load
kill -INT $stat_pid
wait $stat_pid 2>/dev/null
stop
trips=$(round_trips)
{
    echo "# $name: system calls of the server while $connections connections ran $seconds s"
    echo "# ($trips round trips; perf stat -e raw_syscalls:sys_enter and syscalls:sys_enter_*)"
    awk -F, -v trips="$trips" '$1 ~ /^[0-9]+$/ && $1 > 0 {
        sub(/^.*sys_enter_?/, "", $3); if ($3 == "") $3 = "all"
        printf "%-14s %12d  %.3f per round trip\n", $3, $1, $1 / trips }' "$out/$name.perf-stat.csv"
} >"$out/$name.syscalls.txt"
rm -f "$out/$name.perf-stat.csv"

# 2. where the time goes
start "$@"
perf record -q -F 4999 -p "$pid" -o "$out/$name.perf.data" 2>/dev/null &
record_pid=$!
sleep 0.2
load
kill -INT $record_pid
wait $record_pid 2>/dev/null
stop
perf report -i "$out/$name.perf.data" --stdio --no-children --sort sym,dso --percent-limit 0.5 \
    2>/dev/null | grep -v '^$' >"$out/$name.report.txt"
perf report -i "$out/$name.perf.data" --stdio --no-children --sort dso 2>/dev/null |
    grep -v '^$' >"$out/$name.dso.txt"
# The program's own share, symbol by symbol (the kernel's [k] lines left out).
perf report -i "$out/$name.perf.data" --stdio --no-children --sort sym,dso --percent-limit 0.1 \
    2>/dev/null | grep -v '^$' | grep -v '\[k\]' >"$out/$name.user.txt"
rm -f "$out/$name.perf.data" "$out/$name.perf.data.old"
echo "$name: $out/$name.{syscalls,report,dso,user}.txt"
