"""`digest status`'s outbox part: the queue over every edition, and the processes sending
it (workers and schedulers, by their heartbeat rows)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import click
from rich.table import Table

from digest.app import App
from digest.cli._common import console
from digest.store import utcnow

# A process whose heartbeat is older than this many of its intervals has stopped (killed,
# or its machine lost) without removing its row.
SILENT_BEATS = 3


def outbox_document(app: App) -> dict[str, Any]:
    """The queue and the processes, as the JSON `digest status --json` prints."""
    now = utcnow()
    q = app.store.queue_summary()
    every = {
        "worker": app.config.worker.heartbeat_seconds,
        "scheduler": app.config.schedule.leader_check_seconds,
    }
    processes = []
    for w in app.store.workers():
        ago = (now - w.last_seen).total_seconds()
        processes.append(
            {
                "role": w.role,
                "host": w.host,
                "pid": w.pid,
                "state": w.state,
                "started_at": w.started_at.isoformat(),
                "last_seen": w.last_seen.isoformat(),
                "seen_seconds_ago": round(ago, 1),
                "stopped": ago > SILENT_BEATS * every.get(w.role, 5.0) + 5,
                "sent": w.sent,
                "rate_per_second": round(w.rate, 1),
            }
        )
    return {
        "queue": {
            "pending": q.pending,
            "deferred": q.deferred,
            "in_flight": q.in_flight,
            "held_by_stopped_senders": q.orphaned,
            "oldest_pending_since": _iso(q.oldest),
            "oldest_pending_seconds": round((now - q.oldest).total_seconds()) if q.oldest else None,
            "in_flight_back_by": _iso(q.back_at),
        },
        "workers": processes,
    }


def print_outbox(document: dict[str, Any]) -> None:
    """The queue in one line, then one row per worker and scheduler."""
    q = document["queue"]
    parts = [f"{q['pending']} pending"]
    if q["oldest_pending_seconds"] is not None:
        parts[0] += f" (oldest waiting {_age(q['oldest_pending_seconds'])})"
    if q["deferred"]:
        parts.append(f"{q['deferred']} deferred")
    if q["in_flight"]:
        back = str(q["in_flight_back_by"])[11:19]
        parts.append(
            f"{q['in_flight']} in flight (if their sender stopped, they are pending again "
            f"by {back} UTC)"
        )
    if q["held_by_stopped_senders"]:
        parts.append(
            f"{q['held_by_stopped_senders']} held by a sender that stopped (lease run out: "
            "the next send or worker sends them)"
        )
    click.echo("queue: " + ", ".join(parts))
    workers = document["workers"]
    if not workers:
        click.echo(
            "workers: none running (`digest worker` sends queued rows; without one, the "
            "scheduler or `digest send` does)"
        )
        return
    table = Table("role", "host", "pid", "state", "last seen", "sent", "msg/s")
    for w in workers:
        seen = f"{_age(w['seen_seconds_ago'])} ago"
        table.add_row(
            w["role"],
            w["host"],
            str(w["pid"]),
            "STOPPED? (no heartbeat)" if w["stopped"] else w["state"],
            seen,
            str(w["sent"]),
            f"{w['rate_per_second']:g}",
        )
    console.print(table)


def _iso(when: datetime | None) -> str | None:
    return when.isoformat() if when else None


def _age(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"
