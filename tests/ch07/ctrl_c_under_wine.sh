#!/bin/bash
# ctrl_c_under_wine.sh PROGRAM RUNNER... - the Windows server's Ctrl-C, for
# real: ch07_server_iocp.exe started under Wine (RUNNER: the build's
# cross-compiling emulator), three connections opened in three states, then
# SIGINT to its process. Wine turns SIGINT into a console CTRL_C_EVENT and
# runs the handlers that SetConsoleCtrlHandler registered, on a thread of
# its own: the server's handler must stop it as sigwait does on POSIX -
# every client sees its connection end, the totals are printed, exit 0.
# test_server_signal.c is the same test for the POSIX programs. Bash for
# its /dev/tcp; every wait is bounded.
set -u
program=$1
shift
limit_s=20

output=$(mktemp)
pid=
cleanup() {
    if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then
        kill -KILL "$pid" 2>/dev/null
    fi
    rm -f "$output"
}
trap cleanup EXIT
fail() {
    echo "FAIL: $*"
    echo "--- the server's output:"
    cat "$output"
    exit 1
}

# Until the output has a line matching $1, for limit_s at most.
wait_for() {
    local tries=$((limit_s * 20))
    while [ "$tries" -gt 0 ]; do
        grep -q -- "$1" "$output" && return 0
        kill -0 "$pid" 2>/dev/null || { grep -q -- "$1" "$output"; return; }
        sleep 0.05
        tries=$((tries - 1))
    done
    return 1
}

# The runner execs Wine, and Wine's loader execs the program: $! is the
# process that gets the signal.
"$@" "$program" --threads 2 --design shared --stats-interval 50 --grace 500 >"$output" 2>&1 &
pid=$!
wait_for "threads: 2" || fail "the server did not start"
echo_port=$(sed -n 's/^echo listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$output")
http_port=$(sed -n 's/^http listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$output")
[ -n "$echo_port" ] && [ -n "$http_port" ] || fail "no ports in the output"

# idle: one request answered, then nothing; half: half a head; talk: an echo.
exec 3<>"/dev/tcp/127.0.0.1/$http_port" || fail "cannot connect (idle)"
exec 4<>"/dev/tcp/127.0.0.1/$http_port" || fail "cannot connect (half)"
exec 5<>"/dev/tcp/127.0.0.1/$echo_port" || fail "cannot connect (talk)"
printf 'GET / HTTP/1.1\r\n\r\n' >&3
IFS= read -r -t "$limit_s" status <&3 || fail "no answer to the request"
[[ $status == "HTTP/1.1 200"* ]] || fail "the answer began '$status'"
printf 'GET / HT' >&4
printf 'echo me' >&5
IFS= read -r -t "$limit_s" -N 7 echoed <&5 || fail "no echo"
[ "$echoed" = "echo me" ] || fail "the echo was '$echoed'"
wait_for "stats: 3 open" || fail "the stats line never said 3 open"

kill -INT "$pid" || fail "cannot signal $pid"
# Each connection must end: EOF (cat exits 0) or a reset (1); 124 is the
# timeout, a connection left open.
for fd in 3 4 5; do
    timeout "$limit_s" cat <&"$fd" >/dev/null 2>&1
    rc=$?
    [ "$rc" -eq 0 ] || [ "$rc" -eq 1 ] || fail "connection $fd did not end after Ctrl-C (cat: $rc)"
done
exec 3>&- 4>&- 5>&-

# Bounded: a server that ignores the handler is killed by the trap at the
# end, after the limit.
tries=$((limit_s * 20))
while kill -0 "$pid" 2>/dev/null && [ "$tries" -gt 0 ]; do
    sleep 0.05
    tries=$((tries - 1))
done
kill -0 "$pid" 2>/dev/null && fail "the server still runs ${limit_s} s after Ctrl-C"
wait "$pid"
status=$?
pid=
[ "$status" -eq 0 ] || fail "exit status $status, not 0"
grep -q "^stopped: accepted 3, requests 2," "$output" || fail "no 'stopped: accepted 3, requests 2,' line"
grep -q "at the stop: 3 closed, 0 finished in the grace, 0 cut" "$output" ||
    fail "the stop did not close the 3 connections at once"
grep "^stopped:" "$output"
echo "PASS ctrl_c_with_connections_open_prints_the_totals_and_exits_0"
