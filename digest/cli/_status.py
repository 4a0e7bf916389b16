"""`digest status`'s outbox part: the queue over every edition, and the processes sending
it (workers and schedulers, by their heartbeat rows), as ``digest.reports`` reports them."""

from __future__ import annotations

from typing import Any

import click
from rich.table import Table

from digest.cli._common import console


def print_outbox(document: dict[str, Any]) -> None:
    """The queue in one line, then one row per worker and scheduler."""
    q = document["queue"]
    parts = [f"{q['pending']} pending"]
    if q["oldest_pending_seconds"] is not None:
        parts[0] += f" (oldest waiting {_age(q['oldest_pending_seconds'])})"
    if q["deferred"]:
        due = q.get("next_deferred_due_at")
        when = f"the first due again at {str(due)[:19].replace('T', ' ')} UTC" if due else "due"
        parts.append(
            f"{q['deferred']} deferred ({when}: the daemon's retry job or `digest retry --due` "
            "sends them then; `digest retry EDITION` now)"
        )
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
    print_unrecorded(document.get("unrecorded"))
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


def print_unrecorded(journal: dict[str, Any] | None) -> None:
    """Batches the mail server took that the database failed to record, one line each,
    and what becomes of them."""
    if journal is None:
        return
    for batch in journal["batches"]:
        click.echo(
            f"unrecorded: edition {batch['edition']}: {batch['deliveries']} deliveries "
            f"({batch['sent']} accepted) the mail server took at "
            f"{str(batch['taken_at'])[:19].replace('T', ' ')} UTC; the database could not "
            f"record them ({batch['reason']}). Kept in {journal['file']}: the next send "
            "records them before anything is sent again (if it fails, fix the database first)"
        )
    if journal["unreadable_lines"]:
        click.echo(
            f"unrecorded: {journal['file']} has {journal['unreadable_lines']} line(s) that are "
            "not a batch's results (a write cut short?): their deliveries may be sent again; "
            "read the lines, then delete them"
        )


def _age(seconds: float) -> str:
    seconds = int(seconds)
    if seconds < 120:
        return f"{seconds} s"
    if seconds < 7200:
        return f"{seconds // 60} min"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"
