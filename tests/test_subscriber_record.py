"""A reader's record (`digest subscribers show`, the console's subscriber page): which recent
editions never queued them, and why, answered from one query for the whole page."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import event, update

from digest.states import DeliveryStatus
from digest.store import Edition, Store, open_engine, upgrade, utcnow
from digest.store.tables import DELIVERIES
from digest.subscribers.record import subscriber_record

MAILED_NOBODY = "it mailed nobody"
NOT_FOR_THEM = "not queued for them"


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    engine = open_engine(f"sqlite:///{tmp_path / 'db.sqlite'}")
    upgrade(engine)
    yield Store(engine)
    engine.dispose()


def _editions(store: Store, fates: list[DeliveryStatus | None]) -> list[int]:
    """One edition per fate, built an hour apart from now on, queued to the one reader
    there is so far and that row set to the fate (None: never queued)."""
    start = utcnow() + timedelta(hours=1)
    ids = []
    for i, fate in enumerate(fates):
        at = start + timedelta(hours=i)
        edition = store.save_edition(
            Edition(
                digest_id="daily",
                slot=at,
                created_at=at,
                subject=f"Daily {i}",
                html="<p>-</p>",
                text="-",
                story_count=1,
            )
        )
        assert edition.id is not None
        ids.append(edition.id)
        if fate is not None:
            assert store.queue_deliveries(edition.id) == 1
            with store.engine.begin() as connection:
                connection.execute(
                    update(DELIVERIES)
                    .where(DELIVERIES.c.edition_id == edition.id)
                    .values(status=fate.value)
                )
    return ids


def test_which_editions_went_out_is_one_answer_for_many(store: Store) -> None:
    """Sent or being sent counts as gone out; queued, failed or never queued does not."""
    store.add_subscriber("other@example.org")
    fates = [DeliveryStatus.SENT, DeliveryStatus.SENDING, DeliveryStatus.PENDING]
    sent, sending, pending, failed, never = _editions(store, [*fates, DeliveryStatus.FAILED, None])

    assert store.editions_went_out([sent, sending, pending, failed, never]) == {sent, sending}
    assert store.editions_went_out([]) == set()
    assert store.edition_went_out(sent) and not store.edition_went_out(pending)


def test_the_record_says_which_missed_editions_mailed_nobody_in_one_query(store: Store) -> None:
    """Ten editions the reader has no row of: one that went to the other reader is "not
    queued for them", the rest "mailed nobody"; and the page's query count does not grow
    with the editions (it asked once per edition before)."""
    store.add_subscriber("other@example.org")
    ids = _editions(store, [DeliveryStatus.SENT] + [DeliveryStatus.PENDING] * 4 + [None] * 5)
    reader, _ = store.add_subscriber("reader@example.org")  # before the editions were built

    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    event.listen(store.engine, "before_cursor_execute", count)
    try:
        record = subscriber_record(store, reader, editions=10)
    finally:
        event.remove(store.engine, "before_cursor_execute", count)

    why = {missing.edition.id: missing.why for missing in record.unqueued}
    assert set(why) == set(ids)
    assert why[ids[0]].startswith(NOT_FOR_THEM)
    assert all(why[i].startswith(MAILED_NOBODY) for i in ids[1:])
    went_out_queries = [s for s in statements if "deliveries.status IN" in s]
    assert len(went_out_queries) == 1, went_out_queries
