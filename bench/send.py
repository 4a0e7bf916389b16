"""Messages per second into Postfix's smtp-sink, against smtp-source on the same sink.

digest's side is the real send path: 20,000 subscribers in a temporary SQLite store, one
rendered edition (~40 KB messages), and ``sending.deliver_edition``: queue, claim in
batches with a lease, personalise each message, send it through the SMTP transport, record
each result. The baseline is Postfix's C blaster, ``smtp-source -d -s 10 -m N -l 40000``,
run against the same sink right after: the machine's own limit.

    .venv/bin/python bench/send.py [--recipients 20000] [--port 2525] [--connections 10]

The script starts and stops its own smtp-sink through scripts/peers.sh (run
``scripts/peers.sh install`` once, as root). Last line: one JSON object of the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))
# ruff: noqa: E402  (digest and bench/render.py are imported after sys.path is set)

from render import edition as ranked_edition

from digest.app import App
from digest.config import load_config
from digest.deliver.base import Answered
from digest.deliver.smtp import SmtpSender
from digest.editions import SegmentTemplates, edition_info, edition_row
from digest.records import (
    OutgoingMessage,
    Recipient,
    SendResult,
)
from digest.render import render_edition
from digest.sending import deliver_edition
from digest.store import Edition, Subscriber
from tests.store_queries import add_readers

PEERS = ROOT / "scripts" / "peers.sh"
SENDING = [0.0]  # seconds spent inside SmtpSender.send_batch; the rest is the outbox and render
_send_batch = SmtpSender.send_batch


async def _timed_send_batch(
    self: SmtpSender, messages: Sequence[OutgoingMessage], answered: Answered | None = None
) -> list[SendResult]:
    start = time.perf_counter()
    try:
        return await _send_batch(self, messages, answered)  # (the progress file's writes too)
    finally:
        SENDING[0] += time.perf_counter() - start


SmtpSender.send_batch = _timed_send_batch  # type: ignore[method-assign]

CONFIG = """[service]
name = "Bench Desk"
base_url = "https://digest.example"
timezone = "UTC"
database_url = "sqlite:///digest.db"
sender = "Bench Desk <news@example.org>"
postal_address = "1 Bench Street"
secret_env = "DIGEST_BENCH_SECRET"

[[digests]]
id = "morning"
title = "Morning Briefing"
schedule = "0 7 * * *"

[[sources]]
name = "Wire"
url = "https://wire.example/feed.xml"

[delivery]
transport = "smtp"
batch_size = {batch}

[delivery.smtp]
host = "127.0.0.1"
port = {port}
security = "none"
connections = {connections}
timeout_seconds = 30
"""


def add_subscribers(app: App, count: int) -> None:
    """Insert ``count`` active subscribers in chunks (memory stays flat at 1,000,000)."""
    add_readers(app.engine, count)


def save_edition(app: App) -> Edition:
    """A 15-story edition (~41 KB a message) rendered by digest's own templates, stored as
    the pipeline does."""
    digest = app.config.digests[0]
    now = datetime.now(UTC).replace(microsecond=0)
    # ~41 KB a message, like smtp-source -l 40000: 15 stories since every story shows a
    # picture (bench/render.py, 2026-12-07); the 22 before made 55 KB messages.
    ranked = ranked_edition(15)
    rendered = render_edition(edition_info(app, digest, now), ranked)
    return app.store.save_edition(edition_row(digest.id, now, now, ranked, rendered))


def ours(folder: Path, port: int, recipients: int, connections: int, batch: int) -> dict:
    os.environ["DIGEST_BENCH_SECRET"] = secrets.token_urlsafe(32)
    path = folder / "digest.toml"
    path.write_text(CONFIG.format(port=port, connections=connections, batch=batch))
    app = App.open(load_config(path))
    try:
        add_subscribers(app, recipients)
        edition = save_edition(app)
        before_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        start = time.perf_counter()
        report = asyncio.run(deliver_edition(app, app.config.digests[0], edition))
        wall = time.perf_counter() - start
        transport_s = SENDING[0]
        assert edition.id is not None
        rows = app.store.delivery_counts(edition.id)
        data = one_message(app, edition)
    finally:
        app.close()
    sent = report.counts["sent"]
    if sent != recipients or report.stopped:
        raise SystemExit(
            f"digest sent {sent} of {recipients}: {report.stopped or report.problems[:3]}"
        )
    return {
        "wall_s": wall,
        "msgs_per_s": sent / wall,
        "rows": rows,
        "data": data,
        "before_mb": before_mb,
        "transport_s": transport_s,
    }


def smtp_source(port: int, messages: int) -> float:
    start = time.perf_counter()
    subprocess.run(
        [
            *("smtp-source", "-d", "-s", "10", "-m", str(messages), "-l", "40000"),
            *("-f", "from@example.com", "-t", "to@example.com", f"127.0.0.1:{port}"),
        ],
        check=True,
    )
    return messages / (time.perf_counter() - start)


def one_message(app: App, edition: Edition) -> bytes:
    """Bytes of one personalised message, as the sink receives it."""
    template = SegmentTemplates(app, app.config.digests[0], edition)(
        Subscriber(email="x", public_id="x")
    )
    assert template is not None  # every topic: the whole edition
    links = "https://digest.example/unsubscribe/" + "t" * 40
    recipient = Recipient(
        1, "reader0000001@example.org", "Reader 1", links, "mailto:u@example.org", links
    )
    return template.personalise(recipient, 1)[1]


def compare_transports(port: int, count: int, connections: int, data: bytes) -> dict[str, float]:
    """msg/s of prebuilt messages: digest's transport, aiosmtplib, smtplib threads unpipelined."""
    import smtplib
    import threading

    import aiosmtplib

    from digest.config import SmtpConfig

    def rate(seconds: float) -> float:
        return round(count / seconds)

    messages = [
        OutgoingMessage(i, "news@example.org", f"r{i}@example.org", "", data) for i in range(count)
    ]
    settings = SmtpConfig(host="127.0.0.1", port=port, security="none", connections=connections)

    async def digest_run() -> float:
        sender = SmtpSender(settings, None)
        start = time.perf_counter()
        for i in range(0, count, 500):
            await sender.send_batch(messages[i : i + 500])
        await sender.aclose()
        return time.perf_counter() - start

    async def aio_run() -> float:
        todo = iter(messages)

        async def worker() -> None:
            client = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False)
            await client.connect()
            for m in todo:
                await client.sendmail(m.sender, [m.recipient], m.data)
            await client.quit()

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(connections)))
        return time.perf_counter() - start

    def threads_run() -> float:
        todo = iter(messages)
        lock = threading.Lock()

        def worker() -> None:
            with smtplib.SMTP("127.0.0.1", port) as client:
                while True:
                    with lock:
                        m = next(todo, None)
                    if m is None:
                        return
                    client.sendmail(m.sender, [m.recipient], m.data)

        start = time.perf_counter()
        pool = [threading.Thread(target=worker) for _ in range(connections)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()
        return time.perf_counter() - start

    return {
        "digest_smtp_msgs_per_s": rate(asyncio.run(digest_run())),
        "aiosmtplib_msgs_per_s": rate(asyncio.run(aio_run())),
        "smtplib_threads_msgs_per_s": rate(threads_run()),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--recipients", type=int, default=20_000)
    parser.add_argument("--port", type=int, default=2525)
    parser.add_argument("--connections", type=int, default=10)
    parser.add_argument("--batch", type=int, default=500, help="delivery.batch_size")
    parser.add_argument("--no-baseline", action="store_true", help="skip smtp-source")
    parser.add_argument(
        "--compare-transports",
        type=int,
        metavar="N",
        default=0,
        help="also send N prebuilt messages with aiosmtplib and with plain smtplib threads",
    )
    args = parser.parse_args()

    folder = Path(tempfile.mkdtemp(prefix="digest-send-"))
    env = {**os.environ, "PEERS_DIR": str(folder / "peers")}
    subprocess.run(["bash", str(PEERS), "start", str(args.port)], check=True, env=env)
    try:
        digest = ours(folder, args.port, args.recipients, args.connections, args.batch)
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        size = len(digest["data"])
        compared = (
            compare_transports(args.port, args.compare_transports, args.connections, digest["data"])
            if args.compare_transports
            else {}
        )
        baseline = (
            None if args.no_baseline else smtp_source(args.port, min(args.recipients, 20_000))
        )
    finally:
        subprocess.run(["bash", str(PEERS), "stop"], check=False, env=env)
        shutil.rmtree(folder, ignore_errors=True)

    print(f"digest: {args.recipients} messages of {size / 1000:.1f} KB in {digest['wall_s']:.1f} s")
    print(
        f"digest: {digest['msgs_per_s']:,.0f} msg/s, peak memory {peak_mb:.1f} MB "
        f"({digest['before_mb']:.1f} MB before the send)"
    )
    inside = digest["transport_s"]
    print(f"digest: rows {digest['rows']}; {inside:.1f} s of it inside the SMTP transport")
    figures = {
        "recipients": args.recipients,
        "message_kb": round(size / 1000, 1),
        "connections": args.connections,
        "digest_wall_s": round(digest["wall_s"], 2),
        "digest_msgs_per_s": round(digest["msgs_per_s"]),
        "digest_transport_s": round(digest["transport_s"], 2),
        "peak_mem_mb": round(peak_mb, 1),
        "mem_before_send_mb": round(digest["before_mb"], 1),
    }
    for name, value in compared.items():
        print(f"{name}: {value:,.0f} ({args.compare_transports} prebuilt messages)")
    figures.update(compared)
    if baseline is not None:
        ratio = digest["msgs_per_s"] / baseline
        print(f"smtp-source -d -s 10: {baseline:,.0f} msg/s; ratio {ratio:.2f}")
        figures["smtp_source_msgs_per_s"] = round(baseline)
        figures["ratio"] = round(digest["msgs_per_s"] / baseline, 3)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
