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
from email.header import decode_header, make_header
from email.message import EmailMessage
from pathlib import Path

import pytest

from digest.app import App
from digest.config import load_config
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
from digest.render import build_template, render_edition
from digest.render.message import HeaderInjection, MessageTemplate
from digest.subscribers import NewSubscriber, normalise_email, parse_csv
from tests.conftest import FeedServer, SmtpServer, rss, run_cli
from tests.renders import edition_info
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
        assert f"Unsubscribe:\n{who.unsubscribe_url}\n" in text
        assert f'href="{who.preferences_url}"' in html


def test_no_line_of_a_message_starts_with_a_dot_and_every_dot_reads_back() -> None:
    """A dot at a line's start would have to be doubled on the SMTP wire: the encoder
    writes it =2E (a wrap landing on a dot, a summary line starting with one, a value
    after its soft break), so the template's messages are marked dot-safe and the transport
    sends them as they are; a client reads every dot back."""
    summary = ".hidden starts the summary\n" + "Dot.dot." * 40 + "\n...ellipsis first"
    template = _build(render_edition(INFO, _one("T", summary=summary)))
    assert template.dot_safe
    for size in range(0, 90, 7):
        who = Recipient(
            1,
            "zoe@example.org",
            ("." + "N" * size) if size else None,
            "https://digest.test/unsubscribe/" + "." * size,
            "mailto:u@example.org",
            "https://digest.test/preferences/" + ".é" * (size // 3),
        )
        _, data = template.personalise(who, 1)
        dotted = [line for line in data.split(b"\r\n") if line.startswith(b".")]
        assert not dotted, (size, dotted)
        assert not [line for line in _body_lines(data) if len(line) > 76], size
        text, html = _bodies(data)
        assert "Dot.dot." * 40 in text.replace("\n", "")
        assert "...ellipsis first" in text
        assert f"Unsubscribe:\n{who.unsubscribe_url}\n" in text
        assert f'href="{who.preferences_url}"' in html


@pytest.mark.parametrize("text", [".", ".a", "a\n.b", "x" * 75 + ".y", "=" * 30 + "." * 60])
def test_quoted_printable_escapes_a_leading_dot_and_decodes_to_the_same_text(text: str) -> None:
    import binascii

    from digest.render import qp

    encoded = qp.encode(text)
    lines = encoded.split(b"\r\n")
    assert not [line for line in lines if line.startswith(b".")], encoded
    assert max(map(len, lines)) <= 76 and len(lines[-1]) <= 75, encoded
    assert binascii.a2b_qp(encoded.replace(b"\r\n", b"\n")).decode() == text


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
    info = edition_info(web_url="https://digest.test/e/1", locale=locale)
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
        "Hello Zoë,\nDIGEST-xUNSUBSCRIBExURL\nhttps://digest.test/unsubscribe/tok.EN-_\n"
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


# --- headers as a client reads them ----------------------------------------------------------


def _header_lines(data: bytes) -> list[bytes]:
    return data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")


def _rfc2047(data: bytes, name: str) -> str:
    """A header's value unfolded and decoded as RFC 2047 says."""
    raw = email.message_from_bytes(data, policy=email.policy.compat32)[name]
    return str(make_header(decode_header(re.sub(r"\r\n(?=[ \t])", "", raw))))


@pytest.mark.parametrize(
    "name",
    [
        "山" * 100,
        "山" * 300,  # a CSV import from before names had a limit
        "N" * 300,  # one ASCII word too long to fold
        'Zoë Ça, the "Reader" (of news)',
        "=?utf-8?q?Admin?= Team",
        " ".join(["Ada Lovelace"] * 20),
    ],
    ids=["100 CJK", "300 CJK", "300 ASCII", "specials", "encoded-word shape", "many words"],
)
def test_a_name_of_any_length_is_folded_and_reads_back_exactly(name: str) -> None:
    _, data = _build(render_edition(INFO, _one("T"))).personalise(recipient(name), 1)
    long = [line for line in _header_lines(data) if len(line) > 78]
    assert not long, long
    to = _parse(data)["To"]
    assert not to.defects, to.defects
    (address,) = to.addresses
    assert address.addr_spec == "zoe@example.org"
    # Python's address parser keeps the folding space between two encoded words, which
    # RFC 2047 6.2 says a client drops; decode_header does drop it, and reads the name back.
    assert address.display_name.replace(" ", "") == name.replace(" ", "")
    assert _rfc2047(data, "To") == f"{name} <zoe@example.org>"


def test_list_id_with_a_non_ascii_name_keeps_its_id_readable() -> None:
    _, data = _build(render_edition(INFO, _one("T")), "Café Digest").personalise(recipient(), 1)
    (line,) = [line for line in _header_lines(data) if line.startswith(b"List-Id:")]
    assert line.endswith(b" <daily.digest.test>"), line
    assert _parse(data)["List-Id"] == "Café Digest <daily.digest.test>"


@pytest.mark.parametrize(
    "headline",
    ["=?utf-8?q?Your_account_is_suspended?=", "=?UTF-8?B?WW91ciBhY2NvdW50?= locked"],
)
def test_a_headline_shaped_like_an_encoded_word_is_shown_as_written(headline: str) -> None:
    rendered = render_edition(INFO, _one(headline))
    _, data = _build(rendered).personalise(recipient(), 1)
    assert headline in rendered.subject
    assert _parse(data)["Subject"] == rendered.subject


# --- addresses that need SMTPUTF8 ------------------------------------------------------------


def test_an_internationalised_domain_is_kept_in_ascii_and_a_non_ascii_local_part_refused() -> None:
    assert normalise_email(" Ada@Bücher.Example ") == "ada@xn--bcher-kva.example"
    assert normalise_email("ada@xn--bcher-kva.example") == "ada@xn--bcher-kva.example"
    with pytest.raises(ValueError, match=r"before the @ has non-ASCII characters.*SMTPUTF8"):
        normalise_email("zoë@example.org")
    good, problems = parse_csv("email,name\nzoë@example.org,Zoë\nada@bücher.example,Ada\n")
    assert good == [NewSubscriber("ada@xn--bcher-kva.example", "Ada")]
    assert [(line, "SMTPUTF8" in why) for line, why in problems] == [(2, True)]


def test_a_name_over_200_characters_is_refused_at_import() -> None:
    good, problems = parse_csv(
        f"email,name\na@example.org,{'山' * 201}\nb@example.org,{'b' * 200}\n"
    )
    assert good == [NewSubscriber("b@example.org", "b" * 200)]
    assert problems == [
        (2, f"the name {'山' * 30!r}... is 201 characters long; a name may have at most 200")
    ]


@pytest.mark.parametrize("name", [None, "Zoë"])
def test_a_non_ascii_address_already_stored_fails_its_own_row_with_the_reason(
    name: str | None,
) -> None:
    """Rows stored before the input rule: the To header and the SMTP envelope could not
    carry them, so building the message refuses them with what dispatch fails a row on."""
    template = _build(render_edition(INFO, _one("T")))
    who = Recipient(1, "zoë@bücher.example", name, "https://d/u", "mailto:u@x", "https://d/p")
    for build in (lambda: template.personalise(who, 1), lambda: template.fields(who)):
        with pytest.raises(HeaderInjection, match=r"not an ASCII address.*SMTPUTF8"):
            build()


def test_one_non_ascii_address_does_not_stop_the_send_for_everyone(
    write_config: Callable[..., Path], feed_server: FeedServer, smtp_server: SmtpServer
) -> None:
    url = feed_server.add("/f.xml", rss([{"title": "T", "guid": "1", "link": "https://w.test/1"}]))
    config = write_config([("Wire", url)], transport="smtp", smtp_port=smtp_server.port)
    app = App.open(load_config(config))
    try:  # as a row stored before addresses had to be ASCII
        app.store.add_subscriber("ada@bücher.example", "Ada")
        app.store.add_subscriber("ana@example.org", "Ana")
    finally:
        app.close()
    code, out, err = run_cli("--config", str(config), "send", "--gather")
    assert [m.recipients for m in smtp_server.messages] == [["ana@example.org"]]
    assert "'ada@bücher.example' is not an ASCII address" in err, (code, out, err)
    _, status, _ = run_cli("--config", str(config), "status", "--json")
    assert json.loads(status)["editions"][0]["deliveries"] == {"sent": 1, "failed": 1}
