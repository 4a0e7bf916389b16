"""An edition built from the real feeds in ``../shared/data/feeds/`` (``bench/brief.py``),
measured as a reader meets it: words, reading time, summaries, pictures. Skips without the
feeds."""

from __future__ import annotations

import importlib.util
import math
import re
import sys
from types import ModuleType

import pytest

from digest.render import render_edition
from digest.render.edition import WORDS_PER_MINUTE
from digest.sources.summary import DEFAULT_CHARS
from tests.conftest import ROOT, SHARED

FEEDS = SHARED / "data" / "feeds"
pytestmark = pytest.mark.skipif(
    not FEEDS.is_dir(), reason=f"the shared sample feeds are not here ({FEEDS})"
)


def _bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_brief", ROOT / "bench" / "brief.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclass looks its module up there
    spec.loader.exec_module(module)
    return module


def test_the_edition_from_the_real_feeds_reads_as_a_brief(
    capsys: pytest.CaptureFixture[str],
) -> None:
    brief = _bench()
    ranked = brief.edition(FEEDS)
    rendered = render_edition(brief.INFO, ranked)
    figures = brief.measure(ranked, rendered)
    with capsys.disabled():  # the figures, for whoever tightens the brief next
        print(f"\nreal feeds edition: {figures}")
    assert figures.stories == 20
    assert rendered.html.count('class="story"') == figures.stories
    # Summaries written for the email: within the limit, most well under it (the median
    # of the 15 summaries given, 179 characters measured: a lead sentence, not a cut).
    assert figures.summary_max <= DEFAULT_CHARS
    assert figures.summary_median <= 0.8 * DEFAULT_CHARS
    # Every picture a source gave is shown, with the numeric size Outlook sizes it by.
    assert figures.images_offered > 0 and figures.images_shown == figures.images_offered
    images = re.findall(r"<img\b[^>]*>", rendered.html)
    assert all(re.search(r'width="\d+" height="\d+"', img) for img in images), images
    assert figures.reading_minutes == math.ceil(figures.reading_words / WORDS_PER_MINUTE)
    assert figures.html_bytes_sent < 100_000  # under Gmail's clip, nothing trimmed
    # Measured 2026-12: 1,158 words with 600-character summaries; 829 with summaries
    # written for the email; 738 without what a reader would not miss (the text part's
    # list of the headlines printed below it, a weekday on today's times, a source its
    # group's heading names, the footer's repeat of the top's links); 620 of them
    # headlines and summaries.
    assert figures.words < 750


@pytest.mark.xfail(
    strict=True,
    reason=(
        "issue 16's 'under 700 words for 20 stories' is not met: 738, of which 620 are the "
        "headlines and whole lead sentences of these feeds (Portuguese wire leads of 220-245 "
        "characters); shorter needs summaries cut mid-sentence (summary_chars 180: 682 words, "
        "8 of 15 summaries ending in an ellipsis) or story times without their zone"
    ),
)
def test_the_edition_from_the_real_feeds_is_under_700_words() -> None:
    brief = _bench()
    ranked = brief.edition(FEEDS)
    figures = brief.measure(ranked, render_edition(brief.INFO, ranked))
    assert figures.stories == 20 and figures.images_shown == figures.images_offered
    assert figures.words < 700
