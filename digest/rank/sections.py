"""Latest's stories and its per-source cap (``latest_per_source``), filled best first.

Pure: the scored stories in, the section and the stories passed over out (``rank``); and
the same for the readers of a choice of topics (``for_topics``), whose Latest is filled
by the same rule from their topics' stories, those the edition left out of its Latest
included, less what they were shown before (``topic_extra``: which of those left out an
edition keeps for them).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import replace

from digest.rank.repeats import SentStories, grew
from digest.records import RankedEdition, Story


def best_first(stories: Iterable[Story]) -> list[Story]:
    """The stories in rank order: the best score first, then the newer lead, then its id."""
    return sorted(stories, key=lambda s: (-s.score, -s.lead.published_at.timestamp(), s.lead.id))


def topic_key(topics: Iterable[str]) -> str:
    """A choice of topics as one key: sorted, comma-joined, each once ("" for none)."""
    return ",".join(sorted({t.strip() for t in topics if t.strip()}))


def for_topics(
    ranked: RankedEdition,
    pool: Sequence[Story],
    topics: Iterable[str],
    limit: int,
    per_source: int,
    had: SentStories | None = None,
) -> RankedEdition:
    """The edition for the readers of ``topics``: Breaking's stories about one of them, in
    order, and a Latest filled by ``fill_latest`` (``limit``, ``per_source``: the digest's)
    from the stories about one of them among the edition's Latest and ``pool`` (stories
    the edition left out of Latest: ``passed_over``, or the stored edition's ``extra``),
    best first as ``rank`` orders them.

    So the cap applies to what they get: a topic one source serves fills their Latest as
    far as the source has stories, the cap rising as it does for the edition. ``had``:
    what readers of these topics were shown before (``SentStories``); a story they had is
    left out unless it has grown since (``grew``), then it goes marked an update, as the
    edition's repeat rule does for everyone. A story is matched with what they had by
    its id and its articles' (a stored edition's stories hold no chain of follow-ups: a
    follow-up under a new id with none of the had articles is new to them). Nothing had,
    and topics that take every story of the edition: its Breaking and Latest (a smaller
    pool that holds the Latest fills the same Latest).
    """
    wanted = set(topics)
    had = had or SentStories()

    def mine(stories: Iterable[Story]) -> list[Story]:
        kept = []
        for s in stories:
            if not s.topics & wanted:
                continue
            articles = (s.lead, *s.others)
            before = had.sources((s.story_id,), articles)
            if before is None:
                kept.append(s)
            elif grew(s.sources, before, had.news((s.story_id,), articles)):
                kept.append(s if s.update else replace(s, update=True))
        return kept

    breaking = mine(ranked.breaking)
    shown = {s.story_id for s in (*ranked.breaking, *ranked.latest)}
    passed = [s for s in pool if s.story_id not in shown]
    latest, _ = fill_latest(best_first(mine([*ranked.latest, *passed])), limit, per_source)
    return RankedEdition(tuple(breaking), tuple(latest), repeats=ranked.repeats)


def passed_over(ranked: RankedEdition) -> tuple[Story, ...]:
    """The stories a ranking left out of Latest, best first: those its cap passed over
    and those it never reached (full before them). What a topic reader's Latest is filled
    from beside the edition's (``for_topics``): their topics' best may be either."""
    return tuple(best_first((*ranked.capped, *ranked.unreached)))


def topic_extra(
    ranked: RankedEdition, choices: Iterable[str], limit: int, per_source: int
) -> tuple[Story, ...]:
    """The stories the edition left out of Latest (``passed_over``) that the Latest of a
    reader of one of ``choices`` (topic keys) takes, nothing had (``for_topics``), best
    first: what the stored edition keeps for its topic readers, at most ``limit`` a key.

    Each story's topics are worked out once, not once a key: a running story's articles
    are many, and an install may have hundreds of choices of topics.
    """
    passed = passed_over(ranked)
    if not passed:
        return ()
    latest = {s.story_id for s in ranked.latest}
    stories = best_first((*ranked.latest, *passed))
    topics_of = {id(s): s.topics for s in stories}
    taken: set[int] = set()
    for key in {topic_key(c.split(",")) for c in choices} - {""}:
        wanted = set(key.split(","))
        if not any(topics_of[id(s)] & wanted for s in passed):
            continue
        filled, _ = fill_latest(
            [s for s in stories if topics_of[id(s)] & wanted], limit, per_source
        )
        taken.update(s.story_id for s in filled if s.story_id not in latest)
    return tuple(s for s in passed if s.story_id in taken)


def fill_latest(
    stories: Sequence[Story], limit: int, per_source: int
) -> tuple[list[Story], list[Story]]:
    """Latest from the stories best first, and those passed over for the per-source cap.

    Single-source stories tie on score and go by recency, so without a cap the source that
    posts most fills the section; with one, a story whose lead's source has ``per_source``
    in Latest already is passed over and the next taken, until the section is full. When
    the stories run out first, the cap rises one story at a time for every source (each
    one's next best, best first) until the section is full, and those go after the
    others: a reader gets a full section, its extra stories spread over the sources
    rather than given to the one that posts most, and it still opens with their breadth.
    What is still passed over is not in the edition, so it stays a candidate for a later
    one (and for the Latest of a reader who picked topics: ``for_topics``); the stories
    never reached (past ``limit``) are not among them. 0: no cap.
    """
    if not per_source:
        return list(stories[:limit]), []
    taken: Counter[str] = Counter()
    latest, passed, _ = _within(stories, limit, per_source, taken)
    cap = per_source
    while passed and len(latest) < limit:
        cap += 1
        more, over, rest = _within(passed, limit - len(latest), cap, taken)
        latest += more
        passed = over + rest  # both best first, every one of ``over`` before ``rest``
    return latest, passed


def _within(
    stories: Sequence[Story], room: int, cap: int, taken: Counter[str]
) -> tuple[list[Story], list[Story], list[Story]]:
    """Up to ``room`` of the stories, best first, no source past ``cap`` (``taken``: each
    source's stories so far, updated); those passed over, and those not reached."""
    chosen: list[Story] = []
    over: list[Story] = []
    for i, story in enumerate(stories):
        if len(chosen) == room:
            return chosen, over, list(stories[i:])
        if taken[story.lead.source] >= cap:
            over.append(story)
            continue
        taken[story.lead.source] += 1
        chosen.append(story)
    return chosen, over, []
