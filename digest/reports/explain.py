"""`digest explain`'s report: the next edition's stories with what each signal adds to
their score, what it leaves out and why, and what the ranking learned of this install."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from digest.app import App
from digest.clock import utc_time
from digest.config import DigestConfig
from digest.editions import (
    breadth_sources,
    digest_plan,
    left_out,
    next_edition_at,
    window_ranking,
)


@dataclass(frozen=True)
class SignalShare:
    """One signal of a story's score: its value and what it adds, weighted."""

    value: float
    adds: float


@dataclass(frozen=True)
class ExplainedStory:
    """One story of the next edition with each signal's contribution to its score."""

    section: str  # breaking, latest, or sent (left out: an earlier edition sent it)
    rank: int
    story_id: int
    score: float
    headline: str
    sources: list[str]
    signals: dict[str, SignalShare]

    def to_json(self) -> dict[str, Any]:
        """As `digest explain --json` lists it."""
        return {
            "section": self.section,
            "rank": self.rank,
            "story_id": self.story_id,
            "score": self.score,
            "headline": self.headline,
            "sources": self.sources,
            "signals": {n: {"value": s.value, "adds": s.adds} for n, s in self.signals.items()},
        }


@dataclass(frozen=True)
class ExplainReport:
    """`digest explain`: the next edition's ranked stories and what was left out, named by
    digest and slot (the edition `status` will list) and the moment it is ranked as of."""

    digest_id: str
    title: str
    slot: datetime  # UTC, as `digest status` lists editions
    ranked_at: datetime  # UTC: now when the slot's edition is still to build, else its fire
    zone: str  # the digest's own zone, for the slot in local time
    stories: list[ExplainedStory]
    left_out: list[str]
    breaking: int
    latest: int
    # The sources' habits the store keeps (``rank.habits``), of the sources enabled now (those
    # the ranking reads): sources, stories they carried in all, and up to when stories are
    # tallied (None: nothing kept yet)
    habit_sources: int = 0
    habit_stories: int = 0
    habits_until: datetime | None = None
    breadth_sources: int | None = 0  # configured sources with a breadth (0: not yet; None: off)

    def header(self) -> list[str]:
        """Short lines naming what is shown (each fits a terminal beside the table):
        ``digest: daily (Morning Wire)``, ``slot: 2026-12-08 06:00 UTC (07:00
        Europe/Paris)``, ``ranked as of: 2026-12-07 09:12 UTC``, and what the ranking
        learned from this store's history (the ``rerun`` and ``breadth`` columns)."""
        local = self.slot.astimezone(ZoneInfo(self.zone))
        zone = f" ({local:%H:%M} {self.zone})" if self.zone != "UTC" else ""
        return [
            f"digest: {self.digest_id} ({self.title})",
            f"slot: {utc_time(self.slot)}{zone}",
            f"ranked as of: {utc_time(self.ranked_at)}",
            self.learned(),
            self.breadth(),
        ]

    def learned(self) -> str:
        """What the rerun votes lean on: the habits kept over the store's history, or none."""
        if self.habits_until is None:
            return "learned: no source habits kept yet (rerun: from the last day's stories)"
        return (
            f"learned: rerun habits of {self.habit_sources} sources, {self.habit_stories} "
            f"stories carried, to {utc_time(self.habits_until)}"
        )

    def breadth(self) -> str:
        """What the breadth votes lean on: how many configured sources have one."""
        if self.breadth_sources is None:
            return "breadth: off (rank.breadth_weight = 0)"
        if not self.breadth_sources:
            return "breadth: not yet (needs a few thousand stories tallied)"
        return f"breadth: learned for {self.breadth_sources} sources"

    def to_json(self) -> dict[str, Any]:
        """The JSON document `digest explain --json` prints."""
        return {
            "digest": self.digest_id,
            "title": self.title,
            "slot": self.slot.isoformat(),
            "ranked_at": self.ranked_at.isoformat(),
            "timezone": self.zone,
            "stories": [s.to_json() for s in self.stories],
            "left_out": self.left_out,
            "learned": {
                "habit_sources": self.habit_sources,
                "habit_stories": self.habit_stories,
                "habits_until": self.habits_until and self.habits_until.isoformat(),
                "breadth_sources": self.breadth_sources,
            },
        }


def explain_report(app: App, digest: DigestConfig, now: datetime | None = None) -> ExplainReport:
    """The next edition ranked as of when it is built, each signal's share of each score."""
    at = next_edition_at(app, digest, now or app.clock.now())
    ranking = window_ranking(app, digest, at)  # with the tally the store keeps after it
    ranked, kept = ranking.edition, ranking.kept
    stories = [
        ExplainedStory(
            section,
            rank,
            story.story_id,
            story.score,
            story.lead.title,
            list(story.sources),
            {s.name: SignalShare(s.value, round(s.contribution, 4)) for s in story.signals},
        )
        for section, ranked_stories in (
            ("breaking", ranked.breaking),
            ("latest", ranked.latest),
            ("sent", ranked.repeated),  # left out: sent before, not grown since
        )
        for rank, story in enumerate(ranked_stories, start=1)
    ]
    notes = left_out(app, digest, at, ranked)
    plan = digest_plan(app, digest)
    return ExplainReport(
        digest.id,
        digest.title,
        plan.slot(at),
        at.astimezone(UTC).replace(microsecond=0),
        plan.zone,
        stories,
        notes,
        len(ranked.breaking),
        len(ranked.latest),
        len(kept.sources),
        sum(habit.stories for habit in kept.sources.values()),
        kept.until,
        breadth_sources(kept, app.config.rank.breadth_weight, (s.name for s in app.config.sources)),
    )
