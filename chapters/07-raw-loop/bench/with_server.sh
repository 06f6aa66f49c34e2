#!/usr/bin/env bash
# with_server.sh STATUS REGEX SERVER... -- CLIENT... - a test of the load
# generator against a server: starts SERVER (which prints "listening on
# 127.0.0.1:PORT"), runs CLIENT with {port} and {pid} (the server's)
# replaced, then stops the server
# with SIGTERM. Passes (exit 0) when the client exits with STATUS, its
# output matches the extended regex REGEX, and the server stops with
# status 0 (a clean stop; under AddressSanitizer, no leak).
set -uo pipefail
if [ $# -lt 5 ]; then
    echo "Usage: with_server.sh STATUS REGEX SERVER... -- CLIENT..." >&2
    exit 2
fi
expect_status=$1 expect_output=$2
shift 2
server=()
while [ $# -gt 0 ] && [ "$1" != -- ]; do server+=("$1"); shift; done
[ $# -gt 1 ] || { echo "with_server.sh: no client after --" >&2; exit 2; }
shift
scratch=$(mktemp -d)
"${server[@]}" >"$scratch/server.out" 2>&1 &
pid=$!
stop() { # SIGTERM; SIGKILL from a watchdog if it has not stopped in 10 s
    kill -TERM "$pid" 2>/dev/null
    (sleep 10 && kill -KILL "$pid") >/dev/null 2>&1 &
    local watchdog=$! status
    wait "$pid"
    status=$?
    kill "$watchdog" 2>/dev/null
    return $status
}
trap 'kill -KILL "$pid" 2>/dev/null; rm -rf "$scratch"' EXIT
port=''
for _ in $(seq 100); do
    port=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$scratch/server.out" | head -n 1)
    [ -n "$port" ] && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
done
if [ -z "$port" ]; then
    echo "FAIL: the server did not say where it listens:"
    cat "$scratch/server.out"
    exit 1
fi
client=()
for argument in "$@"; do
    argument=${argument//\{port\}/$port}
    client+=("${argument//\{pid\}/$pid}")
done
echo "client: ${client[*]}"
output=$("${client[@]}" 2>&1)
status=$?
echo "$output"
stop
server_status=$?
echo "server (status $server_status):"
sed 's/^/  /' "$scratch/server.out"
result=0
if [ "$status" -ne "$expect_status" ]; then
    echo "FAIL: the client exited with $status, expected $expect_status"
    result=1
fi
if ! grep -Eq -- "$expect_output" <<<"$output"; then
    echo "FAIL: the client's output does not match /$expect_output/"
    result=1
fi
if [ "$server_status" -ne 0 ]; then
    echo "FAIL: the server exited with $server_status after SIGTERM, expected 0"
    result=1
fi
[ $result -eq 0 ] && echo "PASS"
# A test listed as a known deviation of the platform (ctest sets this; see
# tests/appendix-kqueue/deviations-libkqueue.txt) is reported as skipped,
# with the reason, when it fails.
if [ $result -ne 0 ] && [ -n "${EVQ_TEST_KNOWN_DEVIATION:-}" ]; then
    echo "SKIPPED: known deviation of $EVQ_TEST_KNOWN_DEVIATION"
fi
exit $result
