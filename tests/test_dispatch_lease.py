"""The "taken by another sender" warning: said when a stalled sender's rows really were
taken, never for rows the dispatcher itself recorded before the batch went out (a reader
whose topics match nothing is skipped; that is not a stall).

Against a real SMTP server and a real SQLite database, like tests/test_outbox_recovery.py.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import timedelta

import pytest

from digest.app import App
from digest.deliver.base import Answered, Sender
from digest.deliver.dispatch import dispatch
from digest.editions import SegmentTemplates, build_edition
from digest.pipeline import gather_sources, run_digest
from digest.records import OutgoingMessage, Reader, Recipient, SendResult
from digest.store import utcnow
from digest.store.tables import SQLModel
from tests.conftest import FeedServer, OpenApp, SmtpServer, rss

TAKEN = "taken by another sender"


@pytest.fixture
def app(open_app: OpenApp, feed_server: FeedServer, smtp_server: SmtpServer) -> App:
    """One source with a story, gathered; three readers, one of a topic nothing is in."""
    story = {"title": "Harbour strike ends", "guid": "1", "link": "https://wire.test/1"}
    url = feed_server.add("/wire.xml", rss([story]))
    app = open_app([("Wire", url)], transport="smtp", smtp_port=smtp_server.port)
    app.store.add_subscriber("ana@example.org")
    app.store.add_subscriber("nobody@example.org", topics=["nosuchtopic"])
    app.store.add_subscriber("bob@example.org")
    asyncio.run(gather_sources(app))
    return app


def _taken_warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if TAKEN in r.getMessage()]


def test_a_skipped_reader_raises_no_stall_warning(
    app: App, smtp_server: SmtpServer, caplog: pytest.LogCaptureFixture
) -> None:

    with caplog.at_level(logging.INFO, logger="digest"):
        report = asyncio.run(run_digest(app, gather_first=False))

    assert report.delivery is not None
    assert report.delivery.counts == {"sent": 2, "skipped": 1}
    assert "delivery to nobody@example.org skipped" in caplog.text
    assert _taken_warnings(caplog) == []
    assert sorted(r for m in smtp_server.messages for r in m.recipients) == [
        "ana@example.org",
        "bob@example.org",
    ]


class Stalling:
    """The real transport, but this process stalls past its lease as the batch goes out:
    a second sender reclaims the batch's rows and claims them (``taken``)."""

    def __init__(self, app: App, inner: Sender, edition_id: int) -> None:
        self.app, self.inner, self.edition_id = app, inner, edition_id
        self.name, self.wants_fields = inner.name, inner.wants_fields
        self.taken: list[int] = []

    async def send_batch(
        self, messages: Sequence[OutgoingMessage], answered: Answered | None = None
    ) -> list[SendResult]:
        deliveries = SQLModel.metadata.tables["deliveries"]
        with self.app.engine.begin() as connection:  # the lease runs out while stalled
            connection.execute(
                deliveries.update()
                .where(deliveries.c.status == "sending")
                .values(lease_until=utcnow() - timedelta(seconds=1))
            )
        assert self.app.store.reclaim_expired(self.edition_id) == len(messages)
        claimed = self.app.store.claim_deliveries(self.edition_id, 10)
        self.taken = [d.id or 0 for d, _ in claimed]
        return await self.inner.send_batch(messages)

    async def aclose(self) -> None:
        await self.inner.aclose()


def _recipient(s: Reader) -> Recipient:
    return Recipient(s.id or 0, s.email, None, "https://u.test", "mailto:u@x.test", "https://p")


def test_rows_taken_by_a_second_sender_are_warned_of_once_with_their_count(
    app: App, caplog: pytest.LogCaptureFixture
) -> None:
    digest = app.config.digests[0]
    edition, _ = build_edition(app, digest, utcnow())
    assert edition.id is not None
    templates = SegmentTemplates(app, digest, edition)

    async def stalled_send() -> Stalling:
        async with app.sender() as sender:
            stalling = Stalling(app, sender, edition.id or 0)
            await dispatch(app.store, stalling, templates, _recipient, edition.id or 0)
            return stalling

    with caplog.at_level(logging.WARNING, logger="digest.deliver"):
        stalling = asyncio.run(stalled_send())

    assert len(stalling.taken) == 2  # ana's and bob's rows; nobody's was skipped before
    [warning] = _taken_warnings(caplog)
    assert f"edition {edition.id}: 2 deliveries of a batch in flight were {TAKEN}" in warning
    # The rows are the second sender's: the stalled one recorded nothing on them.
    counts = app.store.delivery_counts(edition.id)
    assert counts == {"sending": 2, "skipped": 1}
