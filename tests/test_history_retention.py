"""The sent history does not grow forever: old editions and old delivery rows are pruned
(by every gather and by `digest db prune`) in small batches, what still matters is kept,
and an edition stores its stories compactly, yet renders for another segment as before."""

from __future__ import annotations

import asyncio
import dataclasses
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import text

import digest.store.history
from digest.app import App
from digest.editions.stored import ranked_from_json, ranked_to_json
from digest.pipeline import gather_sources
from digest.rank import sent_sources
from digest.records import (
    ArticleRecord,
    RankedEdition,
    Signal,
    Story,
)
from digest.render import EditionInfo, render_edition
from digest.store import Edition, Store, open_engine, upgrade, utcnow
from tests.conftest import FeedServer, OpenApp, rss, run_cli


def _edition(app: App, digest_id: str, days_ago: float, states: list[str]) -> int:
    """An edition of ``days_ago`` with one delivery row per state, one per subscriber."""
    slot = (utcnow() - timedelta(days=days_ago)).replace(microsecond=0)
    edition = app.store.save_edition(
        Edition(digest_id=digest_id, slot=slot, created_at=slot, subject="s", html="h", text="t")
    )
    assert edition.id is not None
    assert app.store.queue_deliveries(edition.id) == len(states)
    with app.engine.begin() as connection:
        ids = connection.execute(
            text("SELECT id FROM deliveries WHERE edition_id = :e ORDER BY id"), {"e": edition.id}
        ).scalars()
        for row_id, state in zip(ids, states, strict=True):
            connection.execute(
                text("UPDATE deliveries SET status = :s WHERE id = :i"), {"s": state, "i": row_id}
            )
    return edition.id


def _rows(app: App) -> dict[int, int]:
    with app.engine.connect() as connection:
        return dict(
            connection.execute(
                text("SELECT edition_id, COUNT(*) FROM deliveries GROUP BY edition_id")
            ).all()
        )


def test_old_editions_and_delivery_rows_are_pruned_and_what_still_matters_is_kept(
    feed_server: FeedServer, open_app: OpenApp, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    url = feed_server.add("/f.xml", rss([{"title": "Tide", "guid": "1", "link": "https://t/1"}]))
    app = open_app([("Wire", url)])
    for n in range(3):
        app.store.add_subscriber(f"reader{n}@example.org")
    monkeypatch.setattr(digest.store.history, "DELIVERY_BATCH", 2)  # several batches each
    done = ["sent", "failed", "skipped"]
    gone = _edition(app, "daily", 400, done)  # past editions_days (365)
    archived = _edition(app, "daily", 200, done)  # past deliveries_days (90)
    sending = _edition(app, "daily", 100, ["sent", "paused", "sent"])  # still owed to one
    recent = _edition(app, "daily", 10, done)
    yearly = _edition(app, "yearly", 500, done)  # its digest's newest: a run of its slot
    # must still see who has had it

    asyncio.run(gather_sources(app))  # the daemon's gathering prunes after it reads

    assert app.store.edition_by_id(gone) is None
    kept = {e.id for e in app.store.editions(limit=100)}
    assert kept == {archived, sending, recent, yearly}
    assert _rows(app) == {sending: 3, recent: 3, yearly: 3}  # the archived one: no rows

    config = tmp_path / "digest.toml"
    code, out, err = run_cli("--config", str(config), "db", "prune")
    assert code == 0, err
    assert "0 editions older than 365 days, 0 delivery rows" in out


def test_prune_says_the_days_as_written_in_the_config(
    write_config: Callable[..., Path],
) -> None:
    """Days set in the config are read as numbers with a fraction (half a day is allowed):
    `digest db prune` says them as the admin wrote them, "365 days", not "365.0 days"."""
    config = write_config(
        [("Wire", "file:wire.xml")],
        gather="retention_days = 30",
        extra="\n[retention]\neditions_days = 365\ndeliveries_days = 90.5\n",
    )

    code, out, err = run_cli("--config", str(config), "db", "prune")

    assert code == 0, err
    assert out.strip() == (
        "pruned 0 articles not listed for 30 days, 0 editions older than 365 days, "
        "0 delivery rows of editions older than 90.5 days"
    )


def _article(
    n: int, source: str, hours: float, topics: tuple[str, ...] = ("world",)
) -> ArticleRecord:
    return ArticleRecord(
        n,
        source,
        f"Headline {n} from {source}",
        f"https://{source}.test/{n}",
        "A long summary of what happened. " * 30,
        datetime(2026, 11, 30, 6, tzinfo=UTC) + timedelta(hours=hours),
        topics=topics,
        image_url=f"https://{source}.test/{n}.jpg",
        story_id=1000,
        language="en",
    )


def _story(first: int, sources: int, copies: int, newest_other: bool) -> Story:
    lead = _article(first, "lead", 0)
    others = [
        _article(first + 1 + i * copies + c, f"outlet{i}", -1 - c, ("world", f"t{i % 3}"))
        for i in range(sources)
        for c in range(copies)
    ]
    if newest_other:
        others[-1] = dataclasses.replace(
            others[-1], published_at=lead.published_at + timedelta(hours=2)
        )
    return Story(lead, tuple(others), 3.5, (Signal("freshness", 0.9, 1.2),))


def test_an_edition_stores_its_stories_compactly_and_renders_from_them_the_same() -> None:
    ranked = RankedEdition(
        (_story(1, 40, 3, newest_other=True),),
        tuple(_story(1000 * k, 30, 2, newest_other=k % 2 == 0) for k in range(2, 6)),
    )
    full = len(json.dumps(dataclasses.asdict(ranked), default=str, ensure_ascii=False))
    stored = ranked_to_json(ranked)
    assert len(stored) < full / 5, (len(stored), full)  # no summaries of the other articles

    back = ranked_from_json(stored)
    for before, after in zip(
        (*ranked.breaking, *ranked.latest), (*back.breaking, *back.latest), strict=True
    ):
        assert after.lead == before.lead
        assert after.sources == before.sources and after.topics == before.topics
        assert [(a.source, a.url, a.title) for a in after.also] == [
            (a.source, a.url, a.title) for a in before.also
        ]
        assert after.story_id == before.story_id
        assert (after.score, after.signals) == (before.score, before.signals)
    assert sent_sources([back]) == sent_sources([ranked])  # the repeat checks: every id
    info = EditionInfo(
        "Desk",
        "Daily",
        "https://d.test",
        "1 Road",
        "Europe/Paris",
        datetime(2026, 11, 30, 8, tzinfo=UTC),
    )
    assert render_edition(info, back) == render_edition(info, ranked)  # another segment's


def test_an_edition_stored_in_full_by_an_earlier_version_still_reads() -> None:
    ranked = RankedEdition((), (_story(1, 3, 2, newest_other=True),))
    old = json.dumps(dataclasses.asdict(ranked), default=lambda d: d.isoformat())
    assert ranked_from_json(old) == ranked


# --- the same on PostgreSQL (scripts/test starts one) -----------------------------------------


def test_history_pruning_and_first_schedules_on_postgresql(postgres_database: str) -> None:
    engine = open_engine(postgres_database)
    try:
        upgrade(engine)
        store = Store(engine)
        for n in range(3):
            store.add_subscriber(f"reader{n}@example.org")
        now = utcnow().replace(microsecond=0)
        ids = []
        for days in (400, 200, 10):
            slot = now - timedelta(days=days)
            edition = store.save_edition(
                Edition(
                    digest_id="daily", slot=slot, created_at=slot, subject="s", html="h", text="t"
                )
            )
            assert edition.id is not None
            store.queue_deliveries(edition.id)
            ids.append(edition.id)
        with engine.begin() as connection:
            connection.execute(text("UPDATE deliveries SET status = 'sent'"))
        pruned = store.prune_history(now - timedelta(days=365), now - timedelta(days=90))
        assert (pruned.editions, pruned.deliveries) == (1, 6)
        assert [e.id for e in store.editions()] == [ids[2], ids[1]]
        assert store.scheduled_since("daily", now) == now - timedelta(days=200)  # its first
        assert store.scheduled_since("daily", now + timedelta(hours=1)) == now - timedelta(days=200)
    finally:
        engine.dispose()
