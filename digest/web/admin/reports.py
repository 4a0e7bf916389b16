"""What the console's screens show, as typed reports built from the same functions the CLI
calls (`digest status`, `digest check`, `digest explain`): no second copy of a rule.

Each builder is blocking (database, files): the views call it in a worker thread.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from digest.app import App
from digest.config import Config
from digest.deliver.checks import config_problems
from digest.records import RankedEdition
from digest.reports import edition_note, unread_change, unread_words
from digest.reports import progress as _progress  # the share `digest status` prints as "done"
from digest.reports.daemon_runs import NextRun, daemon_next_runs, daemon_reading
from digest.sources.health import SourceCondition, SourceHealth, health_of
from digest.store import Edition, Source, saved_id
from digest.store.lock import daemon_holder
from digest.store.tables import JobRun


@dataclass(frozen=True)
class EditionLine:
    """One edition with its deliveries by state, bounces since, and the reasons given."""

    edition: Edition
    counts: dict[str, int]
    bounced: int
    progress: float
    reasons: list[tuple[str, str, int]]
    # Why it mailed nobody, when that was by design: as `digest status` says it
    note: str | None = None


@dataclass(frozen=True)
class SourceLine:
    """A source's stored row (its address, last attempt) with its health as `digest sources`
    reads it: ok, failing, waiting, gone, new or off, the next try and the hint."""

    row: Source
    health: SourceHealth

    @property
    def enabled(self) -> bool:
        """Fetched by a gather (configured and enabled): the console offers "Fetch now"."""
        return self.health.condition is not SourceCondition.OFF


@dataclass
class Dashboard:
    """Everything the dashboard shows."""

    daemon: str | None
    jobs: list[JobRun]
    next_runs: list[NextRun]
    editions: list[EditionLine]
    sources: list[SourceLine]
    subscribers: dict[str, int]
    warnings: list[str] = field(default_factory=list)
    # The config change the running daemon has not read (`digest status`'s CONFIG NOT
    # RELOADED), and what to do; "" when none
    unread: str = ""


def edition_line(app: App, edition: Edition) -> EditionLine:
    """An edition's figures, as `digest status` counts them, with bounces and reasons."""
    return edition_lines(app, [edition])[0]


def edition_lines(app: App, editions: list[Edition]) -> list[EditionLine]:
    """The editions' figures (``edition_line`` of each), read in one grouped query per
    figure for them all: a query per edition and figure made the dashboard and the
    editions page cost more with every line shown."""
    ids = [saved_id(edition) for edition in editions]
    counts = app.store.editions_delivery_counts(ids)
    bounces = app.store.editions_bounces(ids)
    reasons = app.store.editions_delivery_reasons(ids)
    lines = []
    for edition, edition_id in zip(editions, ids, strict=True):
        mine = counts.get(edition_id, {})
        lines.append(
            EditionLine(
                edition,
                mine,
                bounces.get(edition_id, 0),
                _progress(mine),
                reasons.get(edition_id, []),
                edition_note(edition, mine),
            )
        )
    return lines


def source_lines(app: App) -> list[SourceLine]:
    """Every source `digest sources` lists, in the config's order, then those stored from an
    earlier config; each with its health by the same rule (`source_health`)."""
    configured = {source.name: source for source in app.config.sources}
    order = {name: index for index, name in enumerate(configured)}
    stored = app.store.list_sources()
    rows = {row.name: row for row in stored}
    lines = []
    for health in health_of(stored, app.config.sources, app.clock.now()):
        source = configured.get(health.name)
        row = rows.get(health.name) or Source(name=health.name, url=source.url if source else "")
        lines.append(SourceLine(row, health))
    return sorted(lines, key=lambda line: (order.get(line.row.name, len(order)), line.row.name))


def check_problems(config: Config) -> tuple[list[str], list[str]]:
    """`digest check`'s errors and warnings of a loaded config, one line each."""
    errors, warnings = config_problems(config)
    return [str(p) for p in errors], [str(p) for p in warnings]


def config_warnings(app: App) -> list[str]:
    """`digest check`'s warnings and errors of the loaded config, one line each."""
    errors, warnings = check_problems(app.config)
    return [*errors, *warnings]


def dashboard(app: App) -> Dashboard:
    """The dashboard's report."""
    now = app.clock.now()
    jobs = app.store.job_runs()
    read = daemon_reading(jobs)
    daemon = daemon_holder(app.engine)
    changed = unread_change(app, read) if daemon else None
    return Dashboard(
        daemon=daemon,
        jobs=jobs,
        # The daemon's, not this console's config: it may run an older one
        next_runs=daemon_next_runs(app, now, read, daemon),
        editions=edition_lines(app, app.store.editions(limit=8)),
        sources=source_lines(app),
        subscribers=app.store.subscriber_counts(),
        warnings=config_warnings(app),
        unread=unread_words(read, daemon, changed, "the Next cards above show its runs"),
    )


@dataclass(frozen=True)
class StoryLine:
    """One story of the preview with `digest explain`'s signals."""

    section: str
    rank: int
    headline: str
    url: str
    score: float
    sources: int
    signals: dict[str, float]


def explained(ranked: RankedEdition) -> list[StoryLine]:
    """The stories of a ranked edition with each signal's contribution, as explain prints."""
    return [
        StoryLine(
            section,
            rank,
            story.lead.title,
            story.lead.url,
            story.score,
            len(story.sources),
            {s.name: round(s.contribution, 3) for s in story.signals},
        )
        for section, stories in (("breaking", ranked.breaking), ("latest", ranked.latest))
        for rank, story in enumerate(stories, start=1)
    ]
