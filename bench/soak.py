"""Run the daemon for a while in compressed time and say whether it would run for months.

`digest run` as a real subprocess (its RSS counted with that of the job processes it
forks), with a schedule of minutes (a gather every minute, a digest every two), local
feeds that gain items and answer 304 to ETag / Last-Modified, a few thousand subscribers in
four time zones, four languages and several topic choices, and an SMTP sink (aiosmtpd,
counting in a subprocess of its own) that notes every (edition, recipient) it is handed.
The daemon's memory, the database's size, the articles table and every job's duration
(from `job_runs`) are sampled as it goes.

    .venv/bin/python bench/soak.py --minutes 3      # smoke
    .venv/bin/python bench/soak.py                  # quick: 10 minutes
    .venv/bin/python bench/soak.py --full           # 2 hours

Last line: one JSON object. ``rss_slope_mb_per_h`` is fitted after the warm-up (the first
quarter, at least 3 minutes), ``db_mb_slope`` over the second half (the retention,
``--retention-minutes``, has let go of its first rows by then); ``articles_bound`` is
feeds x items plus the items added within the retention; ``send_s_slope_per_1k_articles``
is how send time grows with the articles held; ``duplicates`` counts an (edition,
recipient) received more than once; ``skipped_fires`` counts APScheduler's skipped or missed
runs in the daemon's log.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from xml.sax.saxutils import escape

ROOT = Path(__file__).resolve().parents[1]
ZONES = ("UTC", "Europe/Paris", "America/New_York", "Asia/Tokyo")
LOCALES = ("en", "fr", "de", "pt")
TOPICS = ("world", "business", "science", "sport")
_VOCABULARY = (
    "harbour strike council budget vote storm flood court ruling election rates bank "
    "merger vaccine trial comet launch orbit final cup transfer coach drought wildfire "
    "treaty summit ceasefire tariff pension reform protest rail airline outage"
)
_SYLLABLES = ("ka", "lo", "mi", "ne", "ru", "ta", "vo", "zi", "pe", "su", "da", "gu", "ho", "ri")
# News has thousands of words, not thirty: headlines drawn from a small vocabulary all share
# words, and the clustering rightly calls them one story (an earlier version of this bench
# ended with every article in one story, and nothing new to mail).
WORDS = tuple(_VOCABULARY.split()) + tuple(
    a + b + c for a in _SYLLABLES for b in _SYLLABLES for c in _SYLLABLES
)

SINK = r"""
import asyncio, json, os, signal, sys, threading
from collections import Counter
from aiosmtpd.controller import Controller
seen, total, lock = Counter(), [0], threading.Lock()  # the handler runs in aiosmtpd's thread
class Handler:
    async def handle_DATA(self, server, session, envelope):
        head = envelope.content.split(b"\r\n\r\n", 1)[0]
        edition = "-"
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"message-id:"):
                edition = line.split(b"<", 1)[-1].split(b".")[1].decode()
        with lock:
            for rcpt in envelope.rcpt_tos:
                seen[(edition, rcpt)] += 1
                total[0] += 1
        return "250 OK"
def dump(*_):
    with lock:
        counts, received = list(seen.items()), total[0]
    editions = Counter(e for (e, _), _n in counts)
    with open(sys.argv[2] + ".tmp", "w") as out:
        json.dump({"received": received, "duplicates": sum(n - 1 for _, n in counts if n > 1),
                   "editions": dict(editions)}, out)
    os.replace(sys.argv[2] + ".tmp", sys.argv[2])
controller = Controller(Handler(), hostname="127.0.0.1", port=int(sys.argv[1]),
                        data_size_limit=10_000_000)
controller.start()
loop = asyncio.new_event_loop()
def stop(*_):
    dump(); controller.stop(); sys.exit(0)
signal.signal(signal.SIGTERM, stop)
while True:
    loop.run_until_complete(asyncio.sleep(2)); dump()
"""


@dataclass
class Feed:
    """One feed: its items newest first, and the version its ETag names."""

    index: int
    items: list[tuple[str, str, str, datetime]] = field(default_factory=list)
    version: int = 0
    modified: datetime = field(default_factory=lambda: datetime.now(UTC))

    def document(self) -> bytes:
        body = "".join(
            f"<item><title>{escape(title)}</title><link>{escape(link)}</link>"
            f"<guid>{escape(link)}</guid><pubDate>{format_datetime(at, usegmt=True)}</pubDate>"
            f"<description>{escape(summary)}</description></item>"
            for title, link, summary, at in self.items
        )
        return (
            f'<?xml version="1.0"?><rss version="2.0"><channel><title>Feed {self.index}'
            f"</title><link>http://feeds.test/{self.index}</link>{body}</channel></rss>"
        ).encode()


class Feeds:
    """The feeds' state: every feed gains an item once a period, most items in one of
    ~20 running stories (shared words), so stories grow and clusters move."""

    def __init__(self, count: int, items: int, period: float, seed: int = 7) -> None:
        self.random = random.Random(seed)
        self.lock = threading.Lock()
        self.items, self.period, self.added = items, period, 0
        self.stories = [self._story() for _ in range(20)]
        self.feeds = [Feed(i) for i in range(count)]
        self.next_at = [time.monotonic() + self.random.uniform(0, period) for _ in self.feeds]
        for feed in self.feeds:
            for _ in range(items):
                self._add(feed)

    def _story(self) -> list[str]:
        """A running story's own words (its names and places)."""
        return self.random.sample(WORDS, 4)

    def _add(self, feed: Feed) -> None:
        n = self.added = self.added + 1
        if n % 40 == 0:  # stories end and new ones start: the oldest gives way
            self.stories = [*self.stories[1:], self._story()]
        if self.random.random() < 0.7:
            words = [*self.random.choice(self.stories), *self.random.sample(WORDS, 2)]
        else:
            words = self.random.sample(WORDS, 6)
        title = f"{' '.join(words).capitalize()} (report {n})"
        summary = f"{title}. " + " ".join([*words, *self.random.choices(WORDS, k=30)])
        link = f"http://news.test/{feed.index}/{n}"
        feed.items.insert(0, (title, link, summary, datetime.now(UTC)))
        del feed.items[self.items :]
        feed.version += 1
        feed.modified = datetime.now(UTC).replace(microsecond=0)

    def tick(self) -> None:
        now = time.monotonic()
        with self.lock:
            for i, feed in enumerate(self.feeds):
                if now >= self.next_at[i]:
                    self._add(feed)
                    self.next_at[i] += self.period

    def answer(self, index: int, etag: str | None, since: str | None) -> tuple[int, bytes, dict]:
        with self.lock:
            feed = self.feeds[index]
            tag = f'"{index}-{feed.version}"'
            headers = {"ETag": tag, "Last-Modified": format_datetime(feed.modified, usegmt=True)}
            if etag is not None:
                fresh = etag == tag
            elif since is not None:
                try:
                    fresh = parsedate_to_datetime(since) >= feed.modified
                except (TypeError, ValueError):
                    fresh = False
            else:
                fresh = False
            return (304, b"", headers) if fresh else (200, feed.document(), headers)


def serve(feeds: Feeds) -> tuple[ThreadingHTTPServer, dict[int, int]]:
    statuses: dict[int, int] = {200: 0, 304: 0}

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            index = int(self.path.strip("/").split(".")[0].removeprefix("feed"))
            status, body, headers = feeds.answer(
                index, self.headers.get("If-None-Match"), self.headers.get("If-Modified-Since")
            )
            statuses[status] = statuses.get(status, 0) + 1
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/rss+xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, statuses


def config(port: int, smtp_port: int, feeds: int, retention_minutes: float = 1440.0) -> str:
    sources = "".join(
        f'\n[[sources]]\nname = "Feed {i}"\nurl = "http://127.0.0.1:{port}/feed{i}.xml"\n'
        f'topics = ["{TOPICS[i % 4]}", "{TOPICS[(i + 1) % 4]}"]\n'
        for i in range(feeds)
    )
    return f"""[service]
name = "Soak Desk"
base_url = "https://digest.test"
timezone = "UTC"
database_url = "sqlite:///digest.db"
sender = "Soak Desk <news@example.com>"
postal_address = "1 Test Street"
secret_env = "DIGEST_SECRET"

[gather]
interval_minutes = 1
timeout_seconds = 10
per_host_delay_seconds = 0
per_host_concurrency = 8
retention_days = {retention_minutes / 1440!r}

[retention]
editions_days = {2 * retention_minutes / 1440!r}
deliveries_days = {retention_minutes / 1440!r}

[[digests]]
id = "soak"
title = "Soak Digest"
schedule = "*/2 * * * *"
lookback_hours = 24

[delivery]
transport = "smtp"

[delivery.smtp]
host = "127.0.0.1"
port = {smtp_port}
security = "none"
connections = 4
timeout_seconds = 30
{sources}"""


def subscribers_csv(path: Path, count: int, seed: int = 11) -> None:
    rnd = random.Random(seed)
    choices = ["", *TOPICS, "world;business", "science;sport"]
    lines = ["email,name,topics,timezone,locale"]
    for i in range(count):
        topics = rnd.choice(choices)
        lines.append(
            f'reader{i}@example.org,Reader {i},"{topics}",{ZONES[i % 4]},{LOCALES[(i // 4) % 4]}'
        )
    path.write_text("\n".join(lines) + "\n")


def slope(points: list[tuple[float, float]]) -> float | None:
    """Least-squares slope of y over x."""
    if len(points) < 3:
        return None
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return sum((x - mx) * (y - my) for x, y in points) / den if den else None


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:  # it ended while we looked
        pass
    return 0.0


def descendants(pid: int) -> list[int]:
    """The processes ``pid`` started, and theirs (a job's child, its parser processes)."""
    found: list[int] = []
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:
        return found
    for task in tasks:
        try:
            children = [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
        for child in children:
            found += [child, *descendants(child)]
    return found


def tree_rss_mb(pid: int) -> tuple[float, float]:
    """The daemon's RSS, and its with that of every process it started (each job runs in
    a child: whatever a job holds counts while it runs)."""
    own = rss_mb(pid)
    return own, own + sum(rss_mb(child) for child in descendants(pid))


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0, help="how long (quick: 10)")
    parser.add_argument("--full", action="store_true", help="the full run: 120 minutes")
    parser.add_argument("--feeds", type=int, default=200)
    parser.add_argument("--items", type=int, default=20, help="items each feed lists")
    parser.add_argument("--item-seconds", type=float, default=120.0, help="a new item per feed")
    parser.add_argument("--subscribers", type=int, default=2000)
    parser.add_argument("--sample-seconds", type=float, default=5.0)
    parser.add_argument(
        "--retention-minutes",
        type=float,
        default=15.0,
        help="articles no feed lists and delivery rows are kept this long, editions twice "
        "as long (the database's size levels off within the run)",
    )
    parser.add_argument("--dir", type=Path, default=None, help="keep the run's files here")
    args = parser.parse_args()
    minutes = 120.0 if args.full else args.minutes
    work = args.dir or Path(tempfile.mkdtemp(prefix="digest-soak-"))
    work.mkdir(parents=True, exist_ok=True)

    feeds = Feeds(args.feeds, args.items, args.item_seconds)
    server, statuses = serve(feeds)
    smtp_port = free_port()
    sink_stats = work / "sink.json"
    sink = subprocess.Popen([sys.executable, "-c", SINK, str(smtp_port), str(sink_stats)])
    cfg = work / "digest.toml"
    cfg.write_text(config(server.server_address[1], smtp_port, args.feeds, args.retention_minutes))
    env = {**os.environ, "DIGEST_SECRET": "soak-secret-" + "x" * 32, "PYTHONPATH": str(ROOT)}
    digest = [sys.executable, "-m", "digest", "--config", str(cfg)]
    subscribers_csv(work / "subscribers.csv", args.subscribers)
    subprocess.run(
        [*digest, "subscribers", "import", str(work / "subscribers.csv")],
        cwd=work,
        env=env,
        check=True,
        capture_output=True,
    )
    time.sleep(1.0)  # the sink is listening
    log_path = work / "daemon.log"
    with log_path.open("w") as log_file:
        daemon = subprocess.Popen(
            [*digest, "--log-json", "run"],
            cwd=work,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
    started = time.monotonic()
    rss: list[tuple[float, float]] = []  # the daemon and its children
    jobs_rss: list[float] = []  # its children alone: the jobs' own memory
    received: dict = {}
    db: list[tuple[float, float]] = []
    articles: list[tuple[float, int]] = []
    jobs: dict[tuple[str, str], tuple[float, float]] = {}  # (job, started) -> (seconds, articles)
    db_path = work / "digest.db"
    try:
        while (now := time.monotonic() - started) < minutes * 60 and daemon.poll() is None:
            feeds.tick()
            own, tree = tree_rss_mb(daemon.pid)
            rss.append((now, tree))
            jobs_rss.append(tree - own)
            size = sum(p.stat().st_size for p in work.glob("digest.db*") if p.is_file())
            db.append((now, size / 2**20))
            if db_path.exists():
                try:
                    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5) as c:
                        count = c.execute("select count(*) from articles").fetchone()[0]
                        articles.append((now, count))
                        for job, start, end in c.execute(
                            "select job, started_at, finished_at from job_runs"
                        ):
                            seconds = (
                                datetime.fromisoformat(end) - datetime.fromisoformat(start)
                            ).total_seconds()
                            jobs.setdefault((job, start), (seconds, count))
                except sqlite3.Error:
                    pass  # a table not made yet, or locked: next sample
            time.sleep(args.sample_seconds)
    finally:
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(timeout=120)
        except subprocess.TimeoutExpired:
            daemon.kill()
        time.sleep(3)  # the sink's last count is on disk
        received = json.loads(sink_stats.read_text()) if sink_stats.exists() else {}
        sink.send_signal(signal.SIGTERM)
        sink.wait(timeout=30)
        server.shutdown()

    warm = max(180.0, minutes * 60 / 4)
    lines = log_path.read_text().splitlines()
    with sqlite3.connect(f"file:{db_path}?mode=ro", uri=True) as c:
        built = c.execute("select count(*) from editions").fetchone()[0]
    editions = len(received.get("editions", {}))  # editions that went out
    sends = [(a / 1000, s) for (job, _), (s, a) in jobs.items() if job.startswith("send ")]
    gathers = [s for (job, _), (s, _) in jobs.items() if job == "gather"]
    run_hours = minutes / 60
    per_feed = min(run_hours * 60, args.retention_minutes) * 60 / args.item_seconds
    lows = _between_jobs(rss, warm)  # the RSS between jobs: a job's child is gone by then
    figures = {
        "minutes": minutes,
        "feeds": args.feeds,
        "subscribers": args.subscribers,
        "rss_mb_after_warm_up": round(lows[0][1], 1) if lows else None,
        "rss_mb_end": round(lows[-1][1], 1) if lows else None,
        "rss_slope_mb_per_h": _round(slope(lows)),
        "job_rss_peak_mb": round(max(jobs_rss, default=0.0), 1),
        "articles_max": max((n for _, n in articles), default=0),
        "articles_bound": int(args.feeds * (args.items + per_feed + 1)),
        "db_mb_end": round(db[-1][1], 1) if db else None,
        "db_mb_slope": _round(slope([(t / 3600, m) for t, m in db if t >= minutes * 30])),
        "send_s_median": _round(statistics.median([s for _, s in sends]) if sends else None),
        "send_s_slope_per_1k_articles": _round(slope(sends)),
        "gather_s_median": _round(statistics.median(gathers) if gathers else None),
        "gathers": len(gathers),
        "sends": len(sends),
        "editions_built": built,
        "editions_sent": editions,
        "log_lines_per_edition": round(len(lines) / editions, 1) if editions else None,
        "emails_received": received.get("received"),
        "duplicates": received.get("duplicates"),
        "skipped_fires": sum(
            "maximum number of running instances" in line or "was missed by" in line
            for line in lines
        ),
        "feed_answers": {str(k): v for k, v in statuses.items()},
        "daemon_exit": daemon.returncode,
        "dir": str(work),
    }
    samples = {"rss": rss, "db": db, "articles": articles, "sends": sends, "gathers": gathers}
    (work / "samples.json").write_text(json.dumps(samples))
    print(json.dumps(figures))


def _between_jobs(rss: list[tuple[float, float]], warm: float) -> list[tuple[float, float]]:
    """The RSS between jobs, in hours and MB: each minute's lowest sample after the warm-up
    (a job's peak is freed when it ends; a sample mid-send says nothing about a leak)."""
    lowest: dict[int, tuple[float, float]] = {}
    for t, mb in rss:
        if t >= warm:
            minute = int(t // 60)
            if minute not in lowest or mb < lowest[minute][1]:
                lowest[minute] = (t / 3600, mb)
    return sorted(lowest.values())


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


if __name__ == "__main__":
    main()
