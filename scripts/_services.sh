# Sourced by scripts/test: start the real peers the tests use, on 127.0.0.1 only, under ./.peers.
# PostgreSQL: a throwaway cluster on port 5433 (fsync off), stopped when the tests end.

PEERS="${DIGEST_PEERS_DIR:-$ROOT/.peers}"
PG_PORT="${DIGEST_PG_PORT:-5433}"

start_postgres() {
  command -v apt-get >/dev/null 2>&1 && { apt_install postgresql || true; }
  local bin
  bin="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
  if [ -z "$bin" ]; then
    echo "digest: PostgreSQL is not installed; its tests will fail (apt-get install postgresql)" >&2
    return 0
  fi
  local run=()
  if [ "$(id -u)" -eq 0 ]; then
    install -d -o postgres -g postgres -m 700 "$PEERS/pg"
    run=(runuser -u postgres --)
  else
    mkdir -p "$PEERS/pg" && chmod 700 "$PEERS/pg"
  fi
  if [ ! -f "$PEERS/pg/data/PG_VERSION" ]; then
    "${run[@]}" "$bin/initdb" -D "$PEERS/pg/data" -U postgres -A trust -E UTF8 \
      --locale=C.UTF-8 --no-sync >"$PEERS/pg-initdb.log" 2>&1 || {
        echo "digest: initdb failed, see $PEERS/pg-initdb.log" >&2; return 1; }
  fi
  "${run[@]}" "$bin/pg_ctl" -D "$PEERS/pg/data" status >/dev/null 2>&1 ||
    "${run[@]}" "$bin/pg_ctl" -D "$PEERS/pg/data" -l "$PEERS/pg/server.log" -w -t 30 \
      -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PEERS/pg -c fsync=off -c synchronous_commit=off" \
      start >/dev/null || { echo "digest: PostgreSQL did not start, see $PEERS/pg/server.log" >&2; return 1; }
  export DIGEST_TEST_POSTGRES_URL="postgresql+psycopg://postgres@127.0.0.1:$PG_PORT/postgres"
  PG_STOP=("${run[@]}" "$bin/pg_ctl" -D "$PEERS/pg/data" -m fast -w stop)
}

stop_services() {
  if [ -n "${PG_STOP+x}" ]; then "${PG_STOP[@]}" >/dev/null 2>&1 || true; fi
}
