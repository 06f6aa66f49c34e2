#!/usr/bin/env bash
# summarize.sh DIR [CLEAN] - chapter 7's benchmark summary: reads
# DIR/results.csv (written by run.sh) and writes DIR/summary.csv and
# DIR/summary.md (printed too): per protocol, server and connection count,
# the medians over the runs and the ratios to the baseline.
#
# - The baseline of a protocol is its first server in results.csv (run.sh
#   measures the servers in the order of its list).
# - A run is clean when the rest of the machine took at most CLEAN % of a
#   core during it (default 10; the other_cpu_pct column). Medians are taken
#   over the clean runs when there is one, else over all (clean_runs says
#   how many were used: 0 means none was clean).
# - A ratio is taken within one run (same minute, same machine: the
#   server's figure over the baseline's), over the runs where both were
#   clean when there is one, else over all; the median of those is kept.
set -euo pipefail
if [ $# -lt 1 ] || [ $# -gt 2 ]; then
    echo "Usage: summarize.sh DIR [CLEAN]" >&2
    exit 2
fi
dir=$1 clean=${2:-10}
awk -F, -v clean="$clean" -v summary_csv="$dir/summary.csv" '
function median(list,    n, v, i, j, t) {
    n = split(list, v, " ")
    if (n == 0) return ""
    for (i = 2; i <= n; i++) {          # insertion sort: mawk has no asort
        t = v[i] + 0
        for (j = i - 1; j >= 1 && v[j] + 0 > t; j--) v[j + 1] = v[j]
        v[j + 1] = t
    }
    return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
}
function fmt(value, format) { return value == "" ? "" : sprintf(format, value) }
NR == 1 {
    for (i = 1; i <= NF; i++) column[$i] = i
    next
}
{
    server = $column["server"]; protocol = $column["protocol"]
    c = $column["connections"]; run = $column["run"]
    if (!(protocol in baseline)) { baseline[protocol] = server; protocols = protocols " " protocol }
    if (!((protocol, server) in seen)) { seen[protocol, server] = 1; servers[protocol] = servers[protocol] " " server }
    if (!((protocol, c) in counts_seen)) { counts_seen[protocol, c] = 1; counts[protocol] = counts[protocol] " " c }
    key = protocol SUBSEP server SUBSEP c
    other = $column["other_cpu_pct"]
    is_clean = other == "" || other + 0 <= clean
    runs[key]++
    runs_of[key] = runs_of[key] " " run
    for (f = 1; f <= 7; f++) {
        name = field[f]
        value = $column[name]
        if (value == "") continue
        all[key, name] = all[key, name] " " value
        if (is_clean) picked[key, name] = picked[key, name] " " value
    }
    if (is_clean) clean_runs[key]++
    clean_run[key, run] = is_clean
    rate[key, run] = $column["round_trips_per_s"]; cpu[key, run] = $column["cpu_us_per_rt"]
}
BEGIN {
    split("round_trips_per_s p50_us p99_us cpu_us_per_rt server_cpu_pct client_cpu_pct other_cpu_pct", field, " ")
}
function pick(key, name) { return median((key in clean_runs) ? picked[key, name] : all[key, name]) }
function ratios(key, base, values,    n, r, list, run, both, out) {
    n = split(runs_of[key], list, " ")
    for (both = 1; both >= 0; both--) {
        out = ""
        for (r = 1; r <= n; r++) {
            run = list[r]
            if (both && !(clean_run[key, run] && clean_run[base, run])) continue
            if (values == "rate" && rate[base, run] > 0 && rate[key, run] != "") out = out " " rate[key, run] / rate[base, run]
            if (values == "cpu" && cpu[base, run] > 0 && cpu[key, run] != "") out = out " " cpu[key, run] / cpu[base, run]
        }
        if (out != "") return median(out)
    }
    return ""
}
END {
    print "protocol,server,connections,runs,clean_runs,round_trips_per_s,p50_us,p99_us,cpu_us_per_rt,rate_vs_baseline,cpu_vs_baseline,server_cpu_pct,client_cpu_pct,other_cpu_pct" > summary_csv
    np = split(protocols, plist, " ")
    for (p = 1; p <= np; p++) {
        protocol = plist[p]
        base_name = baseline[protocol]
        unit = protocol == "echo" ? "round trip" : "request"
        nc = split(counts[protocol], clist, " ")
        for (i = 2; i <= nc; i++) {      # connection counts in numeric order
            t = clist[i] + 0
            for (j = i - 1; j >= 1 && clist[j] + 0 > t; j--) clist[j + 1] = clist[j]
            clist[j + 1] = t
        }
        printf "\n| %s server | connections | clean runs | %ss/s | vs %s | p50 us | p99 us | server CPU us per %s | vs %s | server CPU %% | client CPU %% | other CPU %% |\n", protocol, unit, base_name, unit, base_name
        print "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
        ns = split(servers[protocol], slist, " ")
        for (s = 1; s <= ns; s++) {
            for (i = 1; i <= nc; i++) {
                c = clist[i]; key = protocol SUBSEP slist[s] SUBSEP c
                if (!(key in runs)) continue
                base = protocol SUBSEP base_name SUBSEP c
                rr = ratios(key, base, "rate"); cr = ratios(key, base, "cpu")
                used = (key in clean_runs) ? clean_runs[key] : 0
                printf "%s,%s,%s,%d,%d,%s,%s,%s,%s,%s,%s,%s,%s,%s\n", protocol, slist[s], c, runs[key], used,
                    fmt(pick(key, "round_trips_per_s"), "%.0f"), fmt(pick(key, "p50_us"), "%.1f"),
                    fmt(pick(key, "p99_us"), "%.1f"), fmt(pick(key, "cpu_us_per_rt"), "%.3f"),
                    fmt(rr, "%.3f"), fmt(cr, "%.3f"), fmt(pick(key, "server_cpu_pct"), "%.1f"),
                    fmt(pick(key, "client_cpu_pct"), "%.1f"), fmt(pick(key, "other_cpu_pct"), "%.1f") > summary_csv
                printf "| %s | %s | %d of %d | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", slist[s], c, used, runs[key],
                    fmt(pick(key, "round_trips_per_s"), "%.0f"), fmt(rr, "%.2f"),
                    fmt(pick(key, "p50_us"), "%.1f"), fmt(pick(key, "p99_us"), "%.1f"),
                    fmt(pick(key, "cpu_us_per_rt"), "%.2f"), fmt(cr, "%.2f"),
                    fmt(pick(key, "server_cpu_pct"), "%.0f"), fmt(pick(key, "client_cpu_pct"), "%.0f"),
                    fmt(pick(key, "other_cpu_pct"), "%.0f")
            }
        }
    }
}' "$dir/results.csv" | tee "$dir/summary.md"
