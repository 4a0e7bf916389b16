"""An edition's ranked stories as stored with it: compact JSON, written once when the
edition is built and read back by every later render (other zones, languages, topics),
the repeat checks of later editions, `status` and the web view; and each choice of
topics' own edition, stored beside it (``view_to_json``)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, replace
from datetime import datetime
from typing import Any

from digest.rank import Shown, shown_as
from digest.records import ArticleRecord, RankedEdition, Signal, Story


def ranked_to_json(ranked: RankedEdition) -> str:
    """The edition's stories as JSON, stored with the edition, compactly.

    What later reads it: the render for other time zones, languages and topics (each
    story's lead in full; the sources carrying it, the first article of each with its
    link and title for "Also"; its topics; its newest date), the repeat checks of later
    editions (the story's id, its sources and every article's id) and the score with its
    signals. The other articles are stored as their id and source alone, with a date
    only for the newest and topics only where they add one: a running story carried by
    two hundred feeds would otherwise store two hundred summaries an edition.
    """
    doc: dict[str, Any] = {
        "breaking": [_compact_story(s) for s in ranked.breaking],
        "latest": [_compact_story(s) for s in ranked.latest],
    }
    if ranked.repeats:  # what `status` says of an edition with nothing new
        doc["repeats"] = ranked.repeats
    if ranked.extra:  # what choices of topics show beyond it (``RankedEdition.extra``)
        doc["extra"] = [_compact_story(s) for s in ranked.extra]
    return json.dumps(doc, default=_iso, ensure_ascii=False, separators=(",", ":"))


def _compact_story(story: Story) -> dict[str, Any]:
    """A story as ``ranked_to_json`` stores it (``ranked_from_json`` reads it back)."""
    newest = max(story.others, key=lambda a: a.published_at, default=None)
    if newest is not None and newest.published_at <= story.lead.published_at:
        newest = None  # the lead is the newest: no other date is needed
    also = {a.id for a in story.also}
    topics = set(story.lead.topics)
    others = []
    for a in story.others:
        other: dict[str, Any] = {"id": a.id, "source": a.source}
        if a.id in also:
            other.update(title=a.title, url=a.url)
        if a is newest:
            other["published_at"] = a.published_at
        if not topics.issuperset(a.topics):
            other["topics"] = list(a.topics)
            topics.update(a.topics)
        others.append(other)
    compact: dict[str, Any] = {
        "lead": asdict(story.lead),
        "others": others,
        "score": story.score,
        "signals": [asdict(s) for s in story.signals],
    }
    if story.update:
        compact["update"] = True
    return compact


def ranked_from_json(text: str, *, extra: bool = True) -> RankedEdition:
    """The stories stored by ``ranked_to_json`` (or in full, as earlier versions stored them).
    Without ``extra``, not the stories shown to choices of topics beyond the edition (the
    repeat rule reads none of them; an edition stored before has none).

    An article stored compactly gets an empty title, link and summary, and the lead's date:
    none of them is what anything reads of it.
    """
    doc = json.loads(text)

    def article(raw: dict[str, Any], lead: ArticleRecord | None = None) -> ArticleRecord:
        if lead is not None:
            raw = {
                "title": "",
                "url": "",
                "summary": "",
                "published_at": lead.published_at.isoformat(),
                **raw,
            }
        raw = {**raw, "published_at": datetime.fromisoformat(raw["published_at"])}
        if raw.get("first_seen_at"):
            raw["first_seen_at"] = datetime.fromisoformat(raw["first_seen_at"])
        raw["topics"] = tuple(raw.get("topics", ()))
        return ArticleRecord(**raw)

    def story(raw: dict[str, Any]) -> Story:
        lead = article(raw["lead"])
        return Story(
            lead,
            tuple(article(o, lead) for o in raw["others"]),
            raw["score"],
            tuple(Signal(**s) for s in raw["signals"]),
            bool(raw.get("update", False)),
        )

    return RankedEdition(
        tuple(story(s) for s in doc["breaking"]),
        tuple(story(s) for s in doc["latest"]),
        repeats=int(doc.get("repeats", 0)),
        extra=tuple(story(s) for s in doc.get("extra", ()) if extra),
    )


def view_to_json(edition: RankedEdition, view: RankedEdition) -> str:
    """One choice of topics' own edition (``view``, of ``edition``), as stored with it:
    its stories in order, each as [story id, lead id, update] (the send finds them among
    the edition's own and its ``extra``), and those it shows beyond the edition's own
    (or under another lead) as the repeat rule reads them (``Shown``): what later builds
    leave out for that choice unless it grew. The rest the edition's memory holds."""
    own = {shown_as(s) for s in (*edition.breaking, *edition.latest)}

    def ids(stories: Iterable[Story]) -> list[list[int]]:
        return [[s.story_id, s.lead.id, int(s.update)] for s in stories]

    had = [Shown.of(s) for s in (*view.breaking, *view.latest) if shown_as(s) not in own]
    doc = {
        "breaking": ids(view.breaking),
        "latest": ids(view.latest),
        "had": [
            {
                "id": h.story_id,
                "articles": list(h.articles),
                "sources": sorted(h.sources),
                "headlines": sorted(h.headlines),
            }
            for h in had
        ],
    }
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))


def view_from_json(text: str, edition: RankedEdition) -> RankedEdition:
    """A choice's own edition as ``view_to_json`` stored it, its stories taken from the
    stored ``edition`` (its own and its ``extra``), each with its update flag. A story
    not found (an edition stored by hand) raises KeyError."""
    doc = json.loads(text)
    stories: Mapping[tuple[int, int], Story] = {
        shown_as(s): s for s in (*edition.extra, *edition.latest, *edition.breaking)
    }

    def section(raw: list[list[int]]) -> tuple[Story, ...]:
        found = []
        for story_id, lead_id, update in raw:
            story = stories[(int(story_id), int(lead_id))]
            found.append(
                story if story.update == bool(update) else replace(story, update=bool(update))
            )
        return tuple(found)

    return RankedEdition(section(doc["breaking"]), section(doc["latest"]), repeats=edition.repeats)


def view_memory(text: str) -> list[Shown]:
    """What a choice's own edition showed beyond the edition's own (``view_to_json``)."""
    return [
        Shown(
            int(raw["id"]),
            tuple(int(a) for a in raw["articles"]),
            frozenset(raw["sources"]),
            frozenset(raw["headlines"]),
        )
        for raw in json.loads(text).get("had", ())
    ]


def _iso(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot store {type(value).__name__} in an edition")
