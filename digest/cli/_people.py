"""How `digest subscribers` shows a person: the JSON of one row (``list --json``), and one
reader's whole record (``show``), for a person and for scripts."""

from __future__ import annotations

from datetime import datetime

import click

from digest.clock import utc_time
from digest.store import Subscriber
from digest.subscribers.record import SubscriberRecord


def person_json(row: Subscriber) -> dict[str, object]:
    """A subscriber as ``subscribers list --json`` prints them."""
    return {
        "email": row.email,
        "name": row.name,
        "status": row.status,
        "topics": [t for t in row.topics.split(",") if t],
        "timezone": row.timezone,
        "locale": row.locale,
        "since": row.created_at.isoformat(),
    }


def print_record(record: SubscriberRecord) -> None:
    """One reader's record, as ``subscribers show`` prints it."""
    p = record.person
    zone = p.timezone or "the digest's"
    click.echo(
        f"{p.email}" + (f" ({p.name})" if p.name else "") + f": {p.status}; topics "
        f"{p.topics or 'all'}; time zone {zone}; joined {utc_time(p.created_at)}"
    )
    click.echo("status history (newest first):")
    for event in record.history:
        click.echo(
            f"  {utc_time(event.at)}  {event.from_status or '(new)'} -> "
            f"{event.to_status}  by {event.by}"
        )
    click.echo("deliveries (newest first):" if record.deliveries else "deliveries: none yet")
    for d, e in record.deliveries:
        sent = f" at {utc_time(d.sent_at)}" if d.sent_at else ""
        tries = f", {d.attempts} attempt{'' if d.attempts == 1 else 's'}"
        click.echo(
            f"  edition {e.id} ({e.digest_id}, slot {utc_time(e.slot)}): "
            f"{d.status}{sent}{tries}" + (f": {d.error}" if d.error else "")
        )
    for missing in record.unqueued:
        e = missing.edition
        click.echo(
            f"  edition {e.id} ({e.digest_id}, slot {utc_time(e.slot)}): no delivery "
            f"for them: {missing.why}"
        )
    for step in record.next_steps():
        click.echo(f"next: {step}")


def record_json(record: SubscriberRecord) -> dict[str, object]:
    """One reader's record, as ``subscribers show --json`` prints it."""

    def when(moment: datetime | None) -> str | None:
        return moment.isoformat() if moment else None

    return {
        **person_json(record.person),
        "history": [
            {"at": when(e.at), "from": e.from_status, "to": e.to_status, "by": e.by}
            for e in record.history
        ],
        "deliveries": [
            {
                "edition": e.id,
                "digest": e.digest_id,
                "slot": when(e.slot),
                "status": d.status,
                "sent_at": when(d.sent_at),
                "attempts": d.attempts,
                "reason": d.error,
            }
            for d, e in record.deliveries
        ],
        "not_queued": [
            {"edition": m.edition.id, "digest": m.edition.digest_id, "why": m.why}
            for m in record.unqueued
        ],
        "next": record.next_steps(),
    }
