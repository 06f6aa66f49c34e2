#!/bin/sh
# count_syscalls.sh - system calls per request of chapter 2's demo (Linux).
#
#   chapters/06-threadsafe/demo/count_syscalls.sh BUILD_DIR BACKEND [RUNS]
#
# Starts the delay server as its own process (so that its calls are not
# counted), runs ch06_demo_BACKEND against it RUNS times (default 10) under
# `strace -f`, and prints the average number of each system call per request.
# Only calls made after the demo's first socket() count: loading the program
# is not the queue's cost; neither are the demo's own lines on stdout.
set -eu
build=${1:?usage: count_syscalls.sh BUILD_DIR BACKEND [RUNS]}
backend=${2:?usage: count_syscalls.sh BUILD_DIR BACKEND [RUNS]}
runs=${3:-10}
demo="$build/chapters/06-threadsafe/ch06_demo_$backend"
server="$build/common/delayserver/delayserver"
command -v strace >/dev/null || { echo "count_syscalls.sh: needs strace" >&2; exit 2; }

work=$(mktemp -d)
"$server" --port 0 >"$work/server.log" 2>&1 &
server_pid=$!
trap 'kill "$server_pid" 2>/dev/null; rm -rf "$work"' EXIT INT TERM
port=""
for _ in 1 2 3 4 5 6 7 8 9 10; do
    port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$work/server.log")
    [ -n "$port" ] && break
    sleep 0.2
done
[ -n "$port" ] || { echo "count_syscalls.sh: the delay server did not start" >&2; exit 1; }

i=0
while [ "$i" -lt "$runs" ]; do
    strace -f -qq -o "$work/trace.$i" "$demo" --port "$port" --scale 0.05 >"$work/demo.$i"
    grep -q "5 of 5 answered" "$work/demo.$i" || { cat "$work/demo.$i" >&2; exit 1; }
    i=$((i + 1))
done

echo "$backend: system calls per request ($((runs * 5)) requests, $runs runs)"
cat "$work"/trace.* | awk -v requests=$((runs * 5)) '
    { sub(/^[0-9]+ +/, "") }                  # strace -f prefixes the thread id
    !/^[a-z_0-9]+\(/ { next }                 # "<... resumed>", exit lines
    {
        name = $0; sub(/\(.*/, "", name)
        if (!seen_socket && name != "socket") next
        seen_socket = 1
        if (name == "write" && $0 ~ /^write\(1,/) next  # the demo printing
        if (name == "exit_group") { seen_socket = 0; next }
        count[name]++; total++
    }
    END {
        for (name in count) printf "  %-14s %6.2f\n", name, count[name] / requests
        printf "  %-14s %6.2f\n", "total", total / requests
    }' | sort -k2,2nr
