"""A reader whose own stored data cannot go into a message: they get the email if it can be
built at all, and an unbuildable one is reported on the first edition only, not every day.

The rows here are written straight to the store, as a database from before the input rules
(or another tool) would hold them: ``check_name`` and ``normalise_email`` refuse them today.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from digest.app import App
from digest.config import load_config
from digest.pipeline import gather_sources, run_digest
from digest.store import utcnow
from tests.conftest import FeedServer, SmtpServer, rss

UNSENDABLE = "'ada@bücher.example' is not an ASCII address"


def test_stored_bad_data_costs_the_reader_the_name_or_one_report_not_every_edition(
    write_config: Callable[..., Path],
    feed_server: FeedServer,
    smtp_server: SmtpServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    url = feed_server.add("/f.xml", rss([{"title": "T", "guid": "1", "link": "https://w.test/1"}]))
    config = write_config([("Wire", url)], transport="smtp", smtp_port=smtp_server.port)
    app = App.open(load_config(config))
    try:
        app.store.add_subscriber("bob@example.org", "Bob\r\nBcc: victim@example.net")
        app.store.add_subscriber("ada@bücher.example", "Ada")
        app.store.add_subscriber("ana@example.org", "Ana")
        asyncio.run(gather_sources(app))
        caplog.set_level(logging.INFO)

        first = asyncio.run(run_digest(app, gather_first=False))

        assert first.delivery is not None
        assert first.delivery.counts == {"sent": 2, "failed": 1}
        assert len(first.delivery.problems) == 1
        assert UNSENDABLE in first.delivery.problems[0]
        assert first.delivery.problems[0].endswith(
            "(later editions skip this reader until it is fixed)"
        )
        bob = next(m for m in smtp_server.messages if m.recipients == ["bob@example.org"])
        assert bob.message()["To"] == "bob@example.org"  # without the name, nothing injected
        assert "Bcc" not in bob.message() and b"victim" not in bob.data
        assert "bob@example.org's stored name 'Bob\\r\\nBcc: victim@example.net'" in caplog.text

        # Tomorrow's edition has a story of its own (each story goes once).
        fresh = {"title": "U", "guid": "2", "link": "https://w.test/2"}
        feed_server.add(
            "/f.xml", rss([{"title": "T", "guid": "1", "link": "https://w.test/1"}, fresh])
        )
        asyncio.run(gather_sources(app))
        second = asyncio.run(run_digest(app, now=utcnow() + timedelta(days=1), gather_first=False))

        assert second.delivery is not None and second.edition is not None
        assert first.edition is not None and second.edition.id != first.edition.id
        assert second.delivery.counts == {"sent": 2, "skipped": 1}
        assert second.delivery.problems == []  # reported once, on the first edition
        row = next(
            d for d, s in app.store.deliveries(second.edition.id or 0) if s.email.startswith("ada")
        )
        assert row.status == "skipped"
        assert row.error is not None and row.error.startswith(UNSENDABLE)
        assert f"reported when edition {first.edition.id} failed on it" in row.error
        assert len(smtp_server.messages) == 4
    finally:
        app.close()
