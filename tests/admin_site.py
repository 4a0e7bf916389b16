"""The admin console served as `digest serve` serves it (uvicorn on a real socket), over a
config mailing through the test SMTP server, with an admin account and fresh news."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import httpx

from digest.app import App, run
from digest.clock import SYSTEM_CLOCK, Clock
from digest.config import load_config
from digest.pipeline import gather_sources
from digest.web import create_app
from digest.web.admin.auth import LoginGuard, hash_password
from tests.conftest import FeedServer, csrf, local_listener, rss, uvicorn_thread

ADMIN, PASSWORD = "boss@example.org", "correct horse battery"
STORIES = [
    ("Storm reaches the coast", "world"),
    ("Telescope finds a new moon", "science"),
    ("Parliament passes the budget", "world"),
]


@dataclass
class Console:
    """The running app: its address and the App over the same database."""

    base: str
    app: App

    def client(self, **kw: object) -> httpx.Client:
        return httpx.Client(base_url=self.base, timeout=20.0, **kw)  # type: ignore[arg-type]

    def login(
        self, client: httpx.Client, email: str = ADMIN, password: str = PASSWORD
    ) -> httpx.Response:
        """Log in through the form (the client keeps the cookies)."""
        page = client.get("/admin/login")
        return client.post(
            "/admin/login",
            data={"csrf": csrf(page), "email": email, "password": password, "next": ""},
        )

    @contextmanager
    def logged_in(self) -> Iterator[httpx.Client]:
        """A client logged in as the admin."""
        with self.client() as client:
            assert self.login(client).status_code == 303
            yield client


def console_config(
    write_config: Callable[..., Path], feed_server: FeedServer, smtp_port: int
) -> Path:
    """Two sources with topics, fresh stories, SMTP to the test server."""
    now = datetime.now(UTC)
    items = [
        {
            "title": title,
            "guid": f"g{i}",
            "link": f"https://news.test/{i}",
            "desc": f"{title}: what happened and why.",
            "date": format_datetime(now - timedelta(hours=i + 1)),
        }
        for i, (title, _) in enumerate(STORIES)
    ]
    world = feed_server.add(
        "/world.xml", rss([x for x, (_, t) in zip(items, STORIES, strict=True) if t == "world"])
    )
    science = feed_server.add(
        "/science.xml", rss([x for x, (_, t) in zip(items, STORIES, strict=True) if t == "science"])
    )
    path = write_config([], transport="smtp", smtp_port=smtp_port)
    path.write_text(
        path.read_text()
        + f'\n[[sources]]\nname = "World Wire"\nurl = "{world}"\ntopics = ["world"]\n'
        + f'\n[[sources]]\nname = "Science Daily"\nurl = "{science}"\ntopics = ["science"]\n'
    )
    return path


@contextmanager
def serving(
    config: Path, guard: LoginGuard | None = None, gather: bool = True, clock: Clock | None = None
) -> Iterator[Console]:
    """uvicorn in a thread, with `digest serve`'s settings, on a free port of 127.0.0.1;
    ``clock``: the app's (a ``ManualClock`` to move its sessions and limits on)."""
    app = App.open(load_config(config), clock=clock or SYSTEM_CLOCK)
    app.store.add_admin(ADMIN, hash_password(PASSWORD))
    if gather:
        run(gather_sources(app))
    listener = local_listener()
    try:
        with uvicorn_thread(create_app(app, admin_guard=guard), listener):
            yield Console(f"http://127.0.0.1:{listener.getsockname()[1]}", app)
    finally:
        app.close()
