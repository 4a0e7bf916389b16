#!/bin/bash
# Postfix smtp-sink for the send benchmark, on 127.0.0.1 only: install | start [PORT] | stop.
# State (pid, log) under $PEERS_DIR (default ./.peers). install and `-u nobody` need root.
set -euo pipefail
D=$(realpath -m "${PEERS_DIR:-.peers}")
PORT=${2:-${SINK_PORT:-2525}}

wait_port() { for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/$1) 2>/dev/null && return 0; sleep 0.1; done
              echo "port $1 did not come up" >&2; return 1; }

install() {
  if command -v smtp-sink >/dev/null && command -v smtp-source >/dev/null; then echo "postfix tools present"; return; fi
  apt-get update -qq
  echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postfix >/dev/null
  echo "postfix installed"
}

start() {
  # A second smtp-sink binds the same port silently: refuse to start over a live one.
  (exec 3<>/dev/tcp/127.0.0.1/"$PORT") 2>/dev/null && { echo "port $PORT already in use; run '$0 stop' first" >&2; exit 1; }
  mkdir -p "$D/run" "$D/log"
  local user=(); [ "$(id -u)" = 0 ] && user=(-u nobody)
  smtp-sink "${user[@]}" 127.0.0.1:"$PORT" 1024 >"$D/log/smtp-sink.log" 2>&1 & echo $! > "$D/run/smtp-sink.pid"
  wait_port "$PORT"
  echo "smtp-sink on 127.0.0.1:$PORT"
}

stop() {
  if [ -f "$D/run/smtp-sink.pid" ]; then kill "$(cat "$D/run/smtp-sink.pid")" 2>/dev/null || true; rm -f "$D/run/smtp-sink.pid"; fi
  echo "smtp-sink stopped"
}

case "${1:-}" in install) install;; start) start;; stop) stop;; *) echo "usage: $0 install|start [PORT]|stop" >&2; exit 2;; esac
