"""Trimming a long edition to fit Gmail's clip costs a few inlinings, not one per count
tried, and says so once an edition however many segments its readers fall in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import premailer
import pytest

from digest.records import ArticleRecord, RankedEdition, Story
from digest.render import HTML_LIMIT, inline_css, qp, render_edition, templates
from digest.render import edition as edition_module
from digest.render.tokens import Nonce
from tests.conftest import FeedServer, rss
from tests.renders import edition_info, send_counting_renders

NOW = datetime(2026, 11, 28, 7, 0, tzinfo=UTC)
INFO = edition_info(
    timezone="Europe/Paris",
    web_url="https://digest.test/editions/daily/20261128T0700Z",
    locale="fr",
)


def _edition(n: int) -> RankedEdition:
    def story(i: int) -> Story:
        lead = ArticleRecord(
            i,
            f"Source {i % 7}",
            f"Titre numéro {i} d'une histoire du jour",
            f"https://news.test/{i}",
            "Une phrase de résumé de l'article. " * 8,
            NOW - timedelta(minutes=i),
            image_url=f"https://img.news.test/{i}.jpg",
        )
        other = ArticleRecord(i + 10_000, "Other", lead.title, f"https://other.test/{i}", "", NOW)
        return Story(lead, (other,), 1.0, ())

    return RankedEdition(tuple(story(i) for i in range(5)), tuple(story(i) for i in range(5, n)))


def _inlined_size(ranked: RankedEdition, keep: int) -> int:
    """The HTML part's size as sent with the first ``keep`` stories and the line saying how
    many more are on the web."""
    template = templates.load(templates.environment(None), "digest.html.j2")
    shown = edition_module._first(ranked, keep)
    context = edition_module._context(INFO, shown, ranked.count - keep, Nonce().tokens())
    return len(qp.encode(inline_css(templates.render(template, **context))))


def test_a_600_story_edition_is_trimmed_with_a_few_inlinings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    transforms: list[int] = []
    real = premailer.Premailer.transform

    def counting(self: premailer.Premailer, *args: object, **kwargs: object) -> str:
        transforms.append(1)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(premailer.Premailer, "transform", counting)
    ranked = _edition(600)
    rendered = render_edition(INFO, ranked)
    # A bisection over 600 counts inlines eleven pages, the first of all 600 stories.
    assert len(transforms) <= 5, len(transforms)
    kept = rendered.html.count('class="story"')
    assert rendered.omitted == 600 - kept > 0
    assert len(qp.encode(rendered.html)) <= HTML_LIMIT
    assert _inlined_size(ranked, kept + 1) > HTML_LIMIT  # as many as fit: one more does not


def test_the_count_kept_is_the_largest_that_fits_for_every_size() -> None:
    for n in (40, 45, 47, 48, 49, 60):
        rendered = render_edition(INFO, _edition(n))
        kept = n - rendered.omitted
        assert len(qp.encode(rendered.html)) <= HTML_LIMIT
        if rendered.omitted:
            assert _inlined_size(_edition(n), kept + 1) > HTML_LIMIT


def test_segments_of_one_trimmed_edition_log_the_trim_once_and_share_renders(
    write_config,
    feed_server: FeedServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    at = datetime.now(UTC) - timedelta(minutes=30)
    items = [
        {
            "title": f"Report {i}: " + " ".join(f"w{i}x{j}" for j in range(8)),
            "guid": f"g{i}",
            "link": f"https://wire.test/{i}",
            "date": format_datetime(at - timedelta(minutes=i), usegmt=True),
            "desc": " ".join(f"s{i}y{j}" for j in range(120)),
        }
        for i in range(150)
    ]
    url = feed_server.add("/f.xml", rss(items))
    config = write_config([("Wire", url)])
    text = config.read_text().replace("latest_items = 20", "latest_items = 150")
    config.write_text(text.replace(f'url = "{url}"', f'url = "{url}"\ntopics = ["world", "news"]'))
    renders, err = send_counting_renders(
        config,
        monkeypatch,
        ["all@example.org"],
        ["world@example.org", "--topic", "world"],
        ["news@example.org", "--topic", "news"],
        ["both@example.org", "--topic", "world", "--topic", "news"],
        ["fr@example.org", "--locale", "fr", "--topic", "world"],
        ["fr2@example.org", "--locale", "fr", "--topic", "news"],
    )
    # Every topic choice here leaves every story: the edition's own render, and one in French.
    assert sorted(renders) == ["UTC/en", "UTC/fr"]
    trims = [line for line in err.splitlines() if "trimmed to fit" in line]
    assert len(trims) == 1, err
    assert "stories kept" in trims[0]
