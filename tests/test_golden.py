"""Golden files: the whole message of a fixed edition, byte for byte, dynamic values blanked.

After an intended change to the templates, regenerate with
``DIGEST_UPDATE_GOLDEN=1 .venv/bin/pytest tests/test_golden.py`` and review the diff.
"""

from __future__ import annotations

import os
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from digest.records import ArticleRecord, RankedEdition, Recipient, Story
from digest.render import EditionInfo, build_template, render_edition

GOLDEN = Path(__file__).parent / "golden"
NOW = datetime(2026, 11, 28, 7, 0, tzinfo=UTC)
# The lead's picture goes above it, wide; a Latest story's beside its headline, small.
IMAGES = {1: "https://harbour.example/storm.jpg", 10: "https://ledger.example/chip.jpg"}


def _message() -> bytes:
    def article(i: int, source: str, title: str, minutes: int, summary: str = "") -> ArticleRecord:
        return ArticleRecord(
            i,
            source,
            title,
            f"https://{source.split()[0].lower()}.example/{i}",
            summary,
            NOW - timedelta(minutes=minutes),
            image_url=IMAGES.get(i),
            image_alt="Waves breaking over the harbour wall" if i == 1 else None,
            language="de-CH" if i == 12 else None,
        )

    storm = Story(
        article(
            1,
            "Harbour Wire",
            "Storm Isolde makes landfall, leaving 40,000 homes without power",
            55,
            "Storm Isolde came ashore near Port Calder before dawn.",
        ),
        (
            article(
                2, "Metro Gazette", "Storm Isolde landfall leaves 40,000 homes without power", 40
            ),
            article(3, "Pacific Report", "Live: Storm Isolde makes landfall", 25),
        ),
        3.2,
        (),
    )
    latest = tuple(
        Story(article(10 + i, "Ledger Tech", title, 100 + 30 * i, "A summary & more."), (), 1.0, ())
        for i, title in enumerate(
            [
                "Chipmaker unveils 2-nanometre processor",
                "Transit agencies publish open data for 40 cities",
                "Zürcher Café gewinnt Preis von 10.000 €",
            ]
        )
    )
    info = EditionInfo(
        "The Demo Desk",
        "Morning Briefing",
        "https://digest.example",
        "1 Example Street, London EC1A 1AA",
        "Europe/London",
        NOW,
        web_url="https://digest.example/editions/morning/20261128T0700Z",
        subscribe_url="https://digest.example/",
    )
    template = build_template(
        render_edition(info, RankedEdition((storm,), latest)),
        sender="The Demo Desk <digest@digest.example.org>",
        reply_to="editors@digest.example.org",
        list_name="Morning Briefing (The Demo Desk)",
        list_id="morning.digest.example",
        message_id_prefix="digest.7",
    )
    who = Recipient(
        3,
        "ada@example.org",
        "Ada Lovelace",
        "https://digest.example/unsubscribe/TOKEN.sig",
        "mailto:unsubscribe@digest.example.org?subject=unsubscribe%20TOKEN.sig",
        "https://digest.example/preferences/PREF.sig",
    )
    _, data = template.personalise(who, 42)
    return _normalise(data)


def _normalise(data: bytes) -> bytes:
    """Blank what changes from run to run: the Date header's time (not its +0000 zone) and
    the MIME boundary. The Message-ID stays: it is made from the delivery and the
    recipient's link, the same at every run."""
    data = re.sub(rb"(?m)^Date: \w{3}, \d\d \w{3} \d{4} [\d:]{8} ", b"Date: (normalised) ", data)
    boundary = re.search(rb'boundary="([^"]+)"', data)
    assert boundary
    return data.replace(boundary.group(1), b"BOUNDARY")


def test_the_whole_message_matches_its_golden_file() -> None:
    golden = GOLDEN / "morning-briefing.eml"
    actual = _message()
    if os.environ.get("DIGEST_UPDATE_GOLDEN"):
        golden.write_bytes(actual)
        pytest.skip("golden file rewritten; review the diff")
    assert golden.exists(), "no golden file yet: run with DIGEST_UPDATE_GOLDEN=1"
    expected = golden.read_bytes()
    if actual != expected:
        (GOLDEN.parent.parent / "artifacts").mkdir(exist_ok=True)
        (GOLDEN.parent.parent / "artifacts" / "morning-briefing.actual.eml").write_bytes(actual)
    assert actual == expected, "message differs from tests/golden/morning-briefing.eml"
