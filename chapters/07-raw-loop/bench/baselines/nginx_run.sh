#!/usr/bin/env bash
# nginx_run.sh NGINX PORT DIR - run nginx as chapter 7's HTTP baseline:
# writes DIR/nginx.conf from nginx.conf.in (next to this script) with PORT
# and DIR, then replaces itself with nginx in the foreground (exec: the pid
# that started this script is nginx's master; SIGTERM stops it and its
# worker). -p and -e keep nginx away from its compiled-in prefix and log.
set -euo pipefail
if [ $# -ne 3 ]; then
    echo "Usage: nginx_run.sh NGINX PORT DIR" >&2
    exit 2
fi
nginx=$1 port=$2 dir=$3
case $port in '' | *[!0-9]*) echo "nginx_run.sh: bad port '$port'" >&2; exit 2 ;; esac
case $dir in /*) ;; *) dir=$PWD/$dir ;; esac
mkdir -p "$dir"
sed -e "s|@PORT@|$port|g" -e "s|@DIR@|$dir|g" "$(dirname "$0")/nginx.conf.in" >"$dir/nginx.conf"
echo "nginx listening on 127.0.0.1:$port (1 worker process, config $dir/nginx.conf)"
exec "$nginx" -p "$dir" -c "$dir/nginx.conf" -e "$dir/error.log"
