"""What an edition leaves out and why, in numbers: for `explain` and `preview`, and for
the run that mails nobody because nothing is new.
"""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta

from digest.app import App
from digest.config import DigestConfig
from digest.editions.stored import ranked_from_json
from digest.records import RankedEdition
from digest.store import Edition


def left_out(app: App, digest: DigestConfig, now: datetime, ranked: RankedEdition) -> list[str]:
    """What the edition ranked at ``now`` (``rank_window``) leaves out and why, with the
    numbers: articles older than the look-back window, articles of sources outside the
    digest's topics, stories an earlier edition sent that have not grown since, stories
    passed over for ``latest_per_source``, stories past the section sizes, and stories
    under the Breaking bar.

    An edition of fewer stories than were gathered says why rather than showing less
    without a word (``explain`` and ``preview`` print these lines).
    """
    enabled = {s.name: s for s in app.config.sources if s.enabled}
    wanted = set(digest.topics)
    mine = sorted(n for n, s in enabled.items() if not wanted or wanted & set(s.topics))
    notes, any_old = _window_notes(app, digest, now, mine, sorted(set(enabled) - set(mine)))
    notes += _ranking_notes(app, digest, ranked)
    if not mine:
        notes.append(
            f"everything: no enabled source has the digest's topics ({', '.join(digest.topics)})"
        )
    elif not ranked.candidates and not any_old:
        notes.append(
            "nothing, as no article is stored for its sources: `digest gather` fetches them"
        )
    return notes


def _window_notes(
    app: App, digest: DigestConfig, now: datetime, mine: list[str], others: list[str]
) -> tuple[list[str], bool]:
    """Articles of its sources older than the look-back window, and articles in the window
    from sources outside its topics; and whether there were old ones."""
    since = now - timedelta(hours=digest.lookback_hours)
    notes = []
    old = app.store.article_counts(None, since, mine)
    if old:
        count = sum(n for n, _ in old.values())
        newest = max(when for _, when in old.values())
        notes.append(
            f"{_articles(count)} older than the look-back window (lookback_hours = "
            f"{digest.lookback_hours:g} in [[digests]] {digest.id!r}); the newest of them "
            f"is {_ago(now - newest)} old"
        )
    outside = app.store.article_counts(since, now, others)
    if outside:
        count = sum(n for n, _ in outside.values())
        notes.append(
            f"{_articles(count)} in the window from sources without the digest's topics "
            f"({', '.join(digest.topics)}): {', '.join(sorted(outside))}"
        )
    return notes, bool(old)


def _ranking_notes(app: App, digest: DigestConfig, ranked: RankedEdition) -> list[str]:
    """Stories past the section sizes, stories passed over for one source's cap in Latest,
    and stories of enough sources under the Breaking bar."""
    notes = []
    if ranked.repeats:
        notes.append(
            f"{_stories(ranked.repeats)} an earlier edition sent, not grown since (no new "
            "source, no new headline): readers had them"
        )
    notes += _capped_notes(digest, ranked)
    past = ranked.candidates - ranked.repeats - ranked.count - len(ranked.capped)
    if past > 0:
        notes.append(
            f"{past} more stor{'y' if past == 1 else 'ies'} in the window, past "
            f"breaking_items = {digest.breaking_items} and latest_items = {digest.latest_items}"
        )
    weights = app.config.rank
    under = [
        s
        for s in ranked.latest
        if len(s.sources) >= weights.breaking_min_sources and s.score < weights.breaking_min_score
    ]
    if under:
        notes.append(
            f"{len(under)} stor{'y' if len(under) == 1 else 'ies'} with "
            f"{weights.breaking_min_sources}+ sources of Breaking (shown in Latest): scored "
            f"under breaking_min_score = {weights.breaking_min_score:g} in [rank]"
        )
    return notes


def _capped_notes(digest: DigestConfig, ranked: RankedEdition) -> list[str]:
    """One line per source with stories passed over for Latest's per-source cap, the most
    first: ``9 more stories from UOL: latest_per_source = 3 ...``."""
    counts = Counter(s.lead.source for s in ranked.capped)
    return [
        f"{n} more stor{'y' if n == 1 else 'ies'} from {source}: latest_per_source = "
        f"{digest.latest_per_source} in [[digests]] {digest.id!r} (not sent to readers "
        "without topics: candidates for a later edition)"
        for source, n in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    ]


def nothing_new(edition: Edition) -> str | None:
    """Why an edition without stories mails nobody, when the reason is that every story of
    its window was sent before and none has grown since (``"07:00 edition (2026-11-30,
    UTC): nothing new since the last one, not sent: ..."``); None for any other edition."""
    if edition.story_count or not edition.stories:
        return None
    try:
        repeats = ranked_from_json(edition.stories).repeats
    except (ValueError, KeyError, TypeError):  # an edition stored by an old version
        return None
    if not repeats:
        return None
    return (
        f"{edition.slot:%H:%M} edition ({edition.slot:%Y-%m-%d}, UTC): nothing new since the "
        f"last one, not sent: the {_stories(repeats)} of its window went out before and none "
        "has grown since"
    )


def _stories(count: int) -> str:
    return f"{count} stor{'y' if count == 1 else 'ies'}"


def _articles(count: int) -> str:
    return f"{count} article{'' if count == 1 else 's'}"


def _ago(age: timedelta) -> str:
    hours = age.total_seconds() / 3600
    return f"{hours:.0f} hours" if hours < 48 else f"{hours / 24:.0f} days"
