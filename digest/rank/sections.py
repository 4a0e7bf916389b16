"""Latest's stories and its per-source cap (``latest_per_source``), filled best first.

Pure: the scored stories in, the section and the stories passed over out (``rank``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence

from digest.records import Story


def best_first(stories: Iterable[Story]) -> list[Story]:
    """The stories in rank order: the best score first, then the newer lead, then its id."""
    return sorted(stories, key=lambda s: (-s.score, -s.lead.published_at.timestamp(), s.lead.id))


def topic_key(topics: Iterable[str]) -> str:
    """A choice of topics as one key: sorted, comma-joined, each once ("" for none)."""
    return ",".join(sorted({t.strip() for t in topics if t.strip()}))


def fill_latest(
    stories: Sequence[Story], limit: int, per_source: int, taken: Mapping[str, int] | None = None
) -> tuple[list[Story], list[Story]]:
    """Latest from the stories best first, and those passed over for the per-source cap.

    Single-source stories tie on score and go by recency, so without a cap the source that
    posts most fills the section; with one, a story whose lead's source has ``per_source``
    in Latest already is passed over and the next taken, until the section is full. When
    the stories run out first, the cap rises one story at a time for every source (each
    one's next best, best first) until the section is full, and those go after the
    others: a reader gets a full section, its extra stories spread over the sources
    rather than given to the one that posts most, and it still opens with their breadth.
    What is still passed over is not sent, so it stays a candidate for a later edition;
    the stories never reached (past ``limit``) are not among them. 0: no cap. ``taken``:
    each source's stories already in the section (a choice's owed ones), counted first.
    """
    if not per_source:
        return list(stories[:limit]), []
    counted: Counter[str] = Counter(taken or {})
    latest, passed, _ = _within(stories, limit, per_source, counted)
    cap = per_source
    while passed and len(latest) < limit:
        cap += 1
        more, over, rest = _within(passed, limit - len(latest), cap, counted)
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
