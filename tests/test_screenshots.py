"""What a person sees: the email in headless Chromium at 640 and 375 px, light and dark,
with images shown and with images blocked.

Checks that nothing overflows sideways, that every piece of text is legible (WCAG AA
contrast against the background it actually sits on), that every story whose source gave a
picture shows it at the size its numeric width and height say, that blocking images moves
nothing, and that every link is a tap target of at least 14px. The PNGs are written to
``$DIGEST_ARTIFACTS/screenshots`` (default ``artifacts/screenshots``) for a person to look at.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from digest.records import ArticleRecord, RankedEdition, Recipient, Story
from digest.render import EditionInfo, render_edition, substitute
from tests.browser import launch, sync_api
from tests.conftest import ROOT

pytestmark = pytest.mark.slow  # drives Chromium through Playwright

NOW = datetime(2026, 11, 28, 7, 0, tzinfo=UTC)
ARTIFACTS = Path(os.environ.get("DIGEST_ARTIFACTS", ROOT / "artifacts")) / "screenshots"

# Text colour against its effective background, as WCAG computes it; returns the worst offenders.
CONTRAST_JS = """() => {
  const lum = ([r, g, b]) => {
    const c = [r, g, b].map(v => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4;
    });
    return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
  };
  const rgba = s => (s.match(/[\\d.]+/g) || []).map(Number);
  const background = el => {
    for (let e = el; e; e = e.parentElement) {
      const c = rgba(getComputedStyle(e).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] > 0)) return c.slice(0, 3);
    }
    return [255, 255, 255];
  };
  const out = [];
  for (const el of document.body.querySelectorAll('*')) {
    const own = [...el.childNodes].filter(n => n.nodeType === 3 && n.textContent.trim()).length;
    const style = getComputedStyle(el);
    if (!own || style.display === 'none' || el.offsetParent === null) continue;
    const a = lum(rgba(style.color).slice(0, 3)), b = lum(background(el));
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    out.push({text: el.textContent.trim().slice(0, 40), ratio: Math.round(ratio * 100) / 100});
  }
  return out;
}"""


def _stories(lead_size: tuple[int, int] | None = (1168, 656)) -> RankedEdition:
    """The edition on screen; ``lead_size``: the lead picture's size as its source states
    it (None: not stated)."""

    def story(
        i: int, title: str, summary: str, source: str, image: bool = True, **more: object
    ) -> Story:
        lead = ArticleRecord(
            i,
            source,
            title,
            f"https://news.example/{i}",
            summary,
            NOW - timedelta(minutes=10 * i),
            image_url=f"https://images.example/{i}.jpg" if image else None,
            **more,  # type: ignore[arg-type]
        )
        other = ArticleRecord(
            i + 100, "Second Outlet", title, f"https://other.example/{i}", "", NOW
        )
        return Story(lead, (other,), 1.0, ())

    long_word = "Supercalifragilisticexpialidocious-and-a-very-long-unbroken-headline-word"
    return RankedEdition(
        (
            story(
                1,
                "Storm makes landfall, leaving 40,000 homes without power",
                "Utility crews said power would return within two days. " * 3,
                "Harbour Wire",
                image_alt="Waves breaking over the harbour wall",
                image_width=lead_size and lead_size[0],
                image_height=lead_size and lead_size[1],
            ),
            story(2, f"Headline with {long_word}", "Summary.", "Metro Gazette"),
        ),
        tuple(
            story(
                i,
                f"Latest story number {i} about the day's events",
                "A short summary of what happened, in a sentence or two.",
                "Pacific Report",
                image=i != 5,  # one story without a picture: its row has no empty cell
                topics=("science" if i % 2 else "world",),
                language="pt-BR" if i == 4 else None,
            )
            for i in range(3, 9)
        ),
    )


def _html(ranked: RankedEdition | None = None) -> str:
    info = EditionInfo(
        "The Demo Desk",
        "Morning Briefing",
        "https://digest.example",
        "1 Example Street, London",
        "Europe/London",
        NOW,
        web_url="https://digest.example/editions/morning/x",
        subscribe_url="https://digest.example/",
    )
    rendered = render_edition(info, ranked or _stories())
    who = Recipient(
        1,
        "ada@example.org",
        "Ada Lovelace",
        "https://digest.example/unsubscribe/t",
        "mailto:u@example.org",
        "https://digest.example/preferences/t",
    )
    return substitute(rendered.html, who, is_html=True)


# A picture of the lead's shape (584x328, as its source states it), at twice its size, as a
# source's image arrives; served for every image request.
PICTURE = (
    b'<svg xmlns="http://www.w3.org/2000/svg" width="1168" height="656">'
    b'<defs><linearGradient id="g" x1="0" y1="0" x2="1" y2="1">'
    b'<stop offset="0" stop-color="#3b6e99"/><stop offset="1" stop-color="#d4a86a"/>'
    b'</linearGradient></defs><rect width="1168" height="656" fill="url(#g)"/>'
    b'<circle cx="380" cy="280" r="150" fill="#f4ead2"/></svg>'
)

# Each story: its id, the source image it should show, and where its headline sits.
STORIES_JS = """() => [...document.querySelectorAll('.story')].map(s => {
  const img = s.querySelector('img');
  const r = img && img.getBoundingClientRect();
  return {
    id: s.id,
    headline: Math.round(s.querySelector('.headline').getBoundingClientRect().top),
    img: img && {
      src: img.getAttribute('src'), width: img.getAttribute('width'),
      height: img.getAttribute('height'), alt: img.getAttribute('alt'),
      loaded: img.complete && img.naturalWidth > 0,
      box: [Math.round(r.width), Math.round(r.height)],
    },
  };
})"""

# Every link a reader can see: its font size and the box a finger has to hit.
LINKS_JS = """() => [...document.querySelectorAll('a')].filter(a => a.offsetParent !== null)
  .map(a => {
    const r = a.getBoundingClientRect();
    const img = a.querySelector('img');
    const box = img ? img.getBoundingClientRect() : r;
    return {text: (a.textContent || a.href).trim().slice(0, 40),
            size: parseFloat(getComputedStyle(a).fontSize), img: !!img,
            height: Math.round(box.height)};
  })"""


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        launched = launch(playwright)
        yield launched
        launched.close()


def _page(
    browser,
    width: int,
    scheme: str,
    images: bool,
    ranked: RankedEdition | None = None,
    picture: bytes = PICTURE,
    name: str = "digest",
):
    page = browser.new_page(viewport={"width": width, "height": 900}, color_scheme=scheme)

    def answer(route) -> None:
        # Nothing leaves the machine: pictures come from here, everything else is refused.
        if images and route.request.resource_type == "image":
            route.fulfill(status=200, content_type="image/svg+xml", body=picture)
        else:
            route.abort()

    page.route("**/*", answer)
    page.set_content(_html(ranked), wait_until="load")
    file = f"{name}-{width}-{scheme}{'' if images else '-images-blocked'}.png"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / file), full_page=True)
    return page


@pytest.mark.parametrize("width", [640, 375])
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_email_fits_and_is_legible(browser, width: int, scheme: str) -> None:
    shown = _page(browser, width, scheme, images=True)
    blocked = _page(browser, width, scheme, images=False)
    for page in (shown, blocked):
        scroll_width = page.evaluate("document.documentElement.scrollWidth")
        assert scroll_width <= width, f"the email is {scroll_width}px wide at a {width}px viewport"
        texts = page.evaluate(CONTRAST_JS)
        assert len(texts) > 20
        poor = [t for t in texts if t["ratio"] < 4.5]
        assert not poor, f"text below WCAG AA contrast in {scheme} mode: {poor}"
        small = [
            link for link in page.evaluate(LINKS_JS) if link["size"] < 14 or link["height"] < 14
        ]
        assert not small, f"links smaller than a 14px tap target: {small}"
    with_images, without = shown.evaluate(STORIES_JS), blocked.evaluate(STORIES_JS)
    expected = {
        f"story-{n}": s.lead.image_url
        for n, s in enumerate((*_stories().breaking, *_sorted_latest()), 1)
    }
    assert {s["id"]: s["img"] and s["img"]["src"] for s in with_images} == expected
    for story in with_images:
        img = story["img"]
        if img is None:
            continue
        assert img["width"].isdigit() and img["height"].isdigit(), img  # what Outlook sizes by
        assert img["loaded"], img  # every story whose source gave a picture shows it
        lead = img["width"] == "584"
        assert img["box"][0] >= (width - 60 if lead else 90), img
        ratio = int(img["width"]) / int(img["height"])
        assert abs(img["box"][0] / img["box"][1] - ratio) < 0.05, img
        assert img["alt"] == ("Waves breaking over the harbour wall" if lead else ""), img
    # Images blocked: every picture keeps its box, so no headline moves and nothing collapses.
    assert [s["headline"] for s in without] == [s["headline"] for s in with_images]
    assert [s["img"] and s["img"]["box"] for s in without] == [
        s["img"] and s["img"]["box"] for s in with_images
    ]
    shown.close()
    blocked.close()


# A 5:3 picture (The Guardian's shape) whose source stated no shape.
PICTURE_5_3 = (
    b'<svg xmlns="http://www.w3.org/2000/svg" width="1000" height="600">'
    b'<rect width="1000" height="600" fill="#3b6e99"/></svg>'
)


@pytest.mark.parametrize("width", [640, 375])
def test_a_lead_of_unknown_shape_is_drawn_in_its_own_shape(browser, width: int) -> None:
    """No shape stated: the width attribute alone (no guessed 16:9 for Outlook to stretch
    it to), and the picture is drawn 5:3 as it is, the column's width."""
    page = _page(
        browser, width, "light", True, _stories(lead_size=None), PICTURE_5_3, "unknown-shape"
    )
    lead = page.evaluate(STORIES_JS)[0]["img"]
    page.close()
    assert lead["loaded"] and lead["width"] == "584" and lead["height"] is None, lead
    assert lead["box"][0] >= width - 60, lead
    assert abs(lead["box"][0] / lead["box"][1] - 5 / 3) < 0.02, lead


def _sorted_latest() -> list[Story]:
    """Latest in the order the email shows it: grouped by topic."""
    from digest.render import group_latest

    return [s for _, group in group_latest(_stories().latest) for s in group]


# Each line of each element matched, as the browser laid it out: its visible characters
# (spaces, no-break ones too, left out), a line begun where a character sits lower.
LINES_JS = """(selector) => [...document.querySelectorAll(selector)].map(el => {
  const lines = [];
  const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    for (let i = 0; i < n.data.length; i++) {
      if (/\\s/.test(n.data[i])) continue;
      const range = document.createRange();
      range.setStart(n, i);
      range.setEnd(n, i + 1);
      const box = range.getBoundingClientRect();
      if (!box.width && !box.height) continue;
      const last = lines[lines.length - 1];
      if (!last || box.top > last.top + box.height / 2) lines.push({top: box.top, text: ''});
      lines[lines.length - 1].text += n.data[i];
    }
  }
  return lines.map(line => line.text);
})"""


@pytest.mark.parametrize("locale", ["en_US", "fr", "de"])
def test_no_line_of_the_header_ends_with_a_separator_at_375px(browser, locale: str) -> None:
    """A long US date ("Wednesday, September 30, 2026") wrapped the dateline after its
    "·", left dangling at the end of the line: a separator goes with what follows it."""
    info = EditionInfo(
        "The Morning Desk",
        "Morning Briefing",
        "https://digest.example",
        "1 Example Street",
        "America/New_York",
        datetime(2026, 9, 30, 11, 0, tzinfo=UTC),
        web_url="https://digest.example/editions/morning/x",
        subscribe_url="https://digest.example/",
        locale=locale,
    )
    who = Recipient(
        1,
        "ada@example.org",
        "Ada",
        "https://digest.example/u/t",
        "mailto:u@example.org",
        "https://digest.example/p/t",
    )
    page = browser.new_page(viewport={"width": 375, "height": 900})
    page.route("**/*", lambda route: route.abort())
    page.set_content(substitute(render_edition(info, _stories()).html, who, is_html=True))
    topbar, dateline, footer = page.evaluate(LINES_JS, ".topbar, .dateline, .footer p:first-child")
    page.close()
    if locale == "en_US":
        assert len(dateline) > 1, dateline  # it wraps at 375 px: what this is about
    for lines in (topbar, dateline, footer):
        assert not [line for line in lines if line.endswith("·")], lines
