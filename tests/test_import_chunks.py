"""`digest subscribers import` stores a file in chunks: one lookup of the chunk's existing
addresses and one insert of its new people, whatever the file's size, with every bad row
still reported by its line (issue 20, point 9; issue 18, point 5)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.engine import Engine

from tests.conftest import run_cli
from tests.test_subscribers import TOPICS, Cli, exported

ROWS = 5_000


@pytest.fixture
def cli(write_config: Callable[..., Path]) -> Cli:
    config = write_config([("one", "https://one.example.com/feed")], extra=TOPICS)
    return lambda *args: run_cli("--config", str(config), *args)


@pytest.fixture
def statements() -> Iterator[list[str]]:
    """Every SQL statement any engine runs meanwhile (one per executemany)."""
    seen: list[str] = []

    def record(conn: Any, cursor: Any, sql: str, *args: Any) -> None:
        seen.append(" ".join(sql.split()).upper())

    event.listen(Engine, "before_cursor_execute", record)
    yield seen
    event.remove(Engine, "before_cursor_execute", record)


def people(count: int, start: int = 0) -> str:
    return "Email Address,Full Name,Interests\n" + "".join(
        f"person{i}@example.com,Person {i},tech\n" for i in range(start, start + count)
    )


def test_a_large_import_takes_one_insert_and_one_lookup_per_chunk(
    cli: Cli, tmp_path: Path, statements: list[str]
) -> None:
    cli("subscribers", "list")  # the schema is made before counting
    statements.clear()
    csv_file = tmp_path / "people.csv"
    csv_file.write_text(people(ROWS), encoding="utf-8")
    code, out, err = cli("subscribers", "import", str(csv_file))
    assert (code, err) == (0, "")
    assert out == f"imported {ROWS} new, 0 already subscribed, 0 rows with problems\n"
    inserts = [s for s in statements if s.startswith("INSERT INTO SUBSCRIBERS")]
    lookups = [s for s in statements if s.startswith("SELECT") and "FROM SUBSCRIBERS" in s]
    assert 1 <= len(inserts) <= ROWS // 1000 + 1  # one row at a time was ROWS inserts
    assert len(lookups) <= ROWS // 1000 + 3
    rows = exported(cli)
    assert len(rows) == ROWS
    assert rows[-1] == {
        "email": f"person{ROWS - 1}@example.com",
        "name": f"Person {ROWS - 1}",
        "topics": "tech",
        "timezone": "",
        "locale": "",
        "status": "active",
    }


def test_bad_rows_and_repeats_are_reported_by_line_across_chunks(cli: Cli, tmp_path: Path) -> None:
    cli("subscribers", "add", "person3@example.com")
    cli("subscribers", "add", "person4@example.com")
    cli("subscribers", "remove", "person4@example.com")
    text = people(2_500)
    # line 2 is person0; line 1,502 is person1500, far into the second chunk
    text += "person0@example.com,Again,tech\n"  # line 2,502: added by this file's line 2
    text += "not-an-address,Nobody,tech\n"  # line 2,503
    text += "person2600@example.com,Someone,cooking\n"  # line 2,504
    csv_file = tmp_path / "people.csv"
    csv_file.write_text(text, encoding="utf-8")
    code, out, err = cli("subscribers", "import", str(csv_file))
    assert code == 1
    assert out == (
        "imported 2498 new, 1 already subscribed, 1 unsubscribed earlier (not re-added), "
        "3 rows with problems\n"
    )
    lines = err.splitlines()
    assert lines[0] == (
        f"{csv_file}:2502: person0@example.com appears twice in the file; the first row is kept"
    )
    assert lines[1].startswith(f"{csv_file}:2503: 'not-an-address' is not a valid address")
    assert lines[2] == f"{csv_file}:2504: no source has the topic 'cooking'"
    names = {row["email"]: row["name"] for row in exported(cli)}
    assert names["person0@example.com"] == "Person 0"  # the first row is kept


def test_an_export_of_everyone_imports_as_it_was_in_chunks(cli: Cli, tmp_path: Path) -> None:
    text = "email,name,topics,timezone,locale,status\n" + "".join(
        f"p{i}@example.com,P {i},tech;science,Europe/Paris,fr,"
        f"{('active', 'paused', 'unsubscribed', 'bounced')[i % 4]}\n"
        for i in range(2_100)
    )
    csv_file = tmp_path / "all.csv"
    csv_file.write_text(text, encoding="utf-8")
    assert cli("subscribers", "import", str(csv_file))[0] == 0
    again = tmp_path / "again.csv"
    code, _, _ = cli("subscribers", "export", "--all", str(again))
    assert code == 0
    assert again.read_text(encoding="utf-8") == text


def test_a_file_not_utf8_far_down_is_refused_before_anything_is_imported(
    cli: Cli, tmp_path: Path
) -> None:
    csv_file = tmp_path / "people.csv"
    csv_file.write_bytes(people(3_000).encode() + "zoë@example.com\n".encode("latin-1"))
    code, _, err = cli("subscribers", "import", str(csv_file))
    assert code != 0
    assert "not UTF-8 text (line 3002 is not)" in err
    assert exported(cli, "--all") == []
