"""Many workers on one PostgreSQL outbox: correctness under a kill -9, throughput against
smtp-source, scaling when the server is slow, claim latency with many old rows, failover
of the elected scheduler.

    .venv/bin/python bench/scale.py                      # the quick look (a few minutes)
    .venv/bin/python bench/scale.py --subscribers 200000 --old-rows 5000000 \\
        --latency-recipients 2000 --throughput 20000     # the issue's acceptance sizes

PostgreSQL is started through scripts/_services.sh (as the tests start it) unless
``--database URL`` names one; Postfix's smtp-sink and smtp-source (``scripts/peers.sh
install``) are the sink and the baseline; the correctness run counts every recipient in a
sink of its own (aiosmtpd), which is slower but counts. Workers are real `digest worker`
processes. Sections can be skipped (``--skip claims,failover``) or picked (``--only
claims``: the claim latency alone, 5M old rows in a few minutes). Last line: one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import secrets
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
# ruff: noqa: E402  (digest and bench/send.py are imported after sys.path is set)

from send import add_subscribers, save_edition  # bench/send.py: the same list and edition
from sqlalchemy import create_engine, text

from digest.app import App
from digest.config import load_config
from digest.store import utcnow
from tests.pg import create_database, drop_database

PEERS = ROOT / "scripts" / "peers.sh"
SECRET = secrets.token_urlsafe(32)
CONFIG = """[service]
name = "Bench Desk"
base_url = "https://digest.example"
timezone = "UTC"
database_url = "{database}"
sender = "Bench Desk <news@example.org>"
postal_address = "1 Bench Street"
secret_env = "DIGEST_BENCH_SECRET"

[[digests]]
id = "morning"
title = "Morning Briefing"
schedule = "{schedule}"

[[sources]]
name = "Wire"
url = "https://wire.example/feed.xml"

[delivery]
transport = "smtp"
batch_size = {batch}
lease_seconds = {lease}

[delivery.smtp]
host = "127.0.0.1"
port = {port}
security = "none"
connections = {connections}
timeout_seconds = 60

[schedule]
send = false
leader_check_seconds = {check}

[worker]
poll_seconds = 0.5
heartbeat_seconds = 1.0
{extra}"""


# --- peers -----------------------------------------------------------------------------------


def start_postgres() -> tuple[str, list[str]]:
    """A server through the project's scripts; its URL and the command that stops it."""
    script = (
        "set -e; source scripts/_bootstrap.sh >/dev/null; source scripts/_services.sh; "
        'start_postgres >&2; echo "$DIGEST_TEST_POSTGRES_URL"; printf "%q " "${PG_STOP[@]}"'
    )
    out = subprocess.run(
        ["bash", "-c", script], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout.splitlines()
    return out[0], shlex.split(out[1])


def smtp_sink(folder: Path, port: int, delay: float = 0.0) -> subprocess.Popen[bytes]:
    """Postfix's smtp-sink on 127.0.0.1:port (``delay``: seconds before each DATA reply)."""
    user = ["-u", "nobody"] if os.getuid() == 0 else []
    wait = ["-w", str(int(delay))] if delay else []
    sink = subprocess.Popen(
        ["smtp-sink", *user, *wait, f"127.0.0.1:{port}", "1024"],
        stdout=subprocess.DEVNULL,
        stderr=(folder / f"sink-{port}.log").open("w"),
    )
    _wait_port(port)
    return sink


COUNTING_SINK = """
import asyncio, collections, json, signal, sys
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})  # for sigwait, in every thread
from aiosmtpd.controller import Controller
class H:
    def __init__(self): self.seen = collections.Counter()
    async def handle_DATA(self, server, session, envelope):
        for r in envelope.rcpt_tos: self.seen[r] += 1
        return "250 OK"
h = H(); c = Controller(h, hostname="127.0.0.1", port=int(sys.argv[1])); c.start()
print("ready", flush=True)
signal.sigwait({signal.SIGTERM})
c.stop(); json.dump(h.seen, open(sys.argv[2], "w"))
"""


def counting_sink(folder: Path, port: int) -> tuple[subprocess.Popen[str], Path]:
    """An aiosmtpd sink in its own process that counts each recipient (written at SIGTERM)."""
    out = folder / "counted.json"
    sink = subprocess.Popen(
        [sys.executable, "-c", COUNTING_SINK, str(port), str(out)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert sink.stdout is not None and sink.stdout.readline().strip() == "ready"
    return sink, out


def _wait_port(port: int) -> None:
    import socket

    for _ in range(100):
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise SystemExit(f"nothing listens on {port}")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# --- a deployment in a folder ------------------------------------------------------------------


def write_config(folder: Path, database: str, port: int, **kw: Any) -> Path:
    values = {
        "schedule": "0 3 1 1 *",
        "batch": 200,
        "lease": 30,
        "connections": 10,
        "check": 1.0,
        "extra": "",
    } | kw
    path = folder / f"digest-{port}-{secrets.token_hex(2)}.toml"
    path.write_text(CONFIG.format(database=database, port=port, **values))
    return path


def queued_edition(config: Path, subscribers: int, add: bool = True) -> int:
    """Subscribers (``add``), one 40 KB edition, queued to all of them; its id."""
    os.environ["DIGEST_BENCH_SECRET"] = SECRET
    app = App.open(load_config(config))
    try:
        if add:
            add_subscribers(app, subscribers)
        edition = save_edition(app)
        assert edition.id is not None
        app.store.queue_deliveries(edition.id)
        return edition.id
    finally:
        app.close()


def worker(config: Path, log: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DIGEST_BENCH_SECRET": SECRET}
    return subprocess.Popen(
        [sys.executable, "-m", "digest", "--config", str(config), "worker"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=log.open("w"),
        text=True,
    )


def counts(database: str, edition_id: int) -> dict[str, int]:
    engine = create_engine(database)
    with engine.connect() as connection:
        rows = connection.execute(
            text("SELECT status, count(*) FROM deliveries WHERE edition_id = :e GROUP BY status"),
            {"e": edition_id},
        )
        result = {status: int(n) for status, n in rows}
    engine.dispose()
    return result


# The rows of an edition not settled yet, through the claimable rows' small partial index
# (its statuses as literals, as the index names them); and whether a worker has claimed.
_UNSETTLED = text(
    "SELECT count(*) FROM deliveries WHERE edition_id = :e "
    "AND status IN ('pending', 'deferred', 'sending')"
)
_CLAIMED = text(
    "SELECT EXISTS (SELECT 1 FROM deliveries WHERE edition_id = :e "
    "AND status IN ('sending', 'sent'))"
)


def drain(database: str, edition_id: int, total: int, limit: float) -> float:
    """Seconds until every row of the edition is recorded sent (or ``limit`` passes).

    Asked on one connection, every 0.2 s while more than a tenth is left, then every 5 ms:
    a throughput run of 3 s measured to the next 0.2 s tick was 0.1 s (3%) slow on
    average, and a count a tick is cheap through the claimable rows' index."""
    engine = create_engine(database)
    start = time.monotonic()
    try:
        with engine.connect() as connection:
            while True:
                left = int(connection.execute(_UNSETTLED, {"e": edition_id}).scalar() or 0)
                connection.rollback()  # a fresh snapshot for the next count
                if left == 0 or time.monotonic() - start > limit:
                    break
                time.sleep(0.2 if left > total / 10 else 0.005)
    finally:
        engine.dispose()
    if counts(database, edition_id).get("sent", 0) < total:
        print(f"drain: not every row of edition {edition_id} was sent", file=sys.stderr)
    return time.monotonic() - start


def stop_all(processes: list[subprocess.Popen[str]]) -> list[int]:
    """SIGTERM each live worker; the messages each says it sent."""
    for p in processes:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    sent = []
    for p in processes:
        out, _ = p.communicate(timeout=120)
        line = (out or "").strip().splitlines()[-1:] or [""]
        sent.append(int(line[0].split(": ")[1].split(" sent")[0]) if " sent" in line[0] else 0)
    return sent


def timed_drain(
    server: str,
    args: argparse.Namespace,
    n: int,
    logs: Path,
    messages: int,
    cpu: dict[str, float] | None = None,
    **settings: Any,
) -> tuple[float, list[int]]:
    """``n`` workers send an edition of ``messages`` on a database of their own: the wall
    time from the first claim (not the processes' start-up) to the last row settled, and
    what each worker says it sent. ``settings``: write_config's port, batch and the rest.
    ``cpu``: filled with the CPU seconds the workers used over that time
    (``workers_cpu_s``) and the share of the machine's two cores busy (``machine_busy``)."""
    database = create_database(server, "digest_bench")
    config = write_config(logs.parent, database, **settings)
    edition_id = queued_edition(config, messages)
    workers = [worker(config, Path(f"{logs}-{i}.log")) for i in range(n)]
    _first_claim(database, edition_id, 120)
    start, machine = time.monotonic(), _machine()
    used = sum(cpu_seconds(w.pid) for w in workers)
    drain(database, edition_id, messages, args.time_limit)
    wall = time.monotonic() - start
    if cpu is not None:
        cpu["workers_cpu_s"] = round(sum(cpu_seconds(w.pid) for w in workers) - used, 2)
        cpu["machine_busy"] = _busy_since(machine)
    sent = stop_all(workers)
    drop_database(server, database)
    return wall, sent


# --- the sections ------------------------------------------------------------------------------


def correctness(server: str, folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    """4 workers started together, a 5th later, one killed with kill -9 mid-run."""
    database = create_database(server, "digest_bench")
    port = free_port()
    sink, counted = counting_sink(folder, port)
    try:
        config = write_config(folder, database, port, batch=args.batch, lease=args.lease)
        edition_id = queued_edition(config, args.subscribers)
        start = time.monotonic()
        workers = [worker(config, folder / f"w{i}.log") for i in range(4)]
        killed = workers[1]
        time.sleep(args.late)
        workers.append(worker(config, folder / "w4.log"))
        # kill -9 one worker mid-run: once a fifth of the rows went out
        while counts(database, edition_id).get("sent", 0) < args.subscribers * args.kill_at:
            time.sleep(0.1)
        killed.send_signal(signal.SIGKILL)
        killed.wait()
        drained = drain(database, edition_id, args.subscribers, args.time_limit)
        live = [w for w in workers if w is not killed]
        sent = stop_all(live)
        wall = time.monotonic() - start
    finally:
        sink.send_signal(signal.SIGTERM)
        sink.wait(60)
    seen = Counter(json.loads(counted.read_text()))
    rows = counts(database, edition_id)
    engine = create_engine(database)
    with engine.connect() as connection:
        attempts = Counter(
            int(a)
            for (a,) in connection.execute(
                text("SELECT attempts FROM deliveries WHERE edition_id = :e"), {"e": edition_id}
            )
        )
    engine.dispose()
    drop_database(server, database)
    total = sum(seen.values())
    return {
        "subscribers": args.subscribers,
        "drain_s": round(drained, 1),
        "wall_s": round(wall, 1),
        "rows": rows,
        "sink_messages": total,
        "duplicates": total - len(seen),
        "lost": args.subscribers - len(seen),
        "rows_sent": rows.get("sent", 0),
        "attempts_over_1": sum(n for a, n in attempts.items() if a > 1),
        "rows_by_attempts": {str(a): n for a, n in sorted(attempts.items())},
        "batch": args.batch,
        "live_worker_sent": sent,
        "min_worker_share": round(min(sent) / max(1, sum(sent)), 3),
    }


def throughput(server: str, folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    """1, 2 and 4 workers (``--throughput-workers``) into smtp-sink, and smtp-source into
    the same sink."""
    port = free_port()
    sink = smtp_sink(folder, port)
    result: dict[str, Any] = {"messages": args.throughput}
    try:
        for n in args.throughput_workers:
            cpu: dict[str, float] = {}
            sink_used = cpu_seconds(sink.pid)
            wall, _ = timed_drain(
                server,
                args,
                n,
                folder / f"t{n}",
                args.throughput,
                cpu,
                port=port,
                batch=args.throughput_batch,
            )
            result[f"workers_{n}_msgs_per_s"] = round(args.throughput / wall)
            if n == 1:  # where one worker's run spent the machine's CPU
                result["worker_1_cpu_s"] = cpu["workers_cpu_s"]
                result["worker_1_sink_cpu_s"] = round(cpu_seconds(sink.pid) - sink_used, 2)
                result["worker_1_machine_busy"] = cpu["machine_busy"]
        start, machine = time.monotonic(), _machine()
        sink_used, children = cpu_seconds(sink.pid), _children_cpu()
        subprocess.run(
            [
                *("smtp-source", "-d", "-s", "10", "-m", str(args.throughput), "-l", "40000"),
                *("-f", "from@example.com", "-t", "to@example.com", f"127.0.0.1:{port}"),
            ],
            check=True,
        )
        result["smtp_source_msgs_per_s"] = round(args.throughput / (time.monotonic() - start))
        result["smtp_source_cpu_s"] = round(_children_cpu() - children, 2)
        result["smtp_source_sink_cpu_s"] = round(cpu_seconds(sink.pid) - sink_used, 2)
        result["smtp_source_machine_busy"] = _busy_since(machine)
    finally:
        sink.terminate()
        sink.wait(10)
    result["one_worker_vs_smtp_source"] = round(
        result["workers_1_msgs_per_s"] / result["smtp_source_msgs_per_s"], 3
    )
    if "workers_4_msgs_per_s" in result:
        result["workers_4_vs_1"] = round(
            result["workers_4_msgs_per_s"] / result["workers_1_msgs_per_s"], 3
        )
    result["load_average"] = [round(x, 2) for x in os.getloadavg()]
    return result


def latency(server: str, folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    """A sink that waits 1 s before each DATA reply: 1, 4 and 8 workers, batch 50."""
    port = free_port()
    sink = smtp_sink(folder, port, delay=1)
    result: dict[str, Any] = {"recipients": args.latency_recipients}
    try:
        for n in (1, 4, 8):
            wall, sent = timed_drain(
                server,
                args,
                n,
                folder / f"l{n}",
                args.latency_recipients,
                port=port,
                batch=50,
                connections=10,
                lease=120,
            )
            result[f"workers_{n}_s"] = round(wall, 1)
            result[f"workers_{n}_shares"] = sent
    finally:
        sink.terminate()
        sink.wait(10)
    one = result["workers_1_s"]
    result["latency_4_vs_ideal"] = round(result["workers_4_s"] / (one / 4), 3)
    result["latency_8_vs_ideal"] = round(result["workers_8_s"] / (one / 8), 3)
    shares = result["workers_8_shares"]
    result["max_share_off_equal"] = round(
        max(abs(s - sum(shares) / len(shares)) for s in shares) / (sum(shares) / len(shares)), 3
    )
    return result


def claims(server: str, folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Claim latency with ``old_rows`` rows of earlier editions, no ANALYZE after queueing.

    The old rows are made in SQL (generate_series, one INSERT ... SELECT), so 5M take a
    minute or two, not the hour Python inserts would. Each claim is timed as the store
    makes it (rows made into records included); the database's own time for one claim is
    read from EXPLAIN ANALYZE beside it, so the Python part shows.
    """
    database = create_database(server, "digest_bench")
    config = write_config(folder, database, free_port())
    os.environ["DIGEST_BENCH_SECRET"] = SECRET
    app = App.open(load_config(config))
    try:
        readers = args.claim_readers
        editions = max(1, -(-args.old_rows // readers))  # rounded up: at least old_rows
        built = time.monotonic()
        with app.engine.begin() as connection:
            old_history(connection, readers, editions)
        with app.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text("VACUUM ANALYZE"))
        built_s = time.monotonic() - built
        edition = save_edition(app)
        assert edition.id is not None
        app.store.queue_deliveries(edition.id)  # no ANALYZE after this: the planner's stats
        in_database = claim_in_database(app, edition.id, args.batch)
        timings = []
        while True:
            start = time.perf_counter()
            batch = app.store.claim_deliveries(edition.id, args.batch, lease_seconds=600)
            timings.append((time.perf_counter() - start) * 1000)
            if not batch:
                break
            token = batch[0][0].claim_token
            assert token is not None  # recorded sent, untimed, as a sender would
            app.store.finish_deliveries([(d.id or 0, "sent", "250", None) for d, _ in batch], token)
        old_rows = editions * readers
    finally:
        app.close()
        drop_database(server, database)
    first = timings[0]
    timings.sort()
    return {
        "old_rows": old_rows,
        "claim_readers": readers,
        "claim_batch": args.batch,
        "rows_built_s": round(built_s, 1),
        "claims": len(timings),
        "first_claim_ms": round(first, 1),
        "claim_p50_ms": round(statistics.median(timings), 1),
        "claim_p95_ms": round(timings[max(0, int(len(timings) * 0.95) - 1)], 1),
        "claim_in_database_ms": in_database,
        "load_average": round(os.getloadavg()[0], 2),
    }


def old_history(connection: Any, readers: int, editions: int) -> None:
    """``readers`` active subscribers and ``editions`` earlier editions sent to all of
    them (``readers`` x ``editions`` delivery rows), made by PostgreSQL itself."""
    now = utcnow().replace(tzinfo=None)  # naive UTC, as stored
    connection.execute(
        text(
            "INSERT INTO subscribers (email, name, public_id, status, topics, created_at) "
            "SELECT 'reader' || lpad(i::text, 8, '0') || '@example.org', 'Reader ' || i, "
            "md5(i::text), 'active', '', :now FROM generate_series(1, :n) AS i"
        ),
        {"n": readers, "now": now},
    )
    connection.execute(
        text(
            "INSERT INTO editions (digest_id, slot, created_at, subject, html, text, "
            "story_count, stories) SELECT 'old', timestamp '2020-01-01' + i * interval "
            "'1 hour', :now, 's', 'h', 't', 0, '' FROM generate_series(1, :n) AS i"
        ),
        {"n": editions, "now": now},
    )
    connection.execute(
        text(
            "INSERT INTO deliveries (edition_id, subscriber_id, status, attempts, updated_at, "
            "sent_at) SELECT e.id, s.id, 'sent', 1, :now, :now FROM editions AS e "
            "CROSS JOIN subscribers AS s WHERE e.digest_id = 'old' ORDER BY e.id, s.id"
        ),
        {"now": now},
    )


def claim_in_database(app: App, edition_id: int, batch: int) -> float | None:
    """One claim's execution time in PostgreSQL (EXPLAIN ANALYZE of the store's claim
    statement, rolled back): what the Python side adds is the rest of the wall time."""
    from enum import Enum

    from digest.store.claims import claim_parameters, claim_statement

    compiled = claim_statement(with_subscribers=True).compile(app.engine)
    values = compiled.construct_params(
        claim_parameters(edition_id, batch, 600.0, "explain", utcnow())
    )
    plain = {  # as the columns' types would bind them: naive UTC, enum values
        k: v.value
        if isinstance(v, Enum)
        else v.replace(tzinfo=None)
        if isinstance(v, datetime)
        else v
        for k, v in values.items()
    }
    with app.engine.connect() as connection:
        plan = connection.exec_driver_sql(
            f"EXPLAIN (ANALYZE, FORMAT JSON) {compiled}", plain
        ).scalar()
        connection.rollback()
    return round(float(plan[0]["Execution Time"]), 2) if plan else None


def failover(server: str, folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    """Two `digest run`s; kill -9 the leader, then (again, two fresh ones)
    pg_terminate_backend its lock session: seconds until the standby leads."""
    database = create_database(server, "digest_bench")
    config = write_config(folder, database, free_port(), check=5.0)
    os.environ["DIGEST_BENCH_SECRET"] = SECRET
    App.open(load_config(config)).close()  # migrate once, before two processes race to
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result: dict[str, Any] = {}
    for how in ("kill", "terminate"):
        logs = [folder / f"{how}-{i}.log" for i in range(2)]
        runs = []
        for log in logs:
            runs.append(
                subprocess.Popen(
                    [sys.executable, "-m", "digest", "--config", str(config), "run"],
                    env=env,
                    stdout=subprocess.DEVNULL,
                    stderr=log.open("w"),
                )
            )
            _until(
                lambda log=log: any(w in log.read_text() for w in ("leading:", "standing by")), 60
            )
        leader = 0 if "leading:" in logs[0].read_text() else 1
        standby = 1 - leader
        start = time.monotonic()
        if how == "kill":
            runs[leader].send_signal(signal.SIGKILL)
        else:
            engine = create_engine(database)
            with engine.connect() as connection:
                connection.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE "
                        "locktype = 'advisory' AND granted AND objid = 7311991"
                    )
                )
            engine.dispose()
        took = _until(partial(_said, logs[standby], "leading:"), 60)
        result[f"failover_{how}_s"] = round(took, 1)
        if how == "terminate":
            _until(partial(_said, logs[leader], "lost the scheduler's lead"), 30)
            result["old_leader_stopped_s"] = round(time.monotonic() - start, 1)
        for run in runs:
            if run.poll() is None:
                run.send_signal(signal.SIGTERM)
        for run in runs:
            run.wait(60)
    drop_database(server, database)
    result["failover_s"] = max(result["failover_kill_s"], result["failover_terminate_s"])
    return result


def limits(server: str, folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    """4 workers under ``[delivery.rate] per_second = --rate`` for ``--rate-seconds``: the
    busiest second by ``sent_at``, against the limit plus one batch (a worker takes up to a
    batch of tokens at once)."""
    port = free_port()
    sink = smtp_sink(folder, port)
    rows = args.rate * args.rate_seconds
    database = create_database(server, "digest_bench")
    try:
        extra = f"\n[delivery.rate]\nper_second = {args.rate}\n"
        config = write_config(folder, database, port, batch=args.rate_batch, extra=extra)
        edition_id = queued_edition(config, rows)
        workers = [worker(config, folder / f"rate{i}.log") for i in range(4)]
        drained = drain(database, edition_id, rows, args.time_limit)
        stop_all(workers)
    finally:
        sink.terminate()
        sink.wait(10)
    engine = create_engine(database)
    with engine.connect() as connection:
        per_second = [
            int(n)
            for (n,) in connection.execute(
                text(
                    "SELECT count(*) FROM deliveries WHERE edition_id = :e AND sent_at IS NOT "
                    "NULL GROUP BY date_trunc('second', sent_at)"
                ),
                {"e": edition_id},
            )
        ]
    engine.dispose()
    drop_database(server, database)
    allowed = args.rate + args.rate_batch
    return {
        "rate_per_s": args.rate,
        "rate_rows": rows,
        "rate_drain_s": round(drained, 1),
        "rate_busiest_second": max(per_second, default=0),
        "rate_allowed": allowed,
        "rate_seconds_over": sum(n > allowed for n in per_second),
    }


def imports(server: str, folder: Path, args: argparse.Namespace) -> dict[str, Any]:
    """bench/import.py's run of the real `digest subscribers import` (`--import-rows`
    people, an HR-style CSV) on SQLite and on PostgreSQL, each in a process of its own:
    the slower engine's time and the larger peak (``import_1m_s`` only when a million ran:
    a smaller run's start-up would be scaled with it)."""
    import importlib.util

    from tests.pg import create_database

    spec = importlib.util.spec_from_file_location("import_bench", ROOT / "bench" / "import.py")
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    rows, result = args.import_rows, {}
    for engine in ("sqlite", "postgresql"):
        work = folder / f"import-{engine}"
        work.mkdir()
        database = (
            f"sqlite:///{work / 'digest.db'}"
            if engine == "sqlite"
            else create_database(server, "digest_bench_import")
        )
        result[engine] = bench.run("ours", rows, work, database)
    slowest = max(r["wall_s"] for r in result.values())
    return {
        "import_rows": rows,
        "import_1m_s": slowest if rows >= 1_000_000 else None,
        "import_rows_per_s": min(r["rows_per_s"] for r in result.values()),
        "import_1m_peak_mb": max(r["peak_mb"] for r in result.values()),
        "import_s": {engine: r["wall_s"] for engine, r in result.items()},
        "import_peak_mb": {engine: r["peak_mb"] for engine, r in result.items()},
    }


def _first_claim(database: str, edition_id: int, seconds: float) -> None:
    """Wait until a worker claimed its first batch (every worker has started by then,
    nearly), asking every 5 ms on one connection: the timed run starts then, not at the
    next tick of a coarser poll."""
    engine = create_engine(database)
    start = time.monotonic()
    try:
        with engine.connect() as connection:
            while not connection.execute(_CLAIMED, {"e": edition_id}).scalar():
                connection.rollback()
                if time.monotonic() - start > seconds:
                    raise SystemExit("timed out waiting for a worker's first claim")
                time.sleep(0.005)
    finally:
        engine.dispose()


def cpu_seconds(pid: int) -> float:
    """User and system CPU seconds a live process has used (Linux /proc), 0 when gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _children_cpu() -> float:
    """CPU seconds of this process's children that have ended (smtp-source, once run)."""
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    return used.ru_utime + used.ru_stime


def _machine() -> tuple[int, int]:
    """The machine's CPU time so far, all and idle (jiffies, /proc/stat)."""
    ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return sum(ticks), ticks[3] + ticks[4]


def _busy_since(before: tuple[int, int]) -> float:
    """The share of the machine's CPU time busy since ``before`` (1.0: every core, always)."""
    total, idle = _machine()
    return round(1 - (idle - before[1]) / max(1, total - before[0]), 3)


def _said(log: Path, *words: str) -> bool:
    said = log.read_text()
    return any(w in said for w in words)


def _until(condition: Any, seconds: float) -> float:
    start = time.monotonic()
    while not condition():
        if time.monotonic() - start > seconds:
            raise SystemExit("timed out waiting")
        time.sleep(0.1)
    return time.monotonic() - start


# --- main --------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database", help="a PostgreSQL server URL (default: start one)")
    parser.add_argument("--subscribers", type=int, default=5_000, help="correctness run")
    parser.add_argument("--batch", type=int, default=200, help="delivery.batch_size")
    parser.add_argument("--lease", type=float, default=20.0, help="delivery.lease_seconds")
    parser.add_argument("--late", type=float, default=3.0, help="the 5th worker starts then")
    parser.add_argument(
        "--kill-at", type=float, default=0.2, help="kill -9 a worker when this share went"
    )
    parser.add_argument("--throughput", type=int, default=5_000, help="messages per run")
    parser.add_argument("--throughput-batch", type=int, default=500)
    parser.add_argument(
        "--throughput-workers",
        type=lambda text: [int(n) for n in text.split(",")],
        default=[1, 2, 4],
        help="worker counts of the throughput runs, comma-separated (1 must be among them)",
    )
    parser.add_argument("--latency-recipients", type=int, default=400)
    parser.add_argument("--old-rows", type=int, default=500_000, help="claims: rows before")
    parser.add_argument("--claim-readers", type=int, default=20_000, help="claims: new edition")
    parser.add_argument("--rate", type=int, default=100, help="limits: per_second")
    parser.add_argument("--rate-seconds", type=int, default=60, help="limits: rows = rate x this")
    parser.add_argument("--rate-batch", type=int, default=50, help="limits: batch_size")
    parser.add_argument(
        "--import-rows", type=int, default=100_000, help="import: people in the CSV (1M: full)"
    )
    parser.add_argument("--time-limit", type=float, default=1800.0, help="per drain, seconds")
    parser.add_argument("--skip", default="", help="sections to skip, comma-separated")
    parser.add_argument(
        "--only", default="", help="run only these sections, comma-separated (e.g. claims)"
    )
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    only = set(filter(None, args.only.split(",")))

    folder = Path(tempfile.mkdtemp(prefix="digest-scale-"))
    stop: list[str] = []
    server = args.database or os.environ.get("DIGEST_TEST_POSTGRES_URL")
    if not server:
        server, stop = start_postgres()
    figures: dict[str, Any] = {}
    try:
        for name, section in (
            ("claims", claims),
            ("failover", failover),
            ("correctness", correctness),
            ("latency", latency),
            ("throughput", throughput),
            ("limits", limits),
            ("import", imports),
        ):
            if name in skip or (only and name not in only):
                continue
            started = time.monotonic()
            result = section(server, folder, args)
            print(f"{name} ({time.monotonic() - started:.0f} s): {json.dumps(result)}", flush=True)
            figures.update({f"{name}.{k}" if k in figures else k: v for k, v in result.items()})
    finally:
        if stop:
            subprocess.run(stop, check=False)
        shutil.rmtree(folder, ignore_errors=True)
    keys = (
        "workers_4_vs_1", "one_worker_vs_smtp_source", "duplicates", "lost", "min_worker_share",
        "latency_4_vs_ideal", "latency_8_vs_ideal", "claim_p95_ms", "first_claim_ms",
        "failover_s", "import_1m_s", "import_1m_peak_mb",
    )  # fmt: skip
    summary = {k: figures.get(k) for k in keys} | {
        k: v for k, v in figures.items() if k not in keys and not isinstance(v, (dict, list))
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
