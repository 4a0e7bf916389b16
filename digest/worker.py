"""`digest worker`: a long-lived sender. Any number run, on any number of machines, on one
PostgreSQL database: each claims batches of every edition with rows to send (SKIP LOCKED,
so they never share a row), sends them, records each outcome and renews its leases while
a batch is out. It writes a heartbeat row (``workers``) for `digest status`.

An idle worker waits for NOTIFY (PostgreSQL: rows were queued) or its poll interval. The
scheduler's leader builds and queues editions and expires stale rows; a worker sends only
rows already queued, of editions still young enough to go out (``resume_since``).

SIGTERM or SIGINT: the batch on the wire finishes and is recorded, nothing more is
claimed, the heartbeat row goes. Rows it never claimed stay pending for the others.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from dataclasses import dataclass

from digest.app import App
from digest.deliver.dispatch import DeliveryReport
from digest.sending import deliver_edition, rate_limiter, resume_since
from digest.states import DeliveryStatus, WorkerRole, WorkerState
from digest.store import utcnow
from digest.store.pg import OutboxListener
from digest.store.workers import this_process

log = logging.getLogger("digest.worker")
# After a run stopped (the transport down), the next round waits this long at least, so
# a worker does not hammer a relay that refuses every connection.
STOPPED_PAUSE = 30.0


@dataclass
class WorkerStats:
    """What one worker did since it started."""

    worker_id: str
    sent: int = 0
    settled: int = 0  # rows recorded in any state (sent, failed, deferred, skipped)
    state: WorkerState = WorkerState.IDLE


async def run_worker(app: App, stop: threading.Event, rounds: int | None = None) -> WorkerStats:
    """Send until ``stop`` is set (or after ``rounds`` rounds: tests, `--once`)."""
    me = this_process(WorkerRole.WORKER, WorkerState.IDLE)
    app.store.register_worker(me)
    stats = WorkerStats(me.id)
    listener = OutboxListener(app.engine)
    beating = asyncio.create_task(_heartbeat(app, stats, stop))
    log.warning("worker %s started", me.id)
    try:
        done = 0
        while not stop.is_set() and (rounds is None or done < rounds):
            reports = await send_round(app, stop)
            done += 1
            for report in reports:
                stats.sent += report.counts[DeliveryStatus.SENT]
                stats.settled += sum(report.counts.values())
            if stop.is_set() or (rounds is not None and done >= rounds):
                break
            if any(r.stopped for r in reports):
                stats.state = WorkerState.WAITING
                await _pause(stop, max(STOPPED_PAUSE, app.config.worker.poll_seconds))
            elif not any(sum(r.counts.values()) for r in reports):
                stats.state = WorkerState.IDLE
                await asyncio.to_thread(listener.wait, app.config.worker.poll_seconds)
    finally:
        stats.state = WorkerState.STOPPING
        beating.cancel()
        listener.close()
        try:
            app.store.forget_worker(me.id)
        except Exception:  # the database is what failed: its row ages out in status
            log.exception("could not remove worker %s's heartbeat row", me.id)
        log.warning("worker %s stopped: %d messages sent", me.id, stats.sent)
    return stats


async def send_round(app: App, stop: threading.Event) -> list[DeliveryReport]:
    """One pass over every digest's editions with rows to send now, oldest first."""
    reports: list[DeliveryReport] = []
    # One set of limits for the round; the per-second and per-minute ones are shared
    # with every other sender in the database. A round waits a minute at most for room.
    limiter = rate_limiter(app, max_wait=60.0, turn=60.0)
    for digest in app.config.digests:
        since = resume_since(app, digest, utcnow())
        for edition in app.store.unfinished_editions(digest.id, since=since):
            if stop.is_set():
                return reports
            report = await deliver_edition(
                app, digest, edition, queue_new=False, limiter=limiter, stop=stop.is_set
            )
            reports.append(report)
            if sum(report.counts.values()) or report.stopped:
                log.warning(
                    "digest %s: edition %s: %s%s",
                    digest.id,
                    edition.id,
                    report.counts_line() or "nothing sent",
                    f"; stopped: {report.stopped}" if report.stopped else "",
                )
            if report.stopped or report.waiting:
                return reports  # the transport or a limit: the next round tries again
    return reports


async def _heartbeat(app: App, stats: WorkerStats, stop: threading.Event) -> None:
    """Write the heartbeat row every ``worker.heartbeat_seconds``: sent, rate, state."""
    every = app.config.worker.heartbeat_seconds
    last_sent, last_at = 0, time.monotonic()
    while True:
        await asyncio.sleep(every)
        now = time.monotonic()
        rate = (stats.sent - last_sent) / max(now - last_at, 1e-6)
        last_sent, last_at = stats.sent, now
        state = (
            WorkerState.STOPPING
            if stop.is_set()
            else WorkerState.SENDING
            if rate > 0
            else stats.state
        )
        try:
            await asyncio.to_thread(app.store.beat, stats.worker_id, stats.sent, rate, state)
        except Exception as exc:  # a heartbeat must not stop the sending
            log.error("worker %s: could not write its heartbeat (%s)", stats.worker_id, exc)


async def _pause(stop: threading.Event, seconds: float) -> None:
    """Sleep ``seconds``, waking early when asked to stop."""
    end = time.monotonic() + seconds
    while not stop.is_set() and time.monotonic() < end:
        await asyncio.sleep(min(0.5, end - time.monotonic()))
