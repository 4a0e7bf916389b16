"""One reader's record, for "why didn't I get it?": who they are, their status history,
their delivery rows with each state and reason, and the recent editions that have no row
of theirs, with why (joined after it, not active then, or it mailed nobody).

The command line prints it (`digest subscribers show`); the console's subscriber page reads
the same store queries.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from digest.clock import utc_time
from digest.states import DeliveryStatus, SubscriberStatus
from digest.store import Delivery, Edition, Store, Subscriber
from digest.store.tables import SubscriberEvent


def come_back(email: str, status: str) -> str:
    """How a reader who left comes back, as their record says it (`digest subscribers show`
    and their page in the console), by how they left: one who unsubscribed or bounced signs
    up again (the signup page mails them a confirmation); one who reported the mail as spam
    is mailed nothing unasked, so signing up does not bring them back: only an admin's
    add, at their own request."""
    add = f"`digest subscribers add {email}`"
    if status == SubscriberStatus.COMPLAINED:
        return (
            "Signing up again mails them no confirmation (they reported our mail as spam): "
            f"only {add}, at their own request, brings them back."
        )
    if status == SubscriberStatus.BOUNCED:
        return (
            "If they say their address works now, they can sign up again (or, at their "
            f"request, {add})."
        )
    return f"Only they can come back, by signing up again (or, at their request, {add})."


@dataclass(frozen=True)
class Unqueued:
    """A recent edition with no delivery row for the reader, and why, as far as we know."""

    edition: Edition
    why: str


@dataclass(frozen=True)
class SubscriberRecord:
    """What the admin needs to answer a reader: the person, newest first their status
    changes and deliveries, and the recent editions that never queued them."""

    person: Subscriber
    history: list[SubscriberEvent]
    deliveries: list[tuple[Delivery, Edition]]
    unqueued: list[Unqueued]

    def next_steps(self) -> list[str]:
        """What the admin can do about the rows not sent (a failed one: its retry), and
        about a reader nothing is sent to any more."""
        steps = []
        status, email = self.person.status, self.person.email
        if status == SubscriberStatus.BOUNCED:
            steps.append(
                "nothing is sent to them: their address bounced (the reason is on the "
                f"delivery above). {come_back(email, status)}"
            )
        elif status in (SubscriberStatus.UNSUBSCRIBED, SubscriberStatus.COMPLAINED):
            steps.append(f"nothing is sent to them: they are {status}. {come_back(email, status)}")
        elif status == SubscriberStatus.PENDING:
            steps.append("nothing is sent to them until they click their confirmation link")
        elif status == SubscriberStatus.PAUSED:
            steps.append("nothing is sent to them while paused (their preferences page)")
        for delivery, edition in self.deliveries:
            if delivery.status == DeliveryStatus.FAILED and self.person.status in (
                SubscriberStatus.ACTIVE,
                SubscriberStatus.PAUSED,
            ):
                steps.append(
                    f"edition {edition.id} failed for them: once the cause is fixed, "
                    f"`digest retry {edition.id}` sends it again"
                )
            elif delivery.status in (DeliveryStatus.DEFERRED, DeliveryStatus.PENDING):
                steps.append(
                    f"edition {edition.id} is still queued for them ({delivery.status}): "
                    "`digest retry --due` sends it when due, "
                    f"`digest retry {edition.id}` now"
                )
        return steps


def subscriber_record(store: Store, subscriber: Subscriber, editions: int = 10) -> SubscriberRecord:
    """The reader's record: their last 50 deliveries, their history, and which of the
    ``editions`` newest editions have no row of theirs, with why."""
    assert subscriber.id is not None
    deliveries = store.subscriber_deliveries(subscriber.id)
    history = store.subscriber_history(subscriber.id)
    have = {edition.id for _, edition in deliveries}
    missing = [edition for edition in store.editions(limit=editions) if edition.id not in have]
    went_out = store.editions_went_out(e.id for e in missing if e.id is not None)
    unqueued = [
        Unqueued(edition, _why_not(subscriber, history, edition, edition.id in went_out))
        for edition in missing
    ]
    return SubscriberRecord(subscriber, history, deliveries, unqueued)


def _why_not(
    person: Subscriber, history: list[SubscriberEvent], edition: Edition, went_out: bool
) -> str:
    """Why an edition has no row for the reader (``went_out``: a message of it went to
    someone): the first cause that fits."""
    if edition.created_at < person.created_at:
        return f"they joined at {utc_time(person.created_at)}, after it was built"
    status = _status_at(history, edition.created_at) or person.status
    if status != SubscriberStatus.ACTIVE:
        return f"they were {status} when it was built: only active readers are queued"
    if edition.id is not None and not went_out:
        return "it mailed nobody (nothing new since the last one, or nobody in its audience)"
    return (
        "not queued for them: their topics or time zone do not take this digest, or they "
        "became active after it was queued (`digest explain` and the config's [[digests]] "
        "topics say who gets what)"
    )


def _status_at(history: list[SubscriberEvent], moment: datetime) -> str | None:
    """The reader's status at ``moment``, from their history (newest first); None when the
    history does not reach back that far."""
    for event in history:
        if event.at <= moment:
            return event.to_status
    return None
