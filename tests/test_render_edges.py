"""Edges of rendering and personalisation: hostile feed text, odd addresses and names, long
lines, and the sizes and headers a mail client actually sees.

Every message is parsed back with the email package (``policy=default``), as a client would.
"""

from __future__ import annotations

import email
import email.policy
from email.message import EmailMessage

import pytest

from digest.records import ArticleRecord, RankedEdition, Recipient, RenderedEdition, Story
from digest.render import EditionInfo, build_template, render_edition
from digest.render.message import MessageTemplate
from tests.test_render import INFO, NOW, recipient, story


def _parse(data: bytes) -> EmailMessage:
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def _one(title: str, url: str = "https://w.test/1", summary: str = "s") -> RankedEdition:
    lead = ArticleRecord(1, "Wire", title, url, summary, NOW)
    return RankedEdition((Story(lead, (), 1.0, ()),), ())


def _build(rendered: RenderedEdition, list_name: str = "Daily Test") -> MessageTemplate:
    return build_template(
        rendered,
        sender="news@example.com",
        reply_to=None,
        list_name=list_name,
        list_id="daily.digest.test",
        message_id_prefix="digest.3",
    )


def _bodies(data: bytes) -> tuple[str, str]:
    """(plain text, HTML) of a message, decoded as a client decodes them."""
    message = _parse(data)
    text = message.get_body(("plain",))
    html = message.get_body(("html",))
    assert isinstance(text, EmailMessage) and isinstance(html, EmailMessage)
    return text.get_content().replace("\r\n", "\n"), html.get_content()


# --- the plain-text part ---------------------------------------------------------------------


def test_a_url_or_hyphenated_word_in_a_summary_stays_whole_in_the_text_part() -> None:
    link = "https://example.org/2026/11/28/harbour-strike-ends-after-six-weeks-of-talks?id=12345"
    summary = f"Details: {link} (live). The well-known-and-much-discussed plan stands."
    _, data = _build(render_edition(INFO, _one("T", summary=summary))).personalise(recipient(), 1)
    text, _ = _bodies(data)
    assert f"\n   {link}\n" in text  # alone on its line, whole, so clients link all of it
    assert "well-known-and-much-discussed" in text


# --- quoted-printable line length ------------------------------------------------------------


def _body_lines(data: bytes) -> list[bytes]:
    return data.split(b"\r\n\r\n", 1)[1].split(b"\r\n")


def test_every_body_line_is_at_most_76_characters_whatever_the_values_length() -> None:
    """RFC 2045 6.7 rule 5: a piece that ends on a full line gets no 77th column from the
    soft break that joins it to the next value."""
    template = _build(render_edition(INFO, _one("T", summary="Summary " * 40)))
    for size in range(0, 160, 3):
        who = Recipient(
            1,
            "zoe@example.org",
            "N" * size or None,
            "https://digest.test/unsubscribe/" + "u" * size,
            "mailto:u@example.org",
            "https://digest.test/preferences/" + "é" * (size // 3),
        )
        _, data = template.personalise(who, 1)
        long = [line for line in _body_lines(data) if len(line) > 76]
        assert not long, (size, long)
        text, html = _bodies(data)
        assert f"Unsubscribe: {who.unsubscribe_url}\n" in text
        assert f'href="{who.preferences_url}"' in html


# --- the Gmail clip guard --------------------------------------------------------------------


def _html_part_on_the_wire(data: bytes) -> bytes:
    return data.split(b"Content-Type: text/html")[1].split(b"\r\n\r\n", 1)[1].split(b"\r\n--")[0]


@pytest.mark.parametrize(
    ("locale", "title", "summary"),
    [
        ("fr", "Été {i} : À la une à Zürich, l'été s'achève", "Résumé détaillé à lire. " * 30),
        ("en", "第{i}号：港口罢工在谈判六周后结束", "详细摘要，内容很长。" * 40),
    ],
    ids=["french", "chinese"],
)
def test_the_clip_guard_keeps_the_html_part_as_sent_under_102_kb(
    locale: str, title: str, summary: str
) -> None:
    """Quoted-printable makes "=" three bytes and each non-ASCII byte three: the guard
    measures the part as it goes on the wire, not the decoded HTML."""
    info = EditionInfo(
        "Test Desk",
        "Daily Test",
        "https://digest.test",
        "1 Test Street",
        "UTC",
        NOW,
        web_url="https://digest.test/e/1",
        locale=locale,
    )
    stories = [story(i, title.format(i=i), summary) for i in range(200)]
    rendered = render_edition(info, RankedEdition(tuple(stories[:5]), tuple(stories[5:])))
    _, data = _build(rendered).personalise(recipient(), 1)
    wire = _html_part_on_the_wire(data)
    assert len(wire) <= 102 * 1024, (len(rendered.html.encode()), len(wire))
    assert len(wire) > 90_000  # trimmed to fit, not to a token amount
    _, html = _bodies(data)
    assert "https://digest.test/unsubscribe/tok.EN-_" in html  # the footer is there
