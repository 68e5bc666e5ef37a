#!/usr/bin/env bash
# Runs examples/chat as a cluster on this machine: a NATS server with
# JetStream, three chat servers (wsplexnats/examples/chat) on it, and nginx
# in front of them, round robin, on http://127.0.0.1:8080/. Open it in two
# tabs: each page lands on one of the servers, and the rooms span them.
# Stop one server (the script prints their PIDs) and its pages reconnect
# through nginx to another, resuming their rooms where they were.
# Needs Debian's nginx; nats-server is built from the Go module that
# wsplexnats/go.mod pins. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/../../.."
command -v nginx >/dev/null || { echo "needs nginx: apt-get install nginx" >&2; exit 1; }
dir=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT INT TERM

(cd wsplexnats && go build -o "$dir/" github.com/nats-io/nats-server/v2 ./examples/chat)
"$dir/nats-server" -a 127.0.0.1 -p 4222 -js -sd "$dir/jetstream" 2>"$dir/nats.log" &
pids+=($!)
for _ in $(seq 100); do
  grep -q "Server is ready" "$dir/nats.log" && break
  sleep 0.1
done
grep -q "Server is ready" "$dir/nats.log" || { cat "$dir/nats.log" >&2; exit 1; }
echo "nats-server on 127.0.0.1:4222 (log: $dir/nats.log)"
upstream=""
for port in 8081 8082 8083; do
  "$dir/chat" -listen "127.0.0.1:$port" -nats nats://127.0.0.1:4222 &
  pids+=($!)
  echo "chat server on 127.0.0.1:$port: pid $!"
  upstream+="server 127.0.0.1:$port; "
done

cp docs/nginx/wsplex-proxy.conf "$dir/"
user=""
[ "$(id -u)" = 0 ] && user="user root;"
cat >"$dir/nginx.conf" <<CONF
worker_processes 1;
pid $dir/nginx.pid;
error_log stderr warn;
$user
events { worker_connections 1024; }
http {
  access_log off;
  map \$http_upgrade \$connection_upgrade { default upgrade; '' close; }
  upstream chat { $upstream }
  server {
    listen 127.0.0.1:8080;
    location / { proxy_pass http://chat; include $dir/wsplex-proxy.conf; }
  }
}
CONF
nginx -p "$dir" -c "$dir/nginx.conf" -g "daemon off;" &
pids+=($!)
echo "chat: open http://127.0.0.1:8080/ in two browser tabs (Ctrl-C stops the cluster)"
wait -n "${pids[@]}"
