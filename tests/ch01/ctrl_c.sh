#!/bin/sh
# ctrl_c.sh DEMO - start the demo with a long limit, wait until it says it is
# running, send it SIGINT as Ctrl-C would, and pass on its exit status.
demo="$1"
out="${TMPDIR:-/tmp}/ch01_ctrl_c.$$"
"$demo" --seconds 60 >"$out" 2>&1 &
pid=$!
tries=0
until grep -q "press Ctrl-C" "$out"; do
    tries=$((tries + 1))
    if [ "$tries" -gt 200 ]; then
        echo "the demo never said it was running"
        kill "$pid"
        cat "$out"
        rm -f "$out"
        exit 1
    fi
    sleep 0.1
done
sleep 0.5 # let it turn a few times
kill -INT "$pid"
wait "$pid"
status=$?
cat "$out"
rm -f "$out"
exit "$status"
