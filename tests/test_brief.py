"""An edition built from the real feeds in ``../shared/data/feeds/`` (``bench/brief.py``),
measured as a reader meets it: words, reading time, pictures. Skips without the feeds."""

from __future__ import annotations

import importlib.util
import math
import re
import sys
from types import ModuleType

import pytest

from digest.render import render_edition
from digest.render.edition import WORDS_PER_MINUTE
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


def test_the_real_feeds_make_an_edition_that_shows_every_picture_it_was_given(
    capsys: pytest.CaptureFixture[str],
) -> None:
    brief = _bench()
    ranked = brief.edition(FEEDS)
    rendered = render_edition(brief.INFO, ranked)
    figures = brief.measure(ranked, rendered)
    with capsys.disabled():  # the figures, for whoever tightens the summaries next
        print(f"\nreal feeds edition: {figures}")
    assert figures.stories >= 20
    assert figures.images_offered > 0 and figures.images_shown == figures.images_offered
    images = re.findall(r"<img\b[^>]*>", rendered.html)
    assert all(re.search(r'width="\d+" height="\d+"', img) for img in images), images
    assert figures.reading_minutes == math.ceil(figures.words / WORDS_PER_MINUTE)
    assert figures.html_bytes_sent < 100_000  # under Gmail's clip, nothing trimmed
    assert rendered.html.count('class="story"') == figures.stories
