"""How an email's Latest is grouped and headed: by topic (a reader's own first) or source.

Kept apart from the rendering so that the segments of a send (``editions.segments``),
which decide whether two choices of topics share a render, group exactly as the email does.
"""

from __future__ import annotations

from collections.abc import Collection

from digest.records import Story


def group_latest(
    stories: tuple[Story, ...], by: str = "topic", prefer: Collection[str] = ()
) -> list[tuple[str, list[Story]]]:
    """Latest stories grouped by their lead's first topic (the first it has of ``prefer``,
    a reader's choice, when it has one), else its source, or with ``by="source"`` by the
    lead's source, in rank order.

    Groups appear in the order of their first story; one group means no sub-headings.
    """
    groups: dict[str, list[Story]] = {}
    for story in stories:
        lead = story.lead
        topics = [t for t in lead.topics if t in prefer] or lead.topics
        key = topics[0].capitalize() if by == "topic" and topics else lead.source
        groups.setdefault(key, []).append(story)
    return list(groups.items())


def group_source(stories: list[Story]) -> str:
    """The source every story of a group of two or more leads with, else empty: the group's
    heading names it once (``group_heading``) and the stories' lines under it leave it out.
    A story alone under its heading keeps its source on its own line (naming it in the
    heading would save nothing)."""
    sources = {s.lead.source for s in stories}
    return sources.pop() if len(stories) > 1 and len(sources) == 1 else ""


def group_heading(heading: str, source: str) -> str:
    """A group's heading, with the source all its stories come from (``Brazil · UOL``);
    a group by source is headed by the source alone."""
    return heading if source in ("", heading) else f"{heading} · {source}"
