"""Migration 0010 rewrites addresses with a Unicode domain to their ASCII (punycode) form,
as digest sends them, and leaves alone, with a log line naming them, the ones it cannot:
a non-ASCII part before the @, or an ASCII form another subscriber already has. It keeps a
frozen copy of the address check (tests/test_layers.py), so it is pinned here."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import text

from digest.store import open_engine, upgrade
from digest.subscribers import normalise_email

NOW = datetime(2026, 11, 28, 20, 0, tzinfo=UTC).replace(tzinfo=None)
BEFORE = {
    1: "reader@bücher.example",  # rewritten
    2: "Ünïcode@example.org",  # cannot be written in ASCII: left
    3: "taken@xn--caf-dma.example",  # ASCII already: untouched
    4: "taken@café.example",  # its ASCII form is row 3's: left
    5: "plain@example.org",
    6: "Mixed@Straße.Example",  # rewritten, in lower case
}


def test_unicode_domains_become_ascii_and_the_rest_is_named(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    engine = open_engine(f"sqlite:///{tmp_path / 'old.db'}")
    upgrade(engine, "0009")
    with engine.begin() as c:
        for i, email in BEFORE.items():
            c.execute(
                text("INSERT INTO subscribers (id, email, public_id, status, topics, created_at)"
                     " VALUES (:i, :e, :p, 'active', '', :t)"),
                {"i": i, "e": email, "p": f"pub{i}", "t": NOW},
            )  # fmt: skip
    with caplog.at_level(logging.WARNING, logger="digest.store"):
        upgrade(engine, "0010")
    with engine.connect() as c:
        after: dict[int, str] = dict(c.execute(text("SELECT id, email FROM subscribers")).all())
    assert after == {
        1: "reader@xn--bcher-kva.example",
        2: "Ünïcode@example.org",
        3: "taken@xn--caf-dma.example",
        4: "taken@café.example",
        5: "plain@example.org",
        6: "mixed@xn--strae-oqa.example",
    }
    # What it rewrote is what the live code stores today for the same address.
    assert after[1] == normalise_email(BEFORE[1]) and after[6] == normalise_email(BEFORE[6])
    said = caplog.text
    assert "Ünïcode@example.org left as it is" in said
    assert "taken@café.example left as it is: taken@xn--caf-dma.example is already" in said
