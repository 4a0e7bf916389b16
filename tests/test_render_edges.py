"""Edges of rendering and personalisation: hostile feed text, odd addresses and names, long
lines, and the sizes and headers a mail client actually sees.

Every message is parsed back with the email package (``policy=default``), as a client would.
"""

from __future__ import annotations

import email
import email.policy
import html as html_lib
import json
import mailbox
import re
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path

import pytest

from digest.deliver.providers import mailgun, ses
from digest.deliver.providers._http import ApiClient
from digest.records import (
    ArticleRecord,
    MessageFields,
    OutgoingMessage,
    RankedEdition,
    Recipient,
    RenderedEdition,
    Story,
)
from digest.render import EditionInfo, build_template, render_edition
from digest.render.message import MessageTemplate
from tests.conftest import FeedServer, rss, run_cli
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


# --- tokens a feed cannot forge --------------------------------------------------------------

EVIL_LINK = "https://evil.test/claim?u=DIGESTxUNSUBSCRIBExURL&p=DIGESTxHxPREFERENCESxURL"
EVIL_TITLE = "Prize for DIGESTxGREETING"


def _maildir(tmp_path: Path) -> list[EmailMessage]:
    box = mailbox.Maildir(str(tmp_path / "mail"), create=False)
    return [_parse(box.get_bytes(key)) for key in sorted(box.iterkeys())]


def test_a_feed_spelling_a_token_gets_no_readers_link_now_or_when_the_edition_is_resent(
    write_config: Callable[..., Path], feed_server: FeedServer, tmp_path: Path
) -> None:
    """The stored edition is personalised again by a later send (here for readers who joined
    since) and re-rendered for another language: no path splices a feed's text."""
    url = feed_server.add("/f.xml", rss([{"title": EVIL_TITLE, "guid": "1", "link": EVIL_LINK}]))
    config = str(write_config([("Wire", url)]))

    def cli(*args: str) -> str:
        code, out, err = run_cli("--config", config, *args)
        assert code == 0, (args, out, err)
        return out

    cli("subscribers", "add", "ana@example.org", "--name", "Ana")
    cli("send", "--gather")
    cli("subscribers", "add", "bob@example.org")
    cli("subscribers", "add", "cy@example.org", "--locale", "fr")
    assert "2 sent" in cli("send")  # the stored edition, to the two who joined since
    assert len(json.loads(cli("status", "--json"))["editions"]) == 1

    sent = {str(m["To"]): m for m in _maildir(tmp_path)}
    assert sorted(sent) == ["Ana <ana@example.org>", "bob@example.org", "cy@example.org"]
    for message in sent.values():
        text, html = _bodies(message.as_bytes())
        unsubscribe = message["List-Unsubscribe"].split("<")[1].split(">")[0]
        assert f'href="{html_lib.escape(unsubscribe)}"' in html  # the real footer link works
        assert "https://evil.test/claim?u=DIGEST-xUNSUBSCRIBExURL&amp;p=DIGEST-xHx" in html
        assert "Prize for DIGEST-xGREETING" in text and "Prize for DIGEST-xGREETING" in html
        assert "digest.test/unsubscribe" not in html.split("evil.test")[1].split('"')[0]
        assert "Hello" not in message["Subject"]


def test_a_token_split_across_two_fields_is_defused_too(tmp_path: Path) -> None:
    (tmp_path / "digest.txt.j2").write_text(
        "{{ greeting }}\n{% for s in breaking %}{{ s.lead.source }}{{ s.lead.title }}\n{% endfor %}"
        "{{ unsubscribe_url }}\n"
    )
    lead = ArticleRecord(1, "DIGESTx", "UNSUBSCRIBExURL", "https://w.test/1", "", NOW)
    edition = RankedEdition((Story(lead, (), 1.0, ()),), ())
    rendered = render_edition(INFO, edition, override_dir=tmp_path)
    _, data = _build(rendered).personalise(recipient(), 1)
    text, _ = _bodies(data)
    assert text == (
        "Hello Zoë Ça,\nDIGEST-xUNSUBSCRIBExURL\nhttps://digest.test/unsubscribe/tok.EN-_\n"
    )


def test_a_name_spelling_a_token_is_a_name_not_a_link() -> None:
    template = _build(render_edition(INFO, _one("T")))
    who = recipient("DIGESTxUNSUBSCRIBExURL")
    text, html = _bodies(template.personalise(who, 1)[1])
    fields = template.fields(who)
    assert "Hello DIGEST-xUNSUBSCRIBExURL," in text and "Hello DIGEST-xUNSUBSCRIBExURL," in html
    assert "Hello DIGEST-xUNSUBSCRIBExURL," in fields.render(fields.text)
    assert "Hello DIGEST-xUNSUBSCRIBExURL," in fields.render(fields.html)


def _api_pairs(title: str, link: str) -> list[tuple[OutgoingMessage, MessageFields]]:
    template = _build(render_edition(INFO, _one(title, link)))
    fields = template.fields(recipient())
    message = OutgoingMessage(1, template.sender, "zoe@example.org", "<m@x>", b"", fields)
    return [(message, fields)]


def test_mailgun_is_handed_no_variable_a_feed_wrote() -> None:
    """Mailgun fills %recipient.NAME% anywhere, the subject included."""
    pairs = _api_pairs(
        "Win %recipient.list_unsubscribe% now",
        "https://evil.test/?a=%recipient.list_unsubscribe%&b=%RECIPIENT.id%&c=%unsubscribe_url%",
    )
    form = dict(mailgun._form(pairs))
    ours = {f"%recipient.{token}%" for token in pairs[0][1].values}
    for name in ("subject", "text", "html"):
        found = set(re.findall(r"%recipient[^%]*%|%[a-z_]*unsubscribe_url%", form[name], re.I))
        assert found <= ours, (name, found - ours)
    assert (
        "https://evil.test/?a=%25recipient.list_unsubscribe%&amp;b=%25RECIPIENT.id%" in form["html"]
    )


def test_ses_is_handed_no_handlebars_a_feed_wrote() -> None:
    """SES renders subject and bodies as Handlebars: "{{#each this}}" would print every value."""
    pairs = _api_pairs(
        "{{#each this}}{{this}}{{/each}}", "https://evil.test/?u={{{DIGESTxUNSUBSCRIBExURL}}}"
    )
    sender = ses.SesSender(ApiClient("ses", "https://email.test", "AWS_KEYS"))
    content = sender.request(pairs)["DefaultContent"]["Template"]["TemplateContent"]
    ours = {"{{{" + token + "}}}" for token in pairs[0][1].values}
    for name in ("Subject", "Text", "Html"):
        found = set(re.findall(r"\{\{+[^{}]*\}*", content[name]))
        assert found <= ours, (name, found - ours)
