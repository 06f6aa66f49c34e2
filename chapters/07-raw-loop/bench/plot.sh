#!/usr/bin/env bash
# plot.sh IN OUT - chapter 7's benchmark plots: reads IN/summary.csv and
# IN/caption.txt (written by run.sh) and writes, with gnuplot, into OUT:
#
#   echo_round_trips.svg   echo round trips per second against connections
#   echo_cpu.svg           server CPU time per echo round trip
#   http_requests.svg      HTTP requests per second
#   http_cpu.svg           server CPU time per HTTP request
#
# one line per server, each SVG captioned with when, where and how it was
# measured. `cmake --build <build> --target ch07-bench-plots` runs it on the
# figures in book/figures/07.
set -euo pipefail
if [ $# -ne 2 ]; then
    echo "Usage: plot.sh IN OUT" >&2
    exit 2
fi
in=$1 out=$2
summary=$in/summary.csv
if ! command -v gnuplot >/dev/null; then
    echo "plot.sh: gnuplot is not installed (Debian: apt-get install gnuplot-nox)" >&2
    exit 1
fi
[ -r "$summary" ] || { echo "plot.sh: no $summary (run run.sh first)" >&2; exit 1; }
mkdir -p "$out"
# The servers of each protocol, in the order of the summary (the baseline first).
servers_of() {
    awk -F, -v p="$1" 'NR > 1 && $1 == p && !seen[$2]++ { printf "%s%s", sep, $2; sep = " " }' "$summary"
}
caption=''
[ -r "$in/caption.txt" ] && caption=$(tr -d '"\\' <"$in/caption.txt" | awk '{ printf "%s%s", sep, $0; sep = "\\n" }')
gnuplot -e "summary='$summary'; outdir='$out'; caption=\"$caption\"" \
    -e "echo_servers='$(servers_of echo)'; http_servers='$(servers_of http)'" \
    "$(dirname "$0")/plots.gp"
for f in echo_round_trips echo_cpu http_requests http_cpu; do
    [ -s "$out/$f.svg" ] && echo "plot: $out/$f.svg"
done
exit 0
