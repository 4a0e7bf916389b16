"""What a person sees: the email in headless Chromium at 600 and 375 px, light and dark.

Checks that nothing overflows sideways and that every piece of text is legible (WCAG AA
contrast against the background it actually sits on). The PNGs are written to
``$DIGEST_ARTIFACTS/screenshots`` (default ``artifacts/screenshots``) for a person to look at.
"""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from digest.records import ArticleRecord, RankedEdition, Recipient, Story
from digest.render import EditionInfo, render_edition, substitute
from tests.conftest import ROOT

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None:
    if os.environ.get("DIGEST_REQUIRE_CHROMIUM"):
        raise RuntimeError("Chromium is required here (scripts/test installs it) but missing")
    pytest.skip("Chromium is not installed (scripts/test installs it)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")

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


def _html() -> str:
    def story(i: int, title: str, summary: str, source: str) -> Story:
        lead = ArticleRecord(
            i, source, title, f"https://news.example/{i}", summary, NOW - timedelta(minutes=10 * i)
        )
        other = ArticleRecord(
            i + 100, "Second Outlet", title, f"https://other.example/{i}", "", NOW
        )
        return Story(lead, (other,), 1.0, ())

    long_word = "Supercalifragilisticexpialidocious-and-a-very-long-unbroken-headline-word"
    edition = RankedEdition(
        (
            story(
                1,
                "Storm makes landfall, leaving 40,000 homes without power",
                "Utility crews said power would return within two days. " * 3,
                "Harbour Wire",
            ),
            story(2, f"Headline with {long_word}", "Summary.", "Metro Gazette"),
        ),
        tuple(
            story(
                i,
                f"Latest story number {i} about the day's events",
                "A short summary.",
                "Pacific Report",
            )
            for i in range(3, 9)
        ),
    )
    info = EditionInfo(
        "The Demo Desk",
        "Morning Briefing",
        "https://digest.example",
        "1 Example Street, London",
        "Europe/London",
        NOW,
        web_url="https://digest.example/editions/morning/x",
    )
    rendered = render_edition(info, edition)
    who = Recipient(
        1,
        "ada@example.org",
        "Ada",
        "https://digest.example/unsubscribe/t",
        "mailto:u@example.org",
        "https://digest.example/preferences/t",
    )
    return substitute(rendered.html, who, is_html=True)


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        yield launched
        launched.close()


@pytest.mark.parametrize("width", [600, 375])
@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_email_fits_and_is_legible(browser, width: int, scheme: str) -> None:
    page = browser.new_page(viewport={"width": width, "height": 900}, color_scheme=scheme)
    page.route("**/*", lambda route: route.abort())  # nothing is fetched: the email is offline
    page.set_content(_html())
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"digest-{width}-{scheme}.png"), full_page=True)
    scroll_width = page.evaluate("document.documentElement.scrollWidth")
    assert scroll_width <= width, f"the email is {scroll_width}px wide at a {width}px viewport"
    texts = page.evaluate(CONTRAST_JS)
    assert len(texts) > 20
    poor = [t for t in texts if t["ratio"] < 4.5]
    assert not poor, f"text below WCAG AA contrast in {scheme} mode: {poor}"
    page.close()
