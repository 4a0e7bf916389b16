"""Shared test peers: a real local HTTP server for feeds, a real SMTP server, config files."""

from __future__ import annotations

import contextlib
import email
import email.policy
import json
import os
import re
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from digest.app import App
from digest.clock import SYSTEM_CLOCK, Clock
from digest.config import load_config

if TYPE_CHECKING:
    from tests.admin_site import Console
    from tests.reader_web import Client

SECRET = "test-secret-0123456789-abcdefghij"
# The shared read-only data beside the checkout; DIGEST_SHARED points elsewhere (a worktree
# kept in another folder than the main checkout).
SHARED = Path(os.environ.get("DIGEST_SHARED") or Path(__file__).resolve().parents[2] / "shared")
ROOT = Path(__file__).resolve().parents[1]


# --- The fast core ------------------------------------------------------------------------

# Quick one-shot tools a fixture may run in a fast test: they make a file and exit, they
# start no service (the self-signed certificate below).
QUICK_TOOLS = frozenset({"openssl"})


@pytest.fixture(autouse=True)
def _a_process_needs_the_slow_mark(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fail a test that starts a process (``digest``, a server, a daemon, a browser) without
    ``@pytest.mark.slow``, so ``pytest -m "not slow"`` stays the fast in-process core.
    (The parser pool's workers are started by multiprocessing, not ``subprocess``: they are
    part of the code under test and allowed.)"""
    if request.node.get_closest_marker("slow") is not None:
        return
    start = subprocess.Popen._execute_child  # type: ignore[attr-defined]

    def refuse(self: subprocess.Popen[Any], args: Any, executable: Any, *rest: Any) -> Any:
        program = executable or (args if isinstance(args, (str, bytes)) else args[0])
        name = os.path.basename(os.fsdecode(program).split()[0])
        if name in QUICK_TOOLS:
            return start(self, args, executable, *rest)
        pytest.fail(
            f"{request.node.nodeid} starts a process ({name}): mark it @pytest.mark.slow "
            "so that `pytest -m 'not slow'` stays the fast core",
            pytrace=False,
        )

    monkeypatch.setattr(subprocess.Popen, "_execute_child", refuse)


# --- HTTP ----------------------------------------------------------------------------------


@dataclass
class Route:
    """What the feed server answers on one path."""

    body: bytes = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=lambda: {"Content-Type": "application/xml"})
    delay: float = 0.0  # seconds to wait before answering (a hanging server)
    # Answers by itself on the raw connection (a reset, a slow drip, a streamed body): it
    # gets the handler and writes to handler.wfile / handler.connection as it likes.
    raw: Callable[[BaseHTTPRequestHandler], None] | None = None


class FeedServer:
    """A real HTTP server on 127.0.0.1, port 0, serving ``routes``; records request paths.

    Like a real server it answers 304 when a route's ETag or Last-Modified header matches
    the request's If-None-Match or If-Modified-Since.
    """

    def __init__(self) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.requests.append((self.path, dict(self.headers)))
                route = outer.routes.get(self.path)
                if route is None:
                    route = Route(b"not found", 404, {"Content-Type": "text/plain"})
                if route.delay:
                    time.sleep(route.delay)
                if route.raw is not None:
                    # The client giving up (a reset, a closed socket) is often the point.
                    with contextlib.suppress(OSError):
                        route.raw(self)
                    self.close_connection = True
                    return
                if _not_modified(route.headers, self.headers):
                    self.send_response(304)
                    self.end_headers()
                    return
                try:
                    self.send_response(route.status)
                    for k, v in route.headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", str(len(route.body)))
                    self.end_headers()
                    self.wfile.write(route.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = _Server(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def add(self, path: str, body: bytes | str, **kw: Any) -> str:
        self.routes[path] = Route(body.encode() if isinstance(body, str) else body, **kw)
        return self.url(path)


class _Server(ThreadingHTTPServer):
    # socketserver's backlog of 5 drops connections when dozens of sources connect at
    # once; the kernel then retries them a second later, which looks like a slow server.
    request_queue_size = 128


def _not_modified(answer: dict[str, str], request: Any) -> bool:
    etag = answer.get("ETag")
    modified = answer.get("Last-Modified")
    if etag and request.get("If-None-Match") == etag:
        return True
    return bool(modified and request.get("If-Modified-Since") == modified)


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    server = FeedServer()
    server.thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


# --- SMTP ----------------------------------------------------------------------------------


@dataclass
class Received:
    sender: str
    recipients: list[str]
    data: bytes

    def message(self) -> EmailMessage:
        return email.message_from_bytes(self.data, policy=email.policy.default)


class RecordingHandler:
    """Accepts mail; refuses recipients by prefix: 'bounce' -> 550 5.1.1, 'later' -> 451."""

    def __init__(self) -> None:
        self.messages: list[Received] = []
        self.defer_later = True  # False: the greylisting is over, 'later' is accepted

    async def handle_RCPT(
        self, server: SMTP, session: Session, envelope: Envelope, address: str, options: list[str]
    ) -> str:
        if address.startswith("bounce"):
            return f"550 5.1.1 <{address}>: Recipient address rejected: User unknown"
        if address.startswith("later") and self.defer_later:
            return "451 4.7.1 Try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        content = envelope.original_content or b""
        self.messages.append(Received(str(envelope.mail_from), list(envelope.rcpt_tos), content))
        return "250 Message accepted for delivery"


@dataclass
class SmtpServer:
    host: str
    port: int
    handler: RecordingHandler

    @property
    def messages(self) -> list[Received]:
        return self.handler.messages


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    handler = RecordingHandler()
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield SmtpServer("127.0.0.1", controller.port, handler)
    controller.stop()


# --- config --------------------------------------------------------------------------------


def config_text(
    sources: list[tuple[str, str]],
    *,
    transport: str = "maildir",
    smtp_port: int = 25,
    extra: str = "",
    schedule: str = "0 7 * * *",
    timeout: float = 5.0,
    gather: str = "",
    per_host_delay: float = 0.0,
    database_url: str = "sqlite:///digest.db",
    topics: Mapping[str, list[str]] | None = None,
) -> str:
    """A complete config: the given (name, url) sources, with ``topics`` by source name,
    SQLite beside it (unless ``database_url`` says another database), one digest.

    ``gather`` is more TOML lines for the [gather] table, such as "max_body_mb = 1". All
    sources of the local servers share one host, so its politeness pause is off unless given.
    """
    parts = [
        f"""[service]
name = "Test Desk"
base_url = "https://digest.test"
timezone = "UTC"
database_url = "{database_url}"
sender = "Test Desk <news@example.com>"
postal_address = "1 Test Street"
secret_env = "DIGEST_SECRET"

[gather]
timeout_seconds = {timeout}
per_host_delay_seconds = {per_host_delay}
{gather}

[[digests]]
id = "daily"
title = "Daily Test"
schedule = "{schedule}"
breaking_items = 3
latest_items = 20
lookback_hours = 48

[delivery]
transport = "{transport}"
retry_base_seconds = 0  # tests retry deferred messages on the very next run

[delivery.smtp]
host = "127.0.0.1"
port = {smtp_port}
security = "none"
connections = 2
timeout_seconds = 10

[delivery.maildir]
path = "mail"
"""
    ]
    for name, url in sources:
        parts.append(f'\n[[sources]]\nname = "{name}"\nurl = "{url}"\n')
        if topics and name in topics:
            parts.append(f"topics = {json.dumps(topics[name])}\n")
    parts.append(extra)
    return "".join(parts)


@pytest.fixture
def secret(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("DIGEST_SECRET", SECRET)
    return SECRET


@pytest.fixture
def write_config(tmp_path: Path, secret: str) -> Callable[..., Path]:
    def write(sources: list[tuple[str, str]], **kw: Any) -> Path:
        path = tmp_path / "digest.toml"
        path.write_text(config_text(sources, **kw), encoding="utf-8")
        return path

    return write


OpenApp = Callable[..., App]


@pytest.fixture
def open_app(write_config: Callable[..., Path]) -> Iterator[OpenApp]:
    """Write a config for the given (name, url) sources and open the real App over it
    (every App of one test shares one database); each is closed after the test."""
    apps: list[App] = []

    def open_(sources: list[tuple[str, str]], **kw: Any) -> App:
        app = App.open(load_config(write_config(sources, **kw)))
        apps.append(app)
        return app

    yield open_
    for app in apps:
        app.close()


def ago(**delta: float) -> str:
    """An RFC 2822 date that long before now, as a feed writes it: ``ago(hours=2)``."""
    return format_datetime(datetime.now(UTC) - timedelta(**delta))


def rss(items: list[dict[str, str]], title: str = "Test Feed") -> str:
    """A small RSS 2.0 document; each item dict has title, link, and optional guid/date/desc."""
    from xml.sax.saxutils import escape

    body = "".join(
        "<item>"
        f"<title>{escape(i['title'])}</title>"
        + (f"<link>{escape(i['link'])}</link>" if i.get("link") else "")
        + (f"<guid>{escape(i['guid'])}</guid>" if i.get("guid") else "")
        + (f"<pubDate>{i['date']}</pubDate>" if i.get("date") else "")
        + (f"<description>{escape(i['desc'])}</description>" if i.get("desc") else "")
        + "</item>"
        for i in items
    )
    return (
        f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel>'
        f"<title>{escape(title)}</title><link>https://example.test/</link>{body}</channel></rss>"
    )


def run_cli(*args: str, clock: Clock = SYSTEM_CLOCK) -> tuple[int, str, str]:
    """Run the real ``digest`` entry point in-process; returns (exit code, stdout, stderr).
    ``clock``: the time the command runs at (a ``ManualClock`` to set it)."""
    import contextlib
    import io

    from digest.cli import main

    out, err = io.StringIO(), io.StringIO()
    code = 0
    import sys

    old_argv = sys.argv
    sys.argv = ["digest", *args]
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                main(clock)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        sys.argv = old_argv
    return code, out.getvalue(), err.getvalue()


def self_signed(folder: Path, name: str, alt_name: str) -> tuple[Path, Path]:
    """A self-signed certificate (openssl) for ``name`` with the subjectAltName
    ``alt_name`` ("IP:127.0.0.1", "DNS:feeds.test"), and its key, written in ``folder``;
    the test skips without openssl."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"),
            *("-subj", f"/CN={name}", "-addext", f"subjectAltName={alt_name}"),
            *("-keyout", str(key), "-out", str(cert)),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture
def certificate(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1 (openssl)."""
    return self_signed(tmp_path, "127.0.0.1", "IP:127.0.0.1")


# --- web -----------------------------------------------------------------------------------

_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf(page: httpx.Response) -> str:
    """The CSRF field of the page's form; the test fails, showing the page, without one."""
    found = _CSRF.search(page.text)
    assert found, page.text
    return found.group(1)


def local_listener() -> socket.socket:
    """A socket bound to a free port of 127.0.0.1, for a server to listen on."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    return listener


@contextlib.contextmanager
def uvicorn_thread(asgi: Any, listener: socket.socket) -> Iterator[None]:
    """``asgi`` served by uvicorn in a thread, as `digest serve` configures it, on
    ``listener``; stopped (and the listener closed) afterwards."""
    import uvicorn

    from digest.web.server import server_config

    server = uvicorn.Server(server_config(asgi, "127.0.0.1", listener.getsockname()[1]))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    assert server.started, "uvicorn did not start"
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        listener.close()


@pytest.fixture
def console(
    write_config: Callable[..., Path], feed_server: FeedServer, smtp_server: SmtpServer
) -> Iterator[Console]:
    """The admin console over tests/admin_site.py's two sources, served as `digest serve`
    serves it, with an admin account and the news gathered."""
    from tests.admin_site import console_config, serving

    with serving(console_config(write_config, feed_server, smtp_server.port)) as running:
        yield running


@pytest.fixture
def reader_config(
    write_config: Callable[..., Path], feed_server: FeedServer, smtp_server: SmtpServer
) -> Path:
    """The config the reader's pages are tried on: one source, "Wire", with one story,
    offering the topics world and science, mailing through the test SMTP server."""
    from tests.reader_web import topics_config

    url = feed_server.add(
        "/f.xml",
        rss([{"title": "Harbour strike ends", "guid": "1", "link": "https://wire.test/1"}]),
    )
    return topics_config(write_config, url, smtp_server.port, ["world", "science"])


@pytest.fixture
async def reader_client(reader_config: Path) -> AsyncIterator[Client]:
    """The web app over ``reader_config`` in-process, and its App (tests/reader_web.py)."""
    from tests.reader_web import web_client

    async with web_client(reader_config) as client:
        yield client


# --- PostgreSQL ----------------------------------------------------------------------------


@pytest.fixture
def postgres_database() -> Iterator[str]:
    """A fresh database on the PostgreSQL server scripts/test starts, dropped afterwards
    (skipped without a server, unless DIGEST_REQUIRE_POSTGRES says it must be there)."""
    from tests.pg import fresh_database

    with fresh_database() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """The test runs twice: on SQLite beside the config, and on a fresh database on the
    test PostgreSQL server (as ``postgres_database``); for ``write_config(database_url=)``."""
    if request.param == "sqlite":
        yield "sqlite:///digest.db"
        return
    from tests.pg import fresh_database

    with fresh_database() as url:
        yield url
