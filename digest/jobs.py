"""The jobs of a run, whoever runs them (the daemon, or cron's `digest run --once`):
gather, send one digest, and (the daemon, between slots) retry what is due. Each records
its outcome for `digest status`, whatever happens: a job that dies of a bug records that
too, so status never shows an old "ok" as the latest word.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from sqlalchemy.exc import DBAPIError

from digest.app import App, run
from digest.deliver import DeliveryReport
from digest.errors import DigestError
from digest.job_names import RELOAD, manual, sending
from digest.pipeline import (
    RetryReport,
    RunReport,
    gather_sources,
    resume_waiting,
    retry_edition,
    run_digest,
)
from digest.sending import rate_limiter
from digest.sources.gather import SourceReport
from digest.states import FetchStatus
from digest.store.trouble import (
    SCHEMA_HINT,
    database_error,
    database_trouble,
    database_words,
    schema_behind,
)

log = logging.getLogger("digest.schedule")

T = TypeVar("T")


def send_job(
    app: App,
    digest_id: str,
    at: datetime | None = None,
    gather_first: bool = True,
    stop: Callable[[], bool] | None = None,
) -> RunReport | None:
    """Run one digest (``at``: the slot's time, for a slot sent late); None if it failed
    before reporting. Under `[schedule] send = false` it builds and queues, and workers
    send. ``stop``: asked before each batch."""
    job, started = sending("send", digest_id), app.clock.now()
    send = app.config.schedule.send
    try:
        report = run(
            run_digest(app, digest_id, now=at, gather_first=gather_first, send=send, stop=stop)
        )
    except Exception as exc:
        _failed(app, job, started, exc)
        return None
    if report.sources:
        record_gather(app, started, report.sources)
    summary = _sent(report)
    (log.info if report.ok else log.warning)("digest %s: %s", digest_id, summary)
    _record(app, job, started, report.ok, summary)
    return report


def hand_send(app: App, digest_id: str, gather_first: bool) -> RunReport:
    """`digest send`: one digest's run, recorded for `digest status` and the console as
    ``send ID (manual)``, failed runs too; the error itself goes on to the command line,
    which prints it with its hint (nothing is logged here a second time)."""
    started = app.clock.now()

    def send() -> RunReport:
        report = run(run_digest(app, digest_id, gather_first=gather_first))
        if report.sources:
            record_gather(app, started, report.sources)
        return report

    return _by_hand(app, sending("send", digest_id), started, send, lambda r: (r.ok, _sent(r)))


def hand_retry(app: App, edition_id: int, send: bool = True) -> RetryReport:
    """`digest retry EDITION` and the console's Retry: ``retry_edition``, recorded for
    `digest status` and the console as ``retry ID (manual)`` (the daemon's retry job is
    ``retry ID``), failed runs too; the error goes on to whoever called, as ``hand_send``'s.
    An edition that does not exist is not a run: its error is raised unrecorded."""
    edition = app.store.edition_by_id(edition_id)
    if edition is None:
        return retry_edition(app, edition_id, send=send)  # raises, naming recent editions
    return _by_hand(
        app,
        sending("retry", edition.digest_id),
        app.clock.now(),
        lambda: retry_edition(app, edition_id, send=send),
        lambda r: (r.run is None or r.run.ok, _retried(r)),
    )


def _by_hand(
    app: App,
    job: str,
    started: datetime,
    work: Callable[[], T],
    outcome: Callable[[T], tuple[bool, str]],
) -> T:
    """Run a command's ``work`` and record it as the ``manual`` run of ``job``: its outcome
    (ok, summary) when it returns, the failure when it raises; then raise it again, as the
    command line prints it with its hint (not ``loud``: nothing logged a second time)."""
    job = manual(job)
    try:
        result = work()
    except Exception as exc:
        _record(app, job, started, False, _failure(exc), loud=False)
        raise
    ok, summary = outcome(result)
    _record(app, job, started, ok, summary)
    return result


def _retried(report: RetryReport) -> str:
    """A retry in a line: what it put back in the queue, then what its send delivered."""
    line = (
        f"edition {report.edition_id}: {report.requeued} failed re-queued, "
        f"{report.resumed} paused resumed, {report.deferred} deferred due now"
    )
    if report.run is not None and report.run.delivery is not None:
        line += f"; {_delivered(report.edition_id, report.run.delivery)}"
    return line


def _sent(report: RunReport) -> str:
    """A send in a line: what it delivered, or why nothing was meant to go, then what it
    sent of earlier editions' waiting rows (a run that fails there says so, not only
    "nothing new")."""
    d = report.delivery
    if d is None:
        line = report.idle or "nothing to send"
    else:
        line = _delivered(report.edition.id if report.edition else None, d)
    earlier = [_delivered(e.id, r) for e, r in report.resumed if r.counts or r.stopped]
    return line + "".join(f"; and earlier {e}" for e in earlier)


def retry_job(app: App, stop: Callable[[], bool] | None = None) -> list[RunReport]:
    """Send each digest's rows that are due between its slots: a deferred (4xx) row once its
    retry time has come, rows a sending limit held once it has room. One report per digest
    that had something due.

    One set of limits serves the whole tick. It waits at most a minute for a token (a
    per-second or per-minute limit) and starts no wait after five minutes: a spent quota
    or a long drip under a limit stops it with the rest left for the next tick, so the
    daemon's one worker is never held for long. Quiet when
    nothing is due or a limit has no room now; recorded for `digest status` when something
    was due, or to clear a failure recorded before.
    """
    limiter = rate_limiter(app, max_wait=60.0, turn=300.0)
    if not limiter.ready():
        log.debug("retry: a sending limit has no room now")
        return []
    reports = []
    failed_before = {r.job for r in app.store.job_runs() if not r.ok}
    for digest in app.config.digests:
        job, started = sending("retry", digest.id), app.clock.now()
        if not app.store.unfinished_editions(digest.id):
            if job in failed_before:  # what failed then has gone since (a run sent it)
                _record(app, job, started, True, "nothing waiting")
            continue
        try:
            report = run(
                resume_waiting(app, digest.id, limiter, send=app.config.schedule.send, stop=stop)
            )
        except Exception as exc:
            _failed(app, job, started, exc)
            continue
        summary = "; ".join(_delivered(e.id, d) for e, d in report.resumed) or "nothing to resume"
        (log.info if report.ok else log.warning)("digest %s: retry: %s", digest.id, summary)
        _record(app, job, started, report.ok, summary)
        reports.append(report)
    return reports


def _delivered(edition_id: int | None, d: DeliveryReport) -> str:
    """One edition's delivery in a line: "edition 12: 3 sent, 1 deferred; waiting: ..."."""
    step = d.next_step(edition_id)
    return (
        f"edition {edition_id if edition_id is not None else '-'}: "
        + (d.counts_line() or ("nothing sent" if d.stopped else "nothing to send"))
        + (f"; {d.in_flight_note()}" if d.in_flight else "")
        + (f"; stopped: {d.stopped}" if d.stopped else "")
        + (f"; every message failed, none sent ({_commonest(d)})" if d.refused_all() else "")
        + (f"; waiting: {d.waiting}" if d.waiting else "")
        + "".join(f"; {note}" for note in d.doubt_notes())
        + (f"; next: {step}" if step else "")
    )


def _commonest(d: DeliveryReport) -> str:
    """The refusal this run met most, as the run printed it: "failed: 530 5.7.0 ..."."""
    top = d.refusals.most_common(1)
    return top[0][0] if top else "see `digest status`"


def gather_job(app: App) -> list[SourceReport] | None:
    """Gather every source once; None if the gathering itself failed."""
    started = app.clock.now()
    try:
        reports = run(gather_sources(app))
    except Exception as exc:
        _failed(app, "gather", started, exc)
        return None
    record_gather(app, started, reports)
    # The daemon's log is how an admin sees it work: each gathering says what it found.
    # A source not read is a warning each time, also one waiting out its backoff (whose
    # fetch, not made, logged nothing): the log at WARNING still shows the feed is broken.
    ok = all(r.status == FetchStatus.OK for r in reports)
    (log.info if ok else log.warning)("gather: %s", gather_summary(reports))
    return reports


def record_gather(app: App, started: datetime, reports: list[SourceReport]) -> None:
    """Record a gathering for `digest status`, whatever ran it (the gather job, a send that
    gathers first, `digest gather`): its last gather is the last one made."""
    _record(app, "gather", started, True, gather_summary(reports))


def gather_summary(reports: list[SourceReport]) -> str:
    """A gathering in a line: "4 sources, 12 new articles; not ok: Wire"."""
    failing = [r.name for r in reports if r.status != FetchStatus.OK]
    new = sum(r.new_items for r in reports)
    return f"{len(reports)} sources, {new} new articles" + (
        f"; not ok: {', '.join(failing)} (`digest sources` says why)" if failing else ""
    )


def record_reload(app: App, ok: bool, summary: str, said: str = "", job: str = RELOAD) -> None:
    """The daemon's reading of its config (at start, on SIGHUP), recorded as the job
    ``reload`` for `digest status`, the console and /metrics (best effort): ``summary`` in
    words (cut if long), then what ``said`` names for programs to read back (its next runs
    and config fingerprint: ``job_names``), kept whole."""
    _record(app, job, app.clock.now(), ok, summary, whole=said)


def _failed(app: App, job: str, started: datetime, exc: Exception) -> None:
    if isinstance(exc, DBAPIError) and database_trouble(exc):  # locked, full, read-only
        log.debug("%s failed on the database", job, exc_info=exc)
        exc = database_error(exc)
    if isinstance(exc, DigestError):
        log.error("%s failed: %s (%s)", job, exc.message, exc.hint)
    elif isinstance(exc, DBAPIError) and schema_behind(exc):  # with its traceback
        log.exception("%s failed: %s (%s)", job, database_words(exc), SCHEMA_HINT)
    else:
        log.exception("%s failed: a bug in digest or an unreadable database", job)
    _record(app, job, started, False, _failure(exc))


def _failure(exc: Exception) -> str:
    """A failed job's summary: the message and hint of our errors, else the exception."""
    if isinstance(exc, DBAPIError) and database_trouble(exc):
        exc = database_error(exc)
    if isinstance(exc, DigestError):
        return f"{exc.message} ({exc.hint})"
    if isinstance(exc, DBAPIError) and schema_behind(exc):
        return f"{database_words(exc)} ({SCHEMA_HINT})"
    return f"{type(exc).__name__}: {exc}"


def _record(
    app: App,
    job: str,
    started: datetime,
    ok: bool,
    summary: str,
    loud: bool = True,
    whole: str = "",
) -> None:
    """Best effort: the database may be what failed. Not ``loud`` when the command line
    prints the failure itself: then the traceback waits for -vv. ``whole``: the end of the
    summary kept whole (``Store.record_job``)."""
    try:
        app.store.record_job(job, started, ok, summary, whole)
    except DBAPIError as exc:
        if database_trouble(exc):  # the database said why: no traceback (it is at -vv)
            log.debug("could not record the %s job's outcome", job, exc_info=True)
            (log.error if loud else log.debug)(
                "could not record the %s job's outcome (%s): %s; `digest status` shows the "
                "run before it until one is recorded",
                job,
                summary,
                database_error(exc).message,
            )
        else:
            _unrecorded(job, summary, loud)
    except Exception:
        _unrecorded(job, summary, loud)


def _unrecorded(job: str, summary: str, loud: bool) -> None:
    """A job's outcome the store refused for a reason of its own: with the traceback."""
    (log.exception if loud else log.debug)(
        "could not record the %s job's outcome (%s)", job, summary, exc_info=True
    )
