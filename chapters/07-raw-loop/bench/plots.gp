# plots.gp - chapter 7's benchmark plots (plot.sh sets summary, outdir,
# caption, echo_servers and http_servers). summary.csv's columns:
#   1 protocol  2 server  3 connections  4 runs  5 clean_runs
#   6 round_trips_per_s  7 p50_us  8 p99_us  9 cpu_us_per_rt
#   10 rate_vs_baseline  11 cpu_vs_baseline  12 server_cpu_pct
#   13 client_cpu_pct  14 other_cpu_pct
set datafile separator comma
set terminal svg size 800,540 dynamic font "sans,12" background rgb "white"
set grid ytics lc rgb "#dddddd"
set key outside right top box
set logscale x 10
set yrange [0:*]
set bmargin 8
set label 1 caption at screen 0.01, screen 0.075 left font ",10" noenhanced

# Rows of one server and protocol give x; the others are skipped (NaN).
row(p, s) = (strcol(1) eq p && strcol(2) eq s) ? column(3) : NaN

if (strlen(echo_servers) > 0) {
    set xrange [0.7:1500]
    set xtics ("1" 1, "10" 10, "100" 100, "1000" 1000)
    set xlabel "connections"

    set output outdir."/echo_round_trips.svg"
    set title "Echo: round trips per second (one server thread)"
    set ylabel "round trips per second"
    plot for [s in echo_servers] summary using (row("echo", s)):6 with linespoints title s noenhanced lw 2 pt 7 ps 0.8

    set output outdir."/echo_cpu.svg"
    set title "Echo: server CPU time per round trip (lower is better)"
    set ylabel "server CPU microseconds per round trip"
    plot for [s in echo_servers] summary using (row("echo", s)):9 with linespoints title s noenhanced lw 2 pt 7 ps 0.8
}

if (strlen(http_servers) > 0) {
    set xrange [35:700]
    set xtics ("50" 50, "100" 100, "500" 500)
    set xlabel "connections"

    set output outdir."/http_requests.svg"
    set title "HTTP keep-alive: requests per second (one server worker)"
    set ylabel "requests per second"
    plot for [s in http_servers] summary using (row("http", s)):6 with linespoints title s noenhanced lw 2 pt 7 ps 0.8

    set output outdir."/http_cpu.svg"
    set title "HTTP keep-alive: server CPU time per request (lower is better)"
    set ylabel "server CPU microseconds per request"
    plot for [s in http_servers] summary using (row("http", s)):9 with linespoints title s noenhanced lw 2 pt 7 ps 0.8
}
set output
