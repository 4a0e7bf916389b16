"""The email as a brief people read: a picture per story, a top that says what is inside,
a text part that lines up, headings in order, names and times as a reader expects them."""

from __future__ import annotations

import dataclasses
import email
import email.policy
import itertools
import math
import re
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from html.parser import HTMLParser

import jinja2
import pytest

from digest.records import ArticleRecord, RankedEdition, Recipient, Story
from digest.render import build_template, render_edition
from digest.render.edition import SUBJECT_LIMIT, WORDS_PER_MINUTE, reading_words
from digest.render.i18n import _STRINGS, Localizer
from digest.render.message import greeting
from digest.render.qp import encode
from digest.render.webview import WEB_FOOTER
from digest.resources import email_templates_dir
from tests.conftest import OpenApp
from tests.renders import edition_info

NOW = datetime(2026, 11, 28, 6, 5, tzinfo=UTC)
INFO = edition_info(
    service_name="The Desk",
    title="Morning Briefing",
    timezone="Europe/Paris",
    dated=NOW,
    web_url="https://digest.test/editions/morning/20261128T0600Z",
    subscribe_url="https://digest.test/",
)


def article(
    i: int,
    title: str,
    *,
    image: bool = True,
    alt: str | None = None,
    summary: str = "One sentence about it.",
    language: str | None = None,
    topic: str = "world",
) -> ArticleRecord:
    return ArticleRecord(
        i,
        "Wire",
        title,
        f"https://wire.test/{i}",
        summary,
        NOW - timedelta(minutes=i),
        topics=(topic,),
        image_url=f"https://img.wire.test/{i}.jpg?w=460&q=55" if image else None,
        image_alt=alt,
        language=language,
    )


def edition(*breaking: ArticleRecord, latest: tuple[ArticleRecord, ...] = ()) -> RankedEdition:
    def one(a: ArticleRecord) -> Story:
        return Story(a, (), 1.0, ())

    return RankedEdition(tuple(map(one, breaking)), tuple(map(one, latest)))


EDITION = edition(
    article(1, "Storm makes landfall", alt="Waves over the harbour wall"),
    article(2, "Ferries stop for the day", alt="Ferries stop for the day"),
    latest=(
        article(3, "Chipmaker unveils a processor", topic="technology"),
        article(4, "Transit data opens up", image=False),
        article(5, "Museum reopens its doors", alt="Museum reopens its doors"),
    ),
)


class Tags(HTMLParser):
    """Every start tag with its attributes, and the headings in document order."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def named(self, name: str) -> list[dict[str, str | None]]:
        return [attrs for tag, attrs in self.tags if tag == name]


def _parse(data: bytes) -> EmailMessage:
    message = email.message_from_bytes(data, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def _sent(ranked: RankedEdition, name: str | None = "Alice Moreau") -> tuple[str, str, str]:
    """(subject, text, HTML) of the message one reader receives."""
    template = build_template(
        render_edition(INFO, ranked),
        sender="The Desk <news@digest.test>",
        reply_to=None,
        list_name="Morning Briefing",
        list_id="morning.digest.test",
        message_id_prefix="digest.1",
    )
    who = Recipient(
        1, "alice@example.org", name, "https://u.test/x", "mailto:u@x.test", "https://p.test/y"
    )
    message = _parse(template.personalise(who, 1)[1])
    text, html = message.get_body(("plain",)), message.get_body(("html",))
    assert isinstance(text, EmailMessage) and isinstance(html, EmailMessage)
    return str(message["Subject"]), text.get_content().replace("\r\n", "\n"), html.get_content()


# --- a picture per story -----------------------------------------------------------------------


def test_every_story_with_an_image_shows_it_sized_and_linked_to_the_story() -> None:
    html = render_edition(INFO, EDITION).html
    tags = Tags(html)
    images = tags.named("img")
    stories = [s.lead for s in (*EDITION.breaking, *EDITION.latest)]
    assert [i["src"] for i in images] == [a.image_url for a in stories if a.image_url]
    # Numeric width and height as written (premailer once made them "100%" and "auto").
    assert [(i["width"], i.get("height")) for i in images] == [
        ("584", None),  # the lead, wide, above its headline: shape not stated, no height
        ("128", "72"),
        ("128", "72"),
        ("128", "72"),
    ]
    for a in stories:
        if a.image_url:  # the picture links to the story itself: no tracking, no proxy
            link = re.search(
                rf'<a [^>]*href="([^"]*)"[^>]*><img [^>]*src="{re.escape(a.image_url)}',
                html.replace("&amp;", "&"),
            )
            assert link and link.group(1) == a.url


def test_alt_text_never_repeats_the_headline_beside_it() -> None:
    images = Tags(render_edition(INFO, EDITION).html).named("img")
    # The lead's own description says more than its headline: kept. Thumbnails and an alt
    # that is the headline again are empty: a screen reader hears the headline once.
    assert [i["alt"] for i in images] == ["Waves over the harbour wall", "", "", ""]
    links = [
        a
        for a in Tags(render_edition(INFO, EDITION).html).named("a")
        if a.get("class") == "picture"
    ]
    assert [(a.get("aria-hidden"), a.get("tabindex")) for a in links] == [
        (None, None),  # named by its alt
        *[("true", "-1")] * 3,  # no name of its own: the headline's link beside it serves
    ]


def test_25_stories_with_images_fit_under_the_gmail_clip_untrimmed() -> None:
    """Headlines of 100 characters, 250-character summaries, two other sources each."""
    summary = ("A sentence of the summary as the email prints it, about one line long. " * 4)[:250]

    def story(i: int) -> Story:
        lead = article(i, f"Headline {i}: " + "words of a long headline " * 4, summary=summary)
        others = tuple(
            ArticleRecord(100 * i + k, f"Outlet {k}", lead.title, f"https://o{k}.test/{i}", "", NOW)
            for k in (1, 2)
        )
        return Story(lead, others, 1.0, ())

    stories = tuple(story(i) for i in range(1, 26))
    rendered = render_edition(INFO, RankedEdition(stories[:5], stories[5:]))
    assert rendered.html.count('class="story"') == 25  # nothing trimmed
    assert len(re.findall(r"<img\b", rendered.html)) == 25
    assert len(encode(rendered.html)) < 102 * 1024 - 2_000  # as sent, with room for the links


# --- the top ---------------------------------------------------------------------------------


def test_the_top_lists_the_breaking_headlines_the_reading_time_and_the_web_links() -> None:
    _, text, html = _sent(EDITION)
    top = html[: html.index('class="story"')]
    assert re.findall(r'<li[^>]*><a href="#(story-\d)"[^>]*>([^<]*)</a>', top) == [
        ("story-1", "Storm makes landfall"),
        ("story-2", "Ferries stop for the day"),
        ("story-3", "Chipmaker unveils a processor"),  # topped up to three from Latest
    ]
    assert 'id="story-1"' in html and 'id="story-5"' in html
    assert "And 2 more stories below." in top
    minutes = math.ceil(reading_words(EDITION) / WORDS_PER_MINUTE)
    assert f"{minutes} min read" in top
    first_link = re.search(r'<a [^>]*href="([^"]*)"[^>]*>([^<]*)</a>', html)
    assert first_link and first_link.groups() == (INFO.web_url, "View in browser")
    assert re.search(r'Forwarded this\? <a href="https://digest.test/"[^>]*>Subscribe</a>', top)
    head = text[: text.index("BREAKING")]
    assert f"View in browser: {INFO.web_url}\n" in head
    # The text part has no list: without links it would print the first headlines twice.
    assert "In this edition" not in text and text.count("Storm makes landfall") == 1
    assert "Forwarded this? Subscribe: https://digest.test/\n" in text


def test_an_edition_of_one_story_has_no_list_of_one() -> None:
    rendered = render_edition(INFO, edition(article(1, "Storm makes landfall")))
    assert "In this edition" not in rendered.html + rendered.text
    assert 'href="#story-' not in rendered.html


def test_without_a_web_app_there_is_no_view_or_subscribe_link() -> None:
    info = edition_info(dated=NOW)
    rendered = render_edition(info, EDITION)
    assert "View in browser" not in rendered.html + rendered.text
    assert "Forwarded this?" not in rendered.html + rendered.text


def test_the_preheader_says_what_else_is_inside_not_the_subject_again() -> None:
    subject, _, html = _sent(EDITION)
    hidden = re.search(r'<div style="display:none[^>]*>([^<]*)</div>', html)
    assert hidden
    preheader = hidden.group(1).rstrip("\u034f\u200c\u00a0 ")
    assert "Storm makes landfall" in subject and "Storm makes landfall" not in preheader
    assert preheader.startswith("Also: Ferries stop for the day · Chipmaker unveils a processor")
    assert preheader.endswith("5 stories, 1 min read")


@pytest.mark.parametrize(
    ("headline", "subject"),
    [
        ("Storm makes landfall", "Morning Briefing: Storm makes landfall"),
        (
            "Storm Isolde makes landfall, leaving 40,000 homes without power",
            "Morning Briefing: Storm Isolde makes landfall, leaving…",
        ),
        (
            "港口罢工在谈判六周后结束，工人将于周一复工，港务局称货运将在一周内恢复正常运转，" * 2,
            None,
        ),
    ],
    ids=["short", "cut at a word", "no spaces"],
)
def test_the_subject_is_at_most_60_characters_and_has_no_date(
    headline: str, subject: str | None
) -> None:
    actual = render_edition(INFO, edition(article(1, headline))).subject
    assert len(actual) <= SUBJECT_LIMIT
    assert "28" not in actual and "Sat" not in actual  # the inbox shows the date
    if subject:
        assert actual == subject
    else:
        assert actual.startswith("Morning Briefing: 港口罢工") and actual.endswith("…")


# --- the text part -----------------------------------------------------------------------------


def test_text_lines_fit_78_columns_and_hang_in_one_column_past_item_9() -> None:
    summary = "A summary that runs over more than one line of the text part, " * 3
    link = "https://other.test/" + "a-very-long-path-segment/" * 4 + "story.html"
    stories = [
        Story(
            article(
                i,
                f"Headline {i} that is long enough to wrap onto a second line of text " * 1,
                summary=summary,
            ),
            (ArticleRecord(900 + i, "Other Outlet", "t", link, "", NOW),),
            1.0,
            (),
        )
        for i in range(1, 13)
    ]
    _, text, _ = _sent(RankedEdition(tuple(stories[:2]), tuple(stories[2:])))
    lines = text.split("\n")
    long = [line for line in lines if len(line) > 78 and not re.fullmatch(r" *https?://\S+", line)]
    assert not long, long  # only a URL longer than a line may pass the margin, alone
    body = text[text.index("BREAKING") :]
    assert "\n 9. Headline 9 that is long enough to wrap onto a second line of text\n" in body
    assert "\n10. Headline 10 that is long enough to wrap onto a second line of text\n" in body
    item = body[body.index(" 1. Headline 1 ") :].split("\n\n")[0].split("\n")
    assert all(line.startswith("    ") and line[4] != " " for line in item[1:]), item
    assert f"\n    Also Other Outlet:\n    {link}\n" in body  # too long to share its label's line
    assert "\n    Wire · 07:05 CET · 2 sources\n" in body  # its newest article's time


def test_times_carry_their_zone_in_both_parts() -> None:
    _, text, html = _sent(EDITION)
    assert "Wire · 07:04 CET" in text and "Wire · 07:04 CET" in html
    info = edition_info(timezone="America/Sao_Paulo", dated=NOW)
    assert "Wire · 03:04 UTC-3" in render_edition(info, EDITION).text  # no letters: an offset


def test_a_time_names_its_day_only_when_it_is_not_the_editions() -> None:
    yesterday = ArticleRecord(
        9, "Wire", "Late vote", "https://wire.test/9", "", NOW - timedelta(hours=8)
    )
    ranked = edition(article(1, "Storm makes landfall"), latest=(yesterday,))
    _, text, html = _sent(ranked)
    assert "Saturday, November 28, 2026" in text  # the edition's day, at the top
    assert "Wire · 07:04 CET" in text and "Wire · Fri 23:05 CET" in text
    assert "Wire · 07:04 CET" in html and "Wire · Fri 23:05 CET" in html


# --- structure and accessibility ------------------------------------------------------------


def test_headings_go_h1_h2_h3_with_topic_groups_above_their_stories() -> None:
    html = render_edition(INFO, EDITION).html
    levels = [int(tag[1]) for tag, _ in Tags(html).tags if re.fullmatch(r"h[1-6]", tag)]
    assert levels[0] == 1
    assert all(b <= a + 1 for a, b in itertools.pairwise(levels)), levels
    latest = html[html.index(">Latest</h2>") :]
    assert latest.index('<h3 class="group"') < latest.index('<h4 class="headline"')
    assert re.search(r'<h3 class="group"[^>]*>Technology</h3>', latest)
    one_group = render_edition(INFO, edition(article(1, "A"), latest=(article(2, "B"),))).html
    assert "<h4" not in one_group  # no group headings: the stories are h3 under Latest


def test_a_story_in_another_language_says_so_and_one_in_the_edition_s_does_not() -> None:
    ranked = edition(
        article(1, "Storm makes landfall", language="en-GB"),
        latest=(article(2, "Reações dos partidos ao veto", language="pt-PT"),),
    )
    tags = Tags(render_edition(INFO, ranked).html)
    stories = [(a.get("id"), a.get("lang")) for a in tags.named("div") if a.get("class") == "story"]
    assert stories == [("story-1", None), ("story-2", "pt-PT")]


@pytest.mark.parametrize("locale", ["en", *sorted(_STRINGS)])
@pytest.mark.parametrize(
    ("name", "called"),
    [
        ("Alice Moreau", "Alice"),
        ("  Alice   Moreau ", "Alice"),
        ("Moreau, Alice", "Alice"),
        ("山田太郎", "山田太郎"),
        ("Alice", "Alice"),
        (" ", None),
        (None, None),
    ],
)
def test_the_greeting_uses_the_first_name_in_every_language(
    locale: str, name: str | None, called: str | None
) -> None:
    who = Recipient(1, "a@example.org", name, "https://u", "mailto:u@x", "https://p")
    loc = Localizer(locale)
    expected = loc.gettext("Hello {name},", name=called) if called else loc.gettext("Hello,")
    assert greeting(locale, who) == expected
    if called:
        assert called in expected and "Moreau" not in expected


def test_every_fixed_string_of_the_templates_is_translated_in_every_language() -> None:
    """A new string without its translations would show English in a French email."""
    env = jinja2.Environment()
    used: set[str] = set()
    for path in email_templates_dir().glob("*.j2"):
        source = path.read_text()
        used.update(re.findall(r'_\("((?:[^"\\]|\\.)*)"', source))
        for singular, plural in re.findall(r'ngettext\("([^"]*)", "([^"]*)"', source):
            used.update((singular, plural))
        env.parse(source)  # and the template is well formed
    for source_text in ("{n} story", "{n} stories", "{n} min read", "Also"):  # the preheader
        used.add(source_text)
    used.add("{n} sources")  # a story's line under its headline, written by render.edition
    used.add(WEB_FOOTER)  # the web view's footer, written by render.webview
    for language, strings in _STRINGS.items():
        assert not used - set(strings), (language, sorted(used - set(strings)))


# --- what a reader would not miss -------------------------------------------------------------


def test_a_summary_that_only_says_the_headline_again_is_left_out() -> None:
    ranked = edition(
        article(1, "Storm makes landfall in Florida", summary="Storm making landfall in Florida."),
        latest=(
            article(2, "Ferries stop for the day", summary="Ferries stopped, 3 routes closed."),
            article(3, "Polls close", summary="Polls closed at 8pm."),
        ),
    )
    _, text, html = _sent(ranked)
    assert "making landfall" not in text + html  # nothing the headline did not say
    assert "Ferries stopped, 3 routes closed." in text  # a word and a number of its own
    assert "Polls closed at 8pm." in text and "Polls closed at 8pm." in html  # a number
    assert reading_words(ranked) == 5 + (5 + 5) + (2 + 4)  # the words shown, no more


def test_a_source_is_named_once_above_the_stories_it_all_gave() -> None:
    def one(i: int, source: str, topic: str) -> Story:
        return Story(
            ArticleRecord(i, source, f"Story {i}", f"https://s.test/{i}", "", NOW, topics=(topic,)),
            (),
            1.0,
            (),
        )

    latest = (one(1, "Post", "world"), one(2, "Post", "world"), one(3, "Blog", "science"))
    by_source = edition_info(dated=NOW, latest_group_by="source")
    text = render_edition(by_source, RankedEdition((), latest)).text
    assert "\nPost\n----\n\n1. Story 1\n   06:05 UTC\n" in text  # not "Post · 06:05 UTC"
    assert "\nBlog\n----\n\n3. Story 3\n   Blog · 06:05 UTC\n" in text
    by_topic = dataclasses.replace(by_source, latest_group_by="topic")
    rendered = render_edition(by_topic, RankedEdition((), latest))
    assert "\nWorld · Post\n------------\n\n1. Story 1\n   06:05 UTC\n" in rendered.text
    assert "\nScience\n-------\n\n3. Story 3\n   Blog · 06:05 UTC\n" in rendered.text
    assert ">World · Post</h3>" in rendered.html and ">Science</h3>" in rendered.html
    assert rendered.html.count(">Post · ") == 0 and rendered.html.count(">Blog · ") == 1


def test_the_footer_does_not_repeat_the_tops_links() -> None:
    _, text, html = _sent(EDITION)
    web = INFO.web_url or ""
    assert web and html.count(f'href="{web}"') == 1 and text.count(web) == 1
    assert html.count("Forwarded this?") == 1 and text.count("Forwarded this?") == 1
    footer = html[html.index('class="footer"') :]
    assert "Unsubscribe" in footer and "Preferences" in footer and "1 Test Street" in footer


# --- Breaking in full, Latest in one short sentence ------------------------------------------

LONG_LEAD = (
    "The council voted on Tuesday evening to close the old harbour bridge to all traffic "
    "from March, after engineers found cracks in two of its piers during a routine "
    "inspection last month."
)
SECOND = "Repairs will take a year."


def test_breaking_keeps_its_summary_and_latest_shows_one_short_sentence() -> None:
    ranked = edition(
        article(1, "Harbour bridge to close", summary=LONG_LEAD),
        latest=(
            article(2, "Bridge closes in March", summary=LONG_LEAD),
            article(3, "Ferry timetable changes", summary=f"Ferries run hourly. {SECOND}"),
        ),
    )
    info = dataclasses.replace(INFO, latest_summary_chars=130)
    rendered = render_edition(info, ranked)
    # Breaking: the stored summary whole, as gather wrote it (gather.summary_chars).
    assert rendered.html.count(LONG_LEAD) == 1 and rendered.text.count("cracks in two") == 1
    # Latest: the same lead sentence, cut after a whole word within 130 characters, no
    # function word left hanging before the ellipsis ("cracks in…").
    shown = re.search(r'<p class="summary"[^>]*>(The council[^<]*…)</p>', rendered.html)
    assert shown, rendered.html
    cut = shown.group(1)
    assert len(cut) <= 130 and LONG_LEAD.startswith(cut[:-1])
    assert cut.endswith(" after engineers found cracks…")
    # A short lead sentence still takes the next one when both fit (sentences.THIN).
    assert f"Ferries run hourly. {SECOND}" in rendered.html
    # The reading time counts what is shown.
    assert reading_words(ranked, 130) < reading_words(ranked)


def test_latest_summary_chars_0_lists_latest_as_headlines() -> None:
    ranked = edition(
        article(1, "Harbour bridge to close", summary=LONG_LEAD),
        latest=(article(2, "Bridge closes in March", summary="Engineers found cracks."),),
    )
    rendered = render_edition(dataclasses.replace(INFO, latest_summary_chars=0), ranked)
    assert LONG_LEAD in rendered.html and "Bridge closes in March" in rendered.text
    assert "Engineers found cracks" not in rendered.html + rendered.text


def test_a_digests_latest_summary_chars_reaches_its_editions(open_app: OpenApp) -> None:
    from digest.editions import edition_info

    app = open_app([("Wire", "https://wire.test/feed")])
    digest = app.config.digests[0].model_copy(update={"latest_summary_chars": 0})
    assert edition_info(app, digest, NOW).latest_summary_chars == 0
