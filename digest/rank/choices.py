"""Each choice of topics' own edition, worked out with the edition's ranking.

``latest_per_source`` caps what one source leads of a Latest; the edition's is capped
for everyone, so a reader whose topics one source serves would get that source's few
stories of it. A choice of topics (its key: sorted, comma-joined) gets its own edition
instead, by the edition's rules: its Breaking is the edition's about its topics, its
Latest filled by ``fill_latest`` (same size, same cap) from its topics' stories among all
the window's stories that are not repeats, best first as ``rank`` orders them. What the
choice was shown beyond the edition before (its memory) is left out unless it grew, and
then marked an update, matched as the edition's repeat rule matches (``rank`` rescored
the story with the edition's memory and the choice's as one: ``mine``).

Pure: the ranked stories in, each choice's edition and the stories shown beyond the
edition's own (``beyond``) out.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

from digest.rank.sections import best_first, fill_latest
from digest.records import RankedEdition, Story

# A choice's look at one story: the story as the choice gets it (rescored against its
# memory: an update), or None when the choice had it and it has not grown.
Mine = Callable[[Story], Story | None]


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

        latest, _ = fill_latest(best_first(theirs(rest)), limit, per_source)
        views[key] = RankedEdition(
            tuple(theirs(edition.breaking)),
            tuple(_owed_kept(latest, theirs(edition.latest), limit)),
            repeats=edition.repeats,
        )
    return views


def _owed_kept(latest: list[Story], owed: list[Story], limit: int) -> list[Story]:
    """``latest`` holding every one of ``owed`` (the edition's Latest stories about the
    choice's topics, as the choice gets them): everyone was sent those, so the repeat rule
    leaves them out of every later edition, and one the choice's Latest left out would
    never reach its readers. The cap keeps them in as a rule (a story the edition took
    within the cap is within it among fewer stories); not always when the choice gets a
    story under another lead (an update led by news from another source): then its
    lowest stories of its own give way to them."""
    have = {s.story_id for s in latest}
    missing = [s for s in owed if s.story_id not in have]
    if not missing:
        return latest
    owed_ids = {s.story_id for s in owed}
    own = [s for s in latest if s.story_id not in owed_ids][: max(0, limit - len(owed))]
    kept = {s.story_id for s in own} | owed_ids
    return best_first([*(s for s in latest if s.story_id in kept), *missing])


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
