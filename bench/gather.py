"""Gathering 500 feeds at once: digest's gatherer against a sequential fetch-and-parse loop.

A local asyncio server, in a process of its own (so it does not share the gatherer's GIL),
serves realistic RSS feeds of 20 items from 100 loopback hosts, 127.0.1.1 ... 127.0.1.100,
5 feeds each (digest is polite per host, so one host would measure only the politeness
limit). Every answer comes after 200 ms and carries an ETag and Last-Modified; a request
whose If-None-Match (or If-Modified-Since) matches gets a 304, also after 200 ms, as a
slow real server would.

digest gathers all sources twice through ``App`` and ``gather_sources``: first with every
feed new, then with every feed unchanged. The baseline fetches and parses the same URLs one
after another (urllib, then feedparser), as a simple feed reader does, in this process.

    .venv/bin/python bench/gather.py [--baseline-sources 500] [--concurrency 200]

Only 127.x addresses are contacted (proxy variables are dropped first). The run is bounded
by --time-limit; the server process and the temporary folder go away at the end, also on
failure. Last line: one JSON object of the figures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import multiprocessing
import os
import resource
import signal
import sys
import tempfile
import time
import urllib.request
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from multiprocessing.connection import Connection
from pathlib import Path
from types import FrameType
from xml.sax.saxutils import escape

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import feedparser

from digest.app import App, run
from digest.config import load_config
from digest.pipeline import gather_sources
from digest.sources.gather import SourceReport

SECTIONS = ("World", "Politics", "Business", "Technology", "Science", "Health", "Sport")
GATHER_LIMIT_S = 120.0  # one gather may not take longer than this, whatever the config says


# --- the feeds -----------------------------------------------------------------------------


def host_ip(host: int) -> str:
    """The loopback address of host number ``host`` (1-based): 127.0.1.1, 127.0.1.2, ..."""
    return f"127.0.1.{host}"


def feed_path(feed: int) -> str:
    return f"/feeds/{feed}.xml"


def feed_xml(host: int, feed: int, items: int, now: datetime) -> bytes:
    """One realistic RSS 2.0 feed: HTML summaries, authors, sections, images, tracking links."""
    site = f"news{host}.example"
    section = SECTIONS[(host + feed) % len(SECTIONS)]
    entries = []
    for i in range(items):
        when = now - timedelta(minutes=23 * i + 7 * feed + host % 13)
        link = f"https://{site}/{section.lower()}/2026/11/story-{feed}-{i}"
        title = (
            f"{section} desk {host}.{feed}: report {i} on the talks, the markets and the weather"
        )
        summary = (
            f"<p>Officials in city {host} said on {when:%A} that item {i} of feed {feed} "
            "would be reviewed, as negotiators met late into the night to settle the "
            "remaining points.</p><p>The agreement, if signed, would <strong>take effect"
            f'</strong> next month. <a href="{link}">Read the full story</a>.</p>'
        )
        entries.append(
            f"""
    <item>
      <title>{escape(title)}</title>
      <link>{link}?utm_source=rss&amp;utm_medium=feed</link>
      <guid isPermaLink="false">{site}/{feed}/{i}</guid>
      <pubDate>{format_datetime(when, usegmt=True)}</pubDate>
      <dc:creator>Reporter {i % 9}</dc:creator>
      <category>{section}</category>
      <description><![CDATA[{summary}]]></description>
      <media:content url="https://{site}/img/{feed}-{i}.jpg" medium="image" width="1200"
        height="675"><media:description>Photo for story {i}</media:description></media:content>
    </item>"""
        )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/"
  xmlns:media="http://search.yahoo.com/mrss/" xmlns:atom="http://www.w3.org/2005/Atom">
  <channel>
    <title>News {host} - {section} ({feed})</title>
    <link>https://{site}/{section.lower()}/</link>
    <atom:link href="https://{site}/feeds/{feed}.xml" rel="self" type="application/rss+xml"/>
    <description>The latest {section.lower()} stories from News {host}</description>
    <language>en-gb</language>
    <lastBuildDate>{format_datetime(now, usegmt=True)}</lastBuildDate>
    <ttl>15</ttl>{"".join(entries)}
  </channel>
</rss>
""".encode()


# --- the server (its own process) ----------------------------------------------------------


def _response(status: str, headers: dict[str, str], body: bytes = b"") -> bytes:
    head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
    return f"HTTP/1.1 {status}\r\n{head}\r\n".encode("latin-1") + body


def _build_responses(
    hosts: int, feeds_per_host: int, items: int, now: datetime
) -> dict[tuple[str, str], tuple[bytes, bytes, str, str]]:
    """(ip, path) -> (200 response, 304 response, etag, last-modified)."""
    last_modified = format_datetime(now, usegmt=True)
    table = {}
    for host in range(1, hosts + 1):
        for feed in range(feeds_per_host):
            body = feed_xml(host, feed, items, now)
            etag = f'"{hashlib.sha1(body).hexdigest()[:16]}"'
            validators = {"ETag": etag, "Last-Modified": last_modified}
            ok = _response(
                "200 OK",
                {
                    "Content-Type": "application/rss+xml; charset=utf-8",
                    "Content-Length": str(len(body)),
                    "Cache-Control": "max-age=60",
                    **validators,
                },
                body,
            )
            table[(host_ip(host), feed_path(feed))] = (
                ok,
                _response("304 Not Modified", validators),
                etag,
                last_modified,
            )
    return table


@dataclass(frozen=True)
class Site:
    """What the feed server serves: ``hosts`` addresses with ``feeds_per_host`` feeds of
    ``items`` items each, as of ``now``; every answer after ``delay`` seconds; it ends after
    ``lifetime`` seconds at the latest."""

    hosts: int
    feeds_per_host: int
    items: int
    now: datetime
    delay: float
    lifetime: float


def serve(conn: Connection, site: Site) -> None:
    """The server process: bind every host on one port, report it, serve until told to stop.

    It stops on "stop", when the parent goes away (the pipe closes), or after ``lifetime``.
    On "stats" it answers how many responses of each status it sent since the last "stats",
    and its CPU time so far.
    """
    # uvloop where installed: the server shares the machine's cores with the gatherer, which
    # a real remote server would not; the less of them it takes the better.
    try:
        import uvloop
    except ImportError:
        asyncio.run(_serve(conn, site))
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(_serve(conn, site))


async def _serve(conn: Connection, site: Site) -> None:
    table = _build_responses(site.hosts, site.feeds_per_host, site.items, site.now)
    statuses: Counter[str] = Counter()
    not_found = _response("404 Not Found", {"Content-Length": "0"})

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        ip = writer.get_extra_info("sockname")[0]
        try:
            while True:  # keep-alive: one request after another on the connection
                head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
                request, *lines = head.split("\r\n")
                path = request.split(" ")[1] if request.count(" ") >= 2 else ""
                headers = {}
                for line in lines:
                    name, sep, value = line.partition(":")
                    if sep:
                        headers[name.strip().lower()] = value.strip()
                await asyncio.sleep(site.delay)
                entry = table.get((ip, path))
                if entry is None:
                    statuses["404"] += 1
                    writer.write(not_found)
                else:
                    ok, unchanged, etag, last_modified = entry
                    match = headers.get("if-none-match")
                    # If-None-Match wins over If-Modified-Since when both are sent (RFC 9110).
                    fresh = (
                        etag in [t.strip() for t in match.split(",")] or match.strip() == "*"
                        if match is not None
                        else headers.get("if-modified-since") == last_modified
                    )
                    statuses["304" if fresh else "200"] += 1
                    writer.write(unchanged if fresh else ok)
                await writer.drain()
                if headers.get("connection", "").lower() == "close":
                    break
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            writer.close()

    servers = await _bind(handle, site.hosts)
    stop = asyncio.Event()

    def on_message() -> None:
        try:
            message = conn.recv()
        except (EOFError, OSError):  # the parent is gone
            stop.set()
            return
        if message == "stats":
            conn.send((dict(statuses), time.process_time()))
            statuses.clear()
        elif message == "stop":
            stop.set()

    loop = asyncio.get_running_loop()
    loop.add_reader(conn.fileno(), on_message)
    conn.send(("ready", servers[0].sockets[0].getsockname()[1]))
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), site.lifetime)
    loop.remove_reader(conn.fileno())
    for server in servers:
        server.close()


Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def _bind(handle: Handler, hosts: int, attempts: int = 20) -> list[asyncio.Server]:
    """Listen on every host's address on one free port (the first host picks it)."""
    for _ in range(attempts):
        first = await asyncio.start_server(handle, host_ip(1), 0, backlog=1024)
        port = first.sockets[0].getsockname()[1]
        servers = [first]
        try:
            for host in range(2, hosts + 1):
                servers.append(
                    await asyncio.start_server(handle, host_ip(host), port, backlog=1024)
                )
            return servers
        except OSError:  # the port is taken on another address: try another one
            for server in servers:
                server.close()
    raise OSError(f"found no port free on all of {host_ip(1)} ... {host_ip(hosts)}")


@contextlib.contextmanager
def feed_server(site: Site) -> Iterator[tuple[int, Connection]]:
    """Start the server process; yield its port and control pipe; always end it."""
    ctx = multiprocessing.get_context("spawn")
    ours, theirs = ctx.Pipe()
    process = ctx.Process(
        target=serve,
        args=(theirs, site),
        name="bench-feed-server",
        daemon=True,
    )
    process.start()
    theirs.close()
    try:
        if not ours.poll(60):
            raise SystemExit("the feed server did not start within 60 s")
        try:
            _, port = ours.recv()
        except EOFError:
            raise SystemExit("the feed server failed to start (see its error above)") from None
        yield port, ours
    finally:
        with contextlib.suppress(OSError):
            ours.send("stop")
        process.join(5)
        if process.is_alive():
            process.terminate()
            process.join(5)
        if process.is_alive():
            process.kill()
            process.join()
        ours.close()


def server_stats(conn: Connection) -> tuple[dict[str, int], float]:
    """Responses the server sent, by status, since the last call; its CPU seconds so far."""
    conn.send("stats")
    if not conn.poll(10):
        raise SystemExit("the feed server did not answer a stats request")
    statuses, cpu = conn.recv()
    return statuses, cpu


# --- digest ----------------------------------------------------------------------------------


def write_config(folder: Path, urls: list[str], args: argparse.Namespace) -> Path:
    """A complete config: SQLite in ``folder``, one [[sources]] per URL, the chosen gather."""
    lines = [
        f"""[service]
name = "Bench Desk"
base_url = "https://digest.bench"
database_url = "sqlite:///digest.db"
sender = "Bench Desk <news@example.org>"

[gather]
concurrency = {args.concurrency}
per_host_concurrency = {args.per_host_concurrency}
per_host_delay_seconds = {args.per_host_delay}
timeout_seconds = {args.timeout}

[[digests]]
id = "daily"
title = "Daily Bench"
"""
    ]
    for i, url in enumerate(urls):
        lines.append(f'\n[[sources]]\nname = "feed-{i:03d}"\nurl = "{url}"\n')
    path = folder / "digest.toml"
    path.write_text("".join(lines), encoding="utf-8")
    return path


async def _bounded_gather(app: App) -> list[SourceReport]:
    return await asyncio.wait_for(gather_sources(app), GATHER_LIMIT_S)


def timed_gather(app: App) -> tuple[float, float, list[SourceReport]]:
    """One gather of every source on a fresh event loop, as `digest gather` runs it
    (digest.app.run: uvloop's loop where installed).

    Returns wall seconds, CPU seconds of this process (all threads), and the reports.
    """
    start, cpu = time.perf_counter(), time.process_time()
    reports = run(_bounded_gather(app))
    return time.perf_counter() - start, time.process_time() - cpu, reports


def check_reports(run: str, reports: list[SourceReport], sources: int) -> None:
    """Fail loudly unless every source reported ok."""
    bad = [r for r in reports if r.status != "ok"]
    if len(reports) != sources or bad:
        shown = "; ".join(f"{r.name}: {r.status} {r.error}" for r in bad[:5])
        raise SystemExit(
            f"{run}: {len(reports)} reports for {sources} sources, {len(bad)} not ok: {shown}"
        )


def maxrss_mb() -> float:
    """Peak resident memory of this process so far (ru_maxrss is in KB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --- the baseline --------------------------------------------------------------------------


def baseline(urls: list[str], timeout: float) -> tuple[float, int]:
    """Fetch and parse each URL in turn, as a simple feed reader does; (seconds, items)."""
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    items = 0
    start = time.perf_counter()
    for url in urls:
        with opener.open(url, timeout=timeout) as response:
            body = response.read()
        items += len(feedparser.parse(body).entries)
    return time.perf_counter() - start, items


# --- main --------------------------------------------------------------------------------------


def _time_limit(seconds: int) -> None:
    def expired(signum: int, frame: FrameType | None) -> None:
        # SystemExit, not TimeoutError: the gatherer catches timeouts as a source's error.
        raise SystemExit(f"the benchmark ran past --time-limit {seconds} s")

    signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", type=int, default=500)
    parser.add_argument("--hosts", type=int, default=100, help="loopback hosts (at most 254)")
    parser.add_argument("--items", type=int, default=20, help="items per feed")
    parser.add_argument("--delay", type=float, default=0.2, help="server delay per answer, s")
    parser.add_argument(
        "--concurrency",
        type=int,
        default=200,
        help="gather.concurrency; 200 = 100 hosts x 2 per host, so only politeness bounds it",
    )
    parser.add_argument("--per-host-concurrency", type=int, default=2)
    parser.add_argument("--per-host-delay", type=float, default=0.0)
    parser.add_argument("--timeout", type=float, default=20.0, help="gather.timeout_seconds")
    parser.add_argument(
        "--baseline-sources",
        type=int,
        default=None,
        help="run the sequential baseline on the first N sources and scale (default: all)",
    )
    parser.add_argument("--time-limit", type=int, default=900, help="stop after this many s")
    args = parser.parse_args()
    if not 1 <= args.hosts <= 254 or args.sources % args.hosts:
        parser.error("--hosts must be 1..254 and divide --sources")
    baseline_n = min(args.baseline_sources or args.sources, args.sources)
    _time_limit(args.time_limit)
    for name in list(os.environ):  # every address here is local: never go through a proxy
        if name.lower() in ("http_proxy", "https_proxy", "all_proxy"):
            del os.environ[name]

    per_host = args.sources // args.hosts
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    expected_items = args.sources * args.items
    print(
        f"server: {args.sources} feeds of {args.items} items on {args.hosts} hosts "
        f"({host_ip(1)} ... {host_ip(args.hosts)}), {per_host} per host, "
        f"every answer after {args.delay * 1000:.0f} ms"
    )
    print(
        f"gather: concurrency {args.concurrency}, per_host_concurrency "
        f"{args.per_host_concurrency}, per_host_delay_seconds {args.per_host_delay:g}, "
        f"timeout_seconds {args.timeout:g}"
    )
    with (
        feed_server(Site(args.hosts, per_host, args.items, now, args.delay, args.time_limit)) as (
            port,
            control,
        ),
        tempfile.TemporaryDirectory(prefix="digest-bench-") as folder,
    ):
        urls = [
            f"http://{host_ip(h)}:{port}{feed_path(f)}"
            for h in range(1, args.hosts + 1)
            for f in range(per_host)
        ]
        config = load_config(write_config(Path(folder), urls, args))
        app = App.open(config)
        try:
            start_mem = maxrss_mb()
            _, server_cpu0 = server_stats(control)
            first_s, first_cpu, first = timed_gather(app)
            first_http, server_cpu1 = server_stats(control)
            second_s, second_cpu, second = timed_gather(app)
            second_http, server_cpu2 = server_stats(control)
            peak_mem = maxrss_mb()

            check_reports("first run", first, args.sources)
            new = sum(r.new_items for r in first)
            counts = app.store.article_counts(
                now - timedelta(days=7), datetime.now(UTC), [r.name for r in first]
            )
            stored = sum(n for n, _ in counts.values())
            if new != expected_items or stored != expected_items:
                raise SystemExit(
                    f"first run: {new} new items reported and {stored} stored, "
                    f"expected {expected_items}"
                )
            check_reports("second run", second, args.sources)
            second_new = sum(r.new_items for r in second)
            if second_new:
                raise SystemExit(f"second run: {second_new} new items from unchanged feeds")
        finally:
            app.close()
        print(
            f"digest, first run (all new): {args.sources} sources in {first_s:.2f} s "
            f"({first_cpu:.2f} s CPU), "
            f"{new} articles stored; server answered {first_http} "
            f"({server_cpu1 - server_cpu0:.2f} s CPU)"
        )
        print(
            f"digest, second run (unchanged): {args.sources} sources in {second_s:.2f} s "
            f"({second_cpu:.2f} s CPU), "
            f"0 new; server answered {second_http} ({server_cpu2 - server_cpu1:.2f} s CPU)"
        )
        print(f"digest process memory: {start_mem:.0f} MB before, peak {peak_mem:.0f} MB")

        baseline_s, baseline_items = baseline(urls[:baseline_n], args.timeout)
        if baseline_items != baseline_n * args.items:
            raise SystemExit(f"baseline: {baseline_items} items from {baseline_n} feeds")
    baseline_full_s = baseline_s * args.sources / baseline_n
    scaled = "" if baseline_n == args.sources else f", scaled from {baseline_n} sources"
    print(
        f"baseline, sequential urllib + feedparser: {baseline_n} sources in {baseline_s:.2f} s "
        f"({baseline_s / baseline_n * 1000:.0f} ms each) -> {baseline_full_s:.1f} s "
        f"for {args.sources}{scaled}"
    )
    signal.alarm(0)
    print(
        json.dumps(
            {
                "sources": args.sources,
                "hosts": args.hosts,
                "server_delay_ms": round(args.delay * 1000),
                "concurrency": args.concurrency,
                "per_host_concurrency": args.per_host_concurrency,
                "per_host_delay_s": args.per_host_delay,
                "wall_s": round(first_s, 3),
                "cpu_s": round(first_cpu, 2),
                "second_run_wall_s": round(second_s, 3),
                "second_run_cpu_s": round(second_cpu, 2),
                "second_run_304": second_http.get("304", 0),
                "baseline_sources": baseline_n,
                "baseline_wall_s": round(baseline_full_s, 2),
                "speedup_x": round(baseline_full_s / first_s, 1),
                "peak_mem_mb": round(peak_mem, 1),
                "mem_before_mb": round(start_mem, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
