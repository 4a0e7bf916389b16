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
            # the lead's date as it is: a running story's hundreds of compact articles
            # each wrote it out and read it back
            published = raw.get("published_at")
            raw = {"title": "", "url": "", "summary": "", **raw}
            raw["published_at"] = (
                lead.published_at if published is None else datetime.fromisoformat(published)
            )
        else:
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


def without_extra(text: str) -> str | None:
    """The stories stored by ``ranked_to_json`` less what only its choices' views showed
    (its ``extra``), all else as stored; None when it holds none: what its stored
    stories are once no view of it is kept (``Store.prune_edition_views``)."""
    doc = json.loads(text)
    if "extra" not in doc:
        return None
    del doc["extra"]
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))


def view_to_json(view: RankedEdition) -> str:
    """One choice of topics' own edition (``view``), as stored with its edition: its
    stories in order, each as [story id, lead id, update]. Ids alone: the stories are the
    edition's own and its ``extra`` (stored with it once, however many choices show
    one), where the send finds them (``view_from_json``) and later builds what the choice
    was shown beyond the edition's own (``view_memory``)."""

    def ids(stories: Iterable[Story]) -> list[list[int]]:
        return [[s.story_id, s.lead.id, int(s.update)] for s in stories]

    doc = {"breaking": ids(view.breaking), "latest": ids(view.latest)}
    return json.dumps(doc, separators=(",", ":"))


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


def view_memory(text: str, edition: RankedEdition | None) -> list[Shown]:
    """What a choice's own edition (``view_to_json``) showed beyond the stored
    ``edition``'s own (read with its ``extra``), as the repeat rule reads it
    (``ViewMemory``, for one view)."""
    return ViewMemory(edition)(text)


class ViewMemory:
    """What the choices' views of one stored edition (read with its ``extra``; None:
    unreadable) showed beyond its own, as the repeat rule reads it: those of a view's
    stories its Breaking and Latest do not hold under the same lead, as its ``extra``
    stored them (once, however many choices were shown one). Each such story is worked
    out once for every view read through it: an edition may have hundreds of choices.
    A view stored before views held ids alone carries its own copy of them ("had"), read
    as it is. A story not found (``extra`` unreadable) raises KeyError."""

    def __init__(self, edition: RankedEdition | None) -> None:
        self._own: set[tuple[int, int]] = set()
        self._extra: dict[tuple[int, int], Story] = {}
        if edition is not None:
            self._own = {shown_as(s) for s in (*edition.breaking, *edition.latest)}
            self._extra = {shown_as(s): s for s in edition.extra}
        self._shown: dict[tuple[int, int], Shown] = {}

    def __call__(self, text: str) -> list[Shown]:
        """What the view ``text`` showed beyond the edition's own."""
        doc = json.loads(text)
        if "had" in doc:
            return [
                Shown(
                    int(raw["id"]),
                    tuple(int(a) for a in raw["articles"]),
                    frozenset(raw["sources"]),
                    frozenset(raw["headlines"]),
                )
                for raw in doc["had"]
            ]
        shown = []
        for story_id, lead_id, _ in (*doc["breaking"], *doc["latest"]):
            key = (int(story_id), int(lead_id))
            if key in self._own:
                continue
            if key not in self._shown:
                if key not in self._extra:
                    raise KeyError(
                        f"story {story_id} (lead {lead_id}) is not among the edition's stories"
                    )
                self._shown[key] = Shown.of(self._extra[key])
            shown.append(self._shown[key])
        return shown


def _iso(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot store {type(value).__name__} in an edition")
