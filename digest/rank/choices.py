"""Each choice of topics' own edition, worked out with the edition's ranking.

``latest_per_source`` caps what one source leads of a Latest; the edition's is capped
for everyone, so a reader whose topics one source serves would get that source's few
stories of it. A choice of topics (its key: sorted, comma-joined) gets its own edition
instead, by the edition's rules: its Breaking is the edition's about its topics, its
Latest filled by ``fill_latest`` (same size, same cap: ``_owed_kept`` says where it
gives) from its topics' stories among all the window's stories that are not repeats,
best first as ``rank`` orders them. What the
choice was shown beyond the edition before (its memory) is left out unless it grew, and
then marked an update, matched as the edition's repeat rule matches (``rank`` rescored
the story with the edition's memory and the choice's as one: ``mine``).

Pure: the ranked stories in, each choice's edition and the stories shown beyond the
edition's own (``beyond``) out (``with_choices``, called by ``rank`` with its rescoring);
and the edition narrowed to a choice the build did not know (``narrow``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace

from digest.rank.repeats import SentStories, grew
from digest.rank.sections import best_first, fill_latest
from digest.records import RankedEdition, Story

# A choice's look at one story: the story as the choice gets it (rescored against its
# memory: an update), or None when the choice had it and it has not grown.
Mine = Callable[[Story], Story | None]


# Rescore one story of the ranking against a memory (the edition's and a choice's as one).
Rescore = Callable[[Story, SentStories], Story]
# Whether a memory holds any of a story (its chain of follow-ups, merged ids, articles).
Holds = Callable[[SentStories, Story], bool]


def with_choices(
    edition: RankedEdition,
    stories: Sequence[Story],
    sent: SentStories,
    choices: Mapping[str, SentStories],
    rescore: Rescore,
    holds: Holds,
    limit: int,
    per_source: int,
) -> RankedEdition:
    """``edition`` with each choice's own edition (``views``) and the stories those show
    beyond it (``extra``): ``stories`` are the ranking's, best first, ``sent`` the
    edition's memory, ``choices`` what each choice was shown beyond it. A story a choice
    had is rescored against both memories as one (``rescore``: matched as the edition's
    repeat rule matches), and left out unless it grew."""

    def mine(had: SentStories) -> Mine:
        memory: list[SentStories] = []  # the edition's and the choice's as one, once needed

        def theirs(story: Story) -> Story | None:
            if not holds(had, story):
                return story  # never shown to them beyond the edition: as ranked
            if not memory:
                memory.append(sent.merged(had))
            again = rescore(story, memory[0])
            return None if again.repeat else again

        return theirs

    views = choice_editions(
        edition,
        [s for s in stories if not s.repeat],
        {key: mine(had) for key, had in choices.items()},
        limit,
        per_source,
    )
    return replace(edition, views=views, extra=beyond(edition, views))


def choice_editions(
    edition: RankedEdition,
    candidates: Sequence[Story],
    choices: Mapping[str, Mine],
    limit: int,
    per_source: int,
) -> dict[str, RankedEdition]:
    """Each choice's edition (see the module): ``candidates`` are the ranking's stories
    that are not repeats, best first; ``limit`` and ``per_source`` the digest's Latest
    size and cap. Each story's topics are worked out once, not once a choice: a running
    story's articles are many, and an install may have hundreds of choices."""
    topics_of = {id(s): s.topics for s in (*edition.breaking, *candidates)}
    in_breaking = {id(s) for s in edition.breaking}
    rest = [s for s in candidates if id(s) not in in_breaking]
    views: dict[str, RankedEdition] = {}
    for key, mine in choices.items():
        wanted = set(key.split(","))
        seen: dict[int, Story | None] = {}  # a story rescored for them once

        def theirs(
            stories: Sequence[Story],
            wanted: set[str] = wanted,
            mine: Mine = mine,
            seen: dict[int, Story | None] = seen,
        ) -> list[Story]:
            for s in stories:
                if id(s) not in seen and topics_of[id(s)] & wanted:
                    seen[id(s)] = mine(s)
            kept = (seen.get(id(s)) for s in stories)
            return [s for s in kept if s is not None]

        pool = best_first(theirs(rest))
        latest, _ = fill_latest(pool, limit, per_source)
        owed = [
            (s, seen[id(s)]) for s in edition.latest if topics_of[id(s)] & wanted and seen[id(s)]
        ]
        views[key] = RankedEdition(
            tuple(theirs(edition.breaking)),
            tuple(_owed_kept(latest, pool, owed, limit, per_source)),
            repeats=edition.repeats,
        )
    return views


def _owed_kept(
    latest: list[Story],
    pool: list[Story],
    owed: list[tuple[Story, Story | None]],
    limit: int,
    per_source: int,
) -> list[Story]:
    """``latest`` (the choice's Latest, filled from ``pool``) holding every one of ``owed``
    (the edition's Latest stories about the choice's topics, each as the edition has it
    and as the choice gets it): everyone was sent those, so the repeat rule leaves them out
    of every later edition, and one the choice's Latest left out would never reach its
    readers. Counted against the cap first, the owed that keep the edition's lead; then
    the choice's own stories (its news-led updates under their new lead) fill the room
    left by ``fill_latest``; then best first the owed the choice gets under another lead
    (an update led by news from another source) keep it while its source is within the
    cap, and past it are shown under the lead the edition counted them under (as an
    update still). The cap is passed only where ``fill_latest`` passes it (the choice's
    stories ran out: its rule fills the section), or by an owed story shown under the
    edition's lead when the choice's own stories of that source reached the cap already
    (everyone was sent it, under that lead)."""
    have = {s.story_id for s in latest}
    theirs = [mine for _, mine in owed if mine is not None]
    if all(s.story_id in have for s in theirs):
        return latest
    owed_ids = {s.story_id for s in theirs}
    as_edition = {id(m): e for e, m in owed if m is not None}
    fixed = [m for m in theirs if m.lead.id == as_edition[id(m)].lead.id]
    moved = [m for m in theirs if m.lead.id != as_edition[id(m)].lead.id]
    leads = Counter(s.lead.source for s in fixed)
    rest = [s for s in pool if s.story_id not in owed_ids]
    own, _ = fill_latest(rest, max(0, limit - len(theirs)), per_source, leads)
    leads.update(s.lead.source for s in own)
    kept = [*fixed, *own]
    for mine in best_first(moved):
        shown = mine
        if per_source and leads[mine.lead.source] >= per_source:
            shown = replace(as_edition[id(mine)], update=mine.update)
        leads[shown.lead.source] += 1
        kept.append(shown)
    return best_first(kept)


def shown_as(story: Story) -> tuple[int, int]:
    """A story as a reader sees it: its id and its lead's (an update may lead with news)."""
    return story.story_id, story.lead.id


def beyond(edition: RankedEdition, views: Mapping[str, RankedEdition]) -> tuple[Story, ...]:
    """The stories the choices' editions show that the edition does not (or under
    another lead), each once, best first: what is stored with it for the send to render."""
    own = {shown_as(s) for s in (*edition.breaking, *edition.latest)}
    extra: dict[tuple[int, int], Story] = {}
    for view in views.values():
        for story in (*view.breaking, *view.latest):
            if shown_as(story) not in own:
                extra.setdefault(shown_as(story), story)
    return tuple(best_first(extra.values()))


def narrow(
    ranked: RankedEdition, topics: set[str], had: SentStories | None = None
) -> RankedEdition:
    """Only the stories about one of ``topics`` (a subscriber's choice), in the same order;
    with ``had`` (what that choice was shown beyond earlier editions), less those it had,
    unless they grew since (a source they did not have then): then as an update."""

    def theirs(story: Story) -> Story | None:
        if had is None:
            return story
        articles = (story.lead, *story.others)
        before = had.sources((story.story_id,), articles)
        if before is None:
            return story
        if not grew(story.sources, before, had.news((story.story_id,), articles)):
            return None
        return story if story.update else replace(story, update=True)

    def keep(stories: tuple[Story, ...]) -> tuple[Story, ...]:
        kept = (theirs(s) for s in stories if s.topics & topics)
        return tuple(s for s in kept if s is not None)

    return RankedEdition(keep(ranked.breaking), keep(ranked.latest), repeats=ranked.repeats)
