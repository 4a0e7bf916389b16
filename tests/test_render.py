"""Render once per edition, personalise per recipient by substitution, escape everything."""

from __future__ import annotations

import email
import email.policy
import re
from pathlib import Path

import jinja2
import pytest

from digest.errors import TemplateError
from digest.records import ArticleRecord, RankedEdition, Recipient, Story
from digest.render import MessageTemplate, build_template, render_edition
from tests.renders import NOW, edition_info

INFO = edition_info(timezone="Europe/Paris")


def story(i: int, title: str, summary: str = "A summary.", source: str = "Wire") -> Story:
    lead = ArticleRecord(i, source, title, f"https://wire.test/{i}", summary, NOW)
    other = ArticleRecord(i + 100, "Post", title, f"https://post.test/{i}", "", NOW)
    return Story(lead, (other,), 1.0, ())


EDITION = RankedEdition(
    breaking=(story(1, "Tom & Jerry <b>sign</b> a treaty", 'Cats "and" mice <agree>.'),),
    latest=(story(2, "Café opens in Zürich", "Prices in €."),),
)


def recipient(name: str | None = "Zoë Ça") -> Recipient:
    return Recipient(
        7,
        "zoe@example.org",
        name,
        "https://digest.test/unsubscribe/tok.EN-_",
        "mailto:unsubscribe@example.com?subject=unsubscribe%20tok.EN-_",
        "https://digest.test/preferences/pref.TOK",
    )


def test_text_from_feeds_is_escaped_in_html_and_kept_in_text() -> None:
    rendered = render_edition(INFO, EDITION)
    assert "Tom &amp; Jerry &lt;b&gt;sign&lt;/b&gt; a treaty" in rendered.html
    assert "<b>sign" not in rendered.html
    assert "Tom & Jerry <b>sign</b> a treaty" in rendered.text
    assert rendered.subject == "Daily Test: Tom & Jerry <b>sign</b> a treaty"  # no date


def test_css_is_inlined_once_and_only_media_queries_stay_in_a_style_block() -> None:
    html = render_edition(INFO, EDITION).html
    assert re.search(r'<h1 style="[^"]*font-size:28px', html)
    styles = re.findall(r"<style[^>]*>(.*?)</style>", html, re.S)
    assert styles and all("@media" in s for s in styles)
    assert "<link" not in html


def test_sections_sources_and_local_times_are_shown() -> None:
    rendered = render_edition(INFO, EDITION)
    text = rendered.text
    body = text[text.index("BREAKING") :]  # below the top's list of headlines
    assert body.index("1. Tom & Jerry") < body.index("LATEST") < body.index("2. Café opens")
    # 07:00 UTC is 08:00 in Paris; the edition's own day is at its top, not on each story.
    assert "Wire · 08:00 CET · 2 sources" in text
    assert "Also Post: https://post.test/1" in text
    assert 'href="https://post.test/1"' in rendered.html


def _template(sender: str = "news@example.com", reply_to: str | None = None) -> MessageTemplate:
    """The edition's message template, as the dispatcher builds it once per edition."""
    return build_template(
        render_edition(INFO, EDITION),
        sender=sender,
        reply_to=reply_to,
        list_name="Daily Test",
        list_id="daily.digest.test",
        message_id_prefix="digest.3",
    )


def _personalised(name: str | None = "Zoë Ça") -> tuple[str, bytes]:
    template = _template(sender="Test Desk <news@example.com>")
    return template.personalise(recipient(name), 42)


def test_personalised_bytes_are_a_valid_mime_message() -> None:
    message_id, data = _personalised()
    # Edition and delivery readable, then a random part (tests/test_signing.py pins it).
    assert re.fullmatch(r"<digest\.3\.42\.[A-Za-z0-9_-]{22}@example\.com>", message_id)
    assert b"\n" not in data.replace(b"\r\n", b"")  # CRLF only
    assert data.isascii()  # 7-bit clean: quoted-printable bodies, RFC 2047 headers
    head, body = data.split(b"\r\n\r\n", 1)
    assert max(len(line) for line in head.split(b"\r\n")) <= 78  # RFC 5322 2.1.1
    assert max(len(line) for line in body.split(b"\r\n")) <= 76  # RFC 2045 6.7
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert message["To"] == "Zoë Ça <zoe@example.org>"
    assert message["Message-ID"] == message_id
    assert message["Subject"] == "Daily Test: Tom & Jerry <b>sign</b> a treaty"
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert "Unsubscribe:\nhttps://digest.test/unsubscribe/tok.EN-_\n" in text.replace("\r\n", "\n")
    assert 'href="https://digest.test/unsubscribe/tok.EN-_"' in html
    assert 'href="https://digest.test/preferences/pref.TOK"' in html
    assert "Café opens in Zürich" in text and "Prices in €." in html
    assert "\nHello Zoë,\n" in text.replace("\r\n", "\n")  # the personal greeting
    assert ">Hello Zoë,</p>" in html
    assert "DIGESTx" not in text + html


def test_recipients_share_everything_but_their_own_headers_and_links() -> None:
    template = _template(reply_to="ed@example.com")
    other = Recipient(
        8,
        "bob@example.org",
        None,
        "https://digest.test/unsubscribe/BOB",
        "mailto:u@example.com",
        "https://digest.test/preferences/BOB",
    )
    _, zoe_bytes = template.personalise(recipient(), 1)
    _, bob_bytes = template.personalise(other, 2)
    zoe = email.message_from_bytes(zoe_bytes, policy=email.policy.default)
    bob = email.message_from_bytes(bob_bytes, policy=email.policy.default)
    assert bob["To"] == "bob@example.org" and bob["Reply-To"] == "ed@example.com"
    assert "BOB" in bob["List-Unsubscribe"] and "tok.EN-_" not in bob_bytes.decode()
    assert zoe["Subject"] == bob["Subject"]


def test_no_template_is_rendered_per_recipient(monkeypatch: pytest.MonkeyPatch) -> None:
    template = _template()

    def forbidden(*args: object, **kwargs: object) -> str:
        raise AssertionError("a template was rendered per recipient")

    monkeypatch.setattr(jinja2.Template, "render", forbidden)
    monkeypatch.setattr("premailer.Premailer.transform", forbidden)
    for i in range(3):
        assert template.personalise(recipient(), i)[1]


def test_a_broken_override_template_names_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "digest.html.j2").write_text("<p>\n{% if breaking %}\n<p>no endif\n")
    with pytest.raises(TemplateError) as caught:
        render_edition(INFO, EDITION, override_dir=tmp_path)
    assert f"{tmp_path / 'digest.html.j2'}:" in caught.value.message
    assert "syntax error" in caught.value.message


def test_an_unknown_variable_in_an_override_is_an_error_not_a_blank(tmp_path: Path) -> None:
    (tmp_path / "digest.txt.j2").write_text("line one\n{{ no_such_value }}\n")
    with pytest.raises(TemplateError) as caught:
        render_edition(INFO, EDITION, override_dir=tmp_path)
    assert "digest.txt.j2:2" in caught.value.message
    assert caught.value.hint.startswith("fix the template")  # the admin's own file


def test_digest_s_own_template_failing_says_restart_not_fix(monkeypatch) -> None:
    """Code and built-in templates of two versions (an upgrade under a running daemon):
    the built-in file is not the admin's to fix."""
    from digest.render import templates

    real = templates.render

    def older_code(template: jinja2.Template, **context: object) -> str:
        context.pop("label", None)  # as code from before the templates used label()
        template.globals.pop("label", None)
        return real(template, **context)

    monkeypatch.setattr(templates, "render", older_code)
    with pytest.raises(TemplateError) as caught:
        render_edition(INFO, EDITION)
    assert "digest's own template" in caught.value.hint and "restart" in caught.value.hint


def test_long_personal_values_keep_lines_short_and_decode_exactly() -> None:
    template = _template()
    long_url = "https://digest.test/unsubscribe/" + "x" * 150 + '=&<>"é'
    who = Recipient(
        9,
        "long@example.org",
        "Long",
        long_url,
        "mailto:u@example.com",
        "https://digest.test/preferences/p",
    )
    _, data = template.personalise(who, 1)
    head, body = data.split(b"\r\n\r\n", 1)
    assert max(len(line) for line in head.split(b"\r\n")) <= 78  # RFC 5322 2.1.1
    assert max(len(line) for line in body.split(b"\r\n")) <= 76  # RFC 2045 6.7
    message = email.message_from_bytes(data, policy=email.policy.default)
    text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert f"Unsubscribe:\n{long_url}\n" in text.replace("\r\n", "\n")
    assert 'href="https://digest.test/unsubscribe/' + "x" * 150 + '=&amp;&lt;&gt;&quot;é"' in html


def _long_edition(n: int) -> RankedEdition:
    stories = [
        story(i, f"Headline {i}: " + "a long and winding headline " * 3, "Summary text. " * 40)
        for i in range(n)
    ]
    return RankedEdition(tuple(stories[:5]), tuple(stories[5:]))


def test_size_guard_keeps_html_under_the_gmail_clip_for_200_long_items() -> None:
    info = edition_info(web_url="https://digest.test/editions/daily/20261128T0700Z")
    rendered = render_edition(info, _long_edition(200))
    size = len(rendered.html.encode())
    assert size <= 100_000
    kept = rendered.html.count('class="story"')
    assert 5 < kept < 200  # trimmed, but every breaking story and some latest ones stay
    assert size > 80_000  # the guard keeps as much as fits, not a token amount
    assert f"{200 - kept} more stories did not fit in this email." in rendered.html
    assert 'href="https://digest.test/editions/daily/20261128T0700Z"' in rendered.html
    assert "Headline 0:" in rendered.html and "Headline 199:" not in rendered.html
    assert f"{200 - kept} more stories did not fit" in rendered.text
    assert "The whole edition: https://digest.test/editions/daily/20261128T0700Z" in rendered.text
    # The footer, with its unsubscribe link, survives the trim.
    assert "Unsubscribe" in rendered.html


def test_a_small_edition_is_not_trimmed() -> None:
    rendered = render_edition(INFO, _long_edition(10))
    assert rendered.html.count('class="story"') == 10
    assert "did not fit" not in rendered.html


def test_html_is_strictly_valid_and_safe_for_mail_clients() -> None:
    import html5lib

    lead = ArticleRecord(
        1,
        "Wire",
        "A <b>bold</b> headline",
        "https://wire.test/1",
        "Summary.",
        NOW,
        image_url="https://wire.test/1.jpg",
        image_alt="",
    )
    edition = RankedEdition((Story(lead, (), 1.0, ()), story(2, "Two")), (story(3, "Three"),))
    info = edition_info(web_url="https://digest.test/editions/daily/x")
    rendered = render_edition(info, edition)
    _, data = build_template(
        rendered,
        sender="news@example.com",
        reply_to=None,
        list_name="Daily Test",
        list_id="daily.digest.test",
        message_id_prefix="digest.3",
    ).personalise(recipient(), 1)
    body = email.message_from_bytes(data, policy=email.policy.default).get_body(("html",))
    assert body is not None
    html = body.get_content()
    html5lib.HTMLParser(strict=True).parse(html)  # raises on any parse error
    assert '<html lang="en"' in html and 'role="presentation"' in html
    assert "<!--[if mso]>" in html  # Outlook gets a fixed-width table
    assert 'name="color-scheme"' in html
    images = re.findall(r"<img\b[^>]*>", html)
    assert images and all(re.search(r'\balt="[^"]*"', img) for img in images), images
    links = re.findall(r'href="([^"]*)"', html)
    assert links and all(link.startswith(("https://", "mailto:", "#story-")) for link in links)
    for anchor in {link[1:] for link in links if link.startswith("#")}:
        assert f'id="{anchor}"' in html  # the top's list links to stories that are there
    assert "<script" not in html.lower()
    assert not re.search(r"\son[a-z]+\s*=", html, re.I)
    styles = re.findall(r"<style[^>]*>(.*?)</style>", html, re.S)
    assert all(len(s.encode()) <= 16_000 for s in styles)


def test_latest_is_grouped_by_topic_in_rank_order() -> None:
    def item(i: int, topic: str) -> Story:
        lead = ArticleRecord(
            i, "Wire", f"Story {i}", f"https://wire.test/{i}", "", NOW, topics=(topic,)
        )
        return Story(lead, (), 1.0, ())

    edition = RankedEdition(
        (story(1, "Lead story"),), (item(2, "world"), item(3, "science"), item(4, "world"))
    )
    rendered = render_edition(INFO, edition)
    text = rendered.text[rendered.text.index("LATEST") :]
    # Both World stories come from Wire: the heading says so once, their lines do not.
    world = "World · Wire\n------------"
    assert text.index(world) < text.index("2. Story 2") < text.index("3. Story 4")
    assert text.index("3. Story 4") < text.index("Science\n-------") < text.index("4. Story 3")
    assert rendered.html.index(">World · Wire</h3>") < rendered.html.index(">Science</h3>")
    assert "2. Story 2\n   08:00 CET\n" in text and "4. Story 3\n   Wire · 08:00 CET\n" in text
