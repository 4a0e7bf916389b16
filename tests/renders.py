"""What the render tests share: an edition's info with defaults, a count of renders, and
what a send left in the maildir."""

from __future__ import annotations

import mailbox
from dataclasses import replace
from datetime import UTC, datetime
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest

from digest.records import RankedEdition, RenderedEdition
from digest.render import EditionInfo
from digest.render import edition as edition_module
from tests.conftest import run_cli

NOW = datetime(2026, 11, 28, 7, 0, tzinfo=UTC)


def edition_info(**changes: Any) -> EditionInfo:
    """A test edition's info: "Daily Test" of "Test Desk" at https://digest.test, 1 Test
    Street, in UTC, dated ``NOW``, no web view; ``changes`` by field name."""
    desk = EditionInfo(
        "Test Desk", "Daily Test", "https://digest.test", "1 Test Street", "UTC", NOW
    )
    return replace(desk, **changes)


def count_renders(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Each render of an edition from now on, as "time zone/locale", in order: the edition's
    own (``editions.build``) and its segments' (``editions.segments``)."""
    renders: list[str] = []
    real = edition_module.render_edition

    def counting(
        info: EditionInfo, ranked: RankedEdition, override_dir: Path | None = None
    ) -> RenderedEdition:
        renders.append(f"{info.timezone}/{info.locale}")
        return real(info, ranked, override_dir)

    monkeypatch.setattr("digest.editions.build.render_edition", counting)
    monkeypatch.setattr("digest.editions.segments.render_edition", counting)
    return renders


def send_counting_renders(
    config: Path, monkeypatch: pytest.MonkeyPatch, *subscribers: list[str]
) -> tuple[list[str], str]:
    """Add each subscriber (``subscribers add``'s arguments), then ``send --gather``: the
    renders it made (``count_renders``) and what it wrote to stderr."""
    for args in subscribers:
        assert run_cli("--config", str(config), "subscribers", "add", *args)[0] == 0
    renders = count_renders(monkeypatch)
    code, _, err = run_cli("--config", str(config), "send", "--gather")
    assert code == 0, err
    return renders, err


def mailed(folder: Path) -> dict[str, EmailMessage]:
    """Each message the maildir transport left in ``folder``/mail, by its recipient's
    address (one message each)."""
    box = mailbox.Maildir(str(folder / "mail"), create=False)
    messages: dict[str, EmailMessage] = {}
    for key in box.iterkeys():
        message = BytesParser(policy=policy.default).parsebytes(box.get_bytes(key))
        assert isinstance(message, EmailMessage)
        messages[message["To"].addresses[0].addr_spec] = message
    return messages


def plain_text(message: EmailMessage) -> str:
    """The message's text/plain body."""
    body = message.get_body(("plain",))
    assert body is not None
    return str(body.get_content())
