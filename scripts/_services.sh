# Sourced by scripts/test: start the real peers the tests use, on 127.0.0.1 only, under ./.peers.
# PostgreSQL: a throwaway cluster on port 5433, or the next free one when another checkout's
# tests hold it (fsync off), stopped when the tests end.

PEERS="${DIGEST_PEERS_DIR:-$ROOT/.peers}"

free_port() {
  local port
  for port in $(seq "${1:-5433}" 5533); do
    (echo >"/dev/tcp/127.0.0.1/$port") 2>/dev/null || { echo "$port"; return; }
  done
  echo 5433
}
PG_PORT="${DIGEST_PG_PORT:-$(free_port)}"

start_postgres() {
  command -v apt-get >/dev/null 2>&1 && { apt_install postgresql || true; }
  local bin
  bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
  if [ -z "$bin" ]; then
    echo "digest: PostgreSQL is not installed; its tests will fail (apt-get install postgresql)" >&2
    return 0
  fi
  local run=() pgdir="$PEERS/pg"
  mkdir -p "$PEERS"
  if [ "$(id -u)" -eq 0 ]; then
    run=(runuser -u postgres --)
    if ! runuser -u postgres -- test -x "$PEERS" 2>/dev/null; then
      # The checkout is in a folder the postgres user cannot enter (mktemp -d makes 0700
      # folders): the cluster goes to /tmp instead, one per checkout.
      pgdir="/tmp/digest-pg-$(printf %s "$ROOT" | md5sum | cut -c1-10)"
    fi
    install -d -o postgres -g postgres -m 700 "$pgdir"
  else
    mkdir -p "$pgdir" && chmod 700 "$pgdir"
  fi
  if [ ! -f "$pgdir/data/PG_VERSION" ]; then
    "${run[@]}" "$bin/initdb" -D "$pgdir/data" -U postgres -A trust -E UTF8 \
      --locale=C.UTF-8 --no-sync >"$PEERS/pg-initdb.log" 2>&1 || {
        echo "digest: initdb failed, see $PEERS/pg-initdb.log" >&2; return 1; }
  fi
  if "${run[@]}" "$bin/pg_ctl" -D "$pgdir/data" status >/dev/null 2>&1; then
    PG_PORT="$(sed -n 4p "$pgdir/data/postmaster.pid")"  # this checkout's, left running
  else
    local tries=0
    # Another checkout's tests may take the port between the look and the start: then the
    # next free one (unless DIGEST_PG_PORT fixes it).
    until "${run[@]}" "$bin/pg_ctl" -D "$pgdir/data" -l "$pgdir/server.log" -w -t 30 \
      -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $pgdir -c fsync=off -c synchronous_commit=off" \
      start >/dev/null 2>&1; do
      tries=$((tries + 1))
      if [ -n "${DIGEST_PG_PORT:-}" ] || [ "$tries" -ge 5 ] ||
        ! tail -n 5 "$pgdir/server.log" 2>/dev/null | grep -q "already in use"; then
        echo "digest: PostgreSQL did not start, see $pgdir/server.log" >&2; return 1
      fi
      PG_PORT="$(free_port $((PG_PORT + 1)))"
    done
  fi
  export DIGEST_TEST_POSTGRES_URL="postgresql+psycopg://postgres@127.0.0.1:$PG_PORT/postgres"
  PG_STOP=("${run[@]}" "$bin/pg_ctl" -D "$pgdir/data" -m fast -w stop)
}

stop_services() {
  if [ -n "${PG_STOP+x}" ]; then "${PG_STOP[@]}" >/dev/null 2>&1 || true; fi
}
