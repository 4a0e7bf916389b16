"""The same store on a real PostgreSQL server (scripts/test starts one and sets the URL)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text

from digest.store import open_engine, upgrade
from digest.store.tables import SQLModel
from tests.conftest import FeedServer, rss, run_cli
from tests.pg import fresh_database
from tests.test_state_checks import check_the_upgrade_keeps_rows_and_refuses_unknown_statuses

URL = os.environ.get("DIGEST_TEST_POSTGRES_URL")
if not URL:
    if os.environ.get("DIGEST_REQUIRE_POSTGRES"):
        raise RuntimeError("DIGEST_TEST_POSTGRES_URL is not set but PostgreSQL tests are required")
    pytest.skip("no PostgreSQL server (scripts/test starts one)", allow_module_level=True)


@pytest.fixture
def database() -> Iterator[str]:
    """A fresh database on the server for one test, dropped afterwards."""
    assert URL
    with fresh_database(URL) as url:
        yield url


def test_migrations_match_the_models_on_postgresql(database: str) -> None:
    engine = open_engine(database)
    upgrade(engine)
    upgrade(engine)
    with engine.connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), SQLModel.metadata)
    engine.dispose()
    assert diff == []


def test_the_upgrade_keeps_rows_and_refuses_unknown_statuses_on_postgresql(
    database: str,
) -> None:
    check_the_upgrade_keeps_rows_and_refuses_unknown_statuses(database)


def test_a_digest_goes_out_once_with_postgresql(
    database: str, feed_server: FeedServer, write_config, tmp_path: Path
) -> None:
    url = feed_server.add(
        "/f.xml",
        rss(
            [
                {
                    "title": "Harbour strike ends after talks",
                    "guid": "1",
                    "link": "https://wire.test/1",
                },
                {"title": "Comet visible tonight", "guid": "2", "link": "https://wire.test/2"},
            ]
        ),
    )
    config = write_config([("Wire", url)])
    config.write_text(config.read_text().replace('"sqlite:///digest.db"', f'"{database}"'))
    assert run_cli("--config", str(config), "subscribers", "add", "ana@example.org")[0] == 0
    code, out, err = run_cli("--config", str(config), "send", "--gather")
    assert code == 0, err
    assert "1 sent" in out
    code, out, _ = run_cli("--config", str(config), "send", "--gather")
    assert code == 0 and "nothing to send" in out
    mail = list((tmp_path / "mail" / "new").iterdir())
    assert len(mail) == 1 and b"Harbour strike ends after talks" in mail[0].read_bytes()


def test_an_import_in_chunks_round_trips_on_postgresql(
    database: str, write_config, tmp_path: Path
) -> None:
    """The chunked import's PostgreSQL path (COPY): every column as given, a status's date."""
    people = "email,name,topics,timezone,locale,status\n" + "".join(
        f'p{i}@example.com,"O\'Brien, \\\\ {i}\tx",tech,Asia/Karachi,fr,'
        f"{('active', 'unsubscribed')[i % 2]}\n"
        for i in range(2_100)
    ).replace("\t", "")
    people += "p0@example.com,Again,,,,active\n"  # in the file twice, chunks apart
    config = write_config(
        [], extra='\n[[sources]]\nname = "T"\nurl = "https://t.example/f"\ntopics = ["tech"]\n'
    )
    config.write_text(config.read_text().replace('"sqlite:///digest.db"', f'"{database}"'))
    csv_file = tmp_path / "people.csv"
    csv_file.write_text(people, encoding="utf-8")
    code, out, err = run_cli("--config", str(config), "subscribers", "import", str(csv_file))
    assert code == 1
    assert out == "imported 2100 new, 0 already subscribed, 1 rows with problems\n"
    assert (
        err == f"{csv_file}:2102: p0@example.com appears twice in the file; the first row is kept\n"
    )
    again = tmp_path / "again.csv"
    assert run_cli("--config", str(config), "subscribers", "export", "--all", str(again))[0] == 0
    assert again.read_text(encoding="utf-8") == people.rsplit("p0@example.com,Again", 1)[0]
    engine = create_engine(database)
    with engine.connect() as connection:
        left = connection.execute(
            text("SELECT count(*) FROM subscribers WHERE unsubscribed_at IS NOT NULL")
        ).scalar()
        naive_utc = connection.execute(
            text("SELECT max(abs(extract(epoch FROM (now() AT TIME ZONE 'UTC') - created_at))) "
                 "FROM subscribers")
        ).scalar()  # fmt: skip
    engine.dispose()
    assert left == 1050
    assert naive_utc is not None and naive_utc < 600  # stored as naive UTC, as other rows
