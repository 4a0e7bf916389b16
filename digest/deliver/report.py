"""What one dispatch did, in the words `digest status` and the run's log line use."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from digest.clock import utc_time
from digest.states import DeliveryStatus
from digest.store.tables import DELIVERY_STATES


@dataclass(frozen=True)
class UnknownRefusal:
    """A reader the server refused as unknown (a hard bounce) in this run: recorded as
    doubted, and weighed against the whole run's answers when it ends
    (``doubts.weigh_refusals``)."""

    delivery_id: int
    subscriber_id: int | None
    email: str
    detail: str  # the server's words
    batch: int = 0  # the run's sent batch it came in, counted from 1


@dataclass
class DeliveryReport:
    """What one dispatch did: how many rows ended in each state, and the failures' reasons."""

    queued: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)
    stopped: str = ""  # the run failed: transport down, error budget spent
    waiting: str = ""  # a sending limit was reached: the rest goes out on a later run
    paused: int = 0  # rows the error budget paused: they wait for `digest retry`
    skipped: Counter[str] = field(default_factory=Counter)  # why rows were skipped -> rows
    # Rows of the edition another sender holds at the end of this run (claimed, lease not
    # run out), and when the last lease runs out: a stopped sender's rows are pending again
    # then, for the next send or a worker.
    in_flight: int = 0
    back_at: datetime | None = None
    for_workers: bool = False  # queued only: `digest worker`s send it ([schedule] send)
    bounced: int = 0  # of the failed: hard bounces, whose addresses are now suppressed
    # of the failed: hard bounces not believed (``doubts.weigh_refusals``): nobody
    # suppressed, as the server refused more readers as unknown than it took
    doubted: int = 0
    # hard bounces recorded as doubted until the run's end weighs them (counted as
    # ``bounced`` meanwhile, the server's word)
    unweighed: list[UnknownRefusal] = field(default_factory=list)
    batches_sent: int = 0  # the run's batches answered, and the last one the server took
    last_taken: int = 0  # a message of (0: none), which refusals after it are weighed by
    # of the doubted: readers refused so again on a later day, yet still doubted: why
    # (a ``states.StillDoubted``) -> their addresses
    still_doubted: dict[str, list[str]] = field(default_factory=dict)
    refusals: Counter[str] = field(default_factory=Counter)  # failed/deferred, by reason

    def counts_line(self) -> str:
        """The rows this run settled, in the words and order `digest status` uses."""
        if self.for_workers:
            return f"{self.queued} queued for the workers (`digest worker` sends them)"
        line = count_words(self.counts)
        if self.bounced:
            failed = self.counts[DeliveryStatus.FAILED]
            line = line.replace(
                f"{failed} failed", f"{failed} failed ({self.bounced} bounced: address suppressed)"
            )
        return line

    def refused_all(self) -> bool:
        """Every message this run tried failed (none sent), not for a dead address: the
        server or the setup is at fault (a login it wants, a relay it denies, a connection
        lost after the data: fate unknown), so the run failed and wants the admin, however
        few the messages, though no error budget was spent."""
        failed = self.counts[DeliveryStatus.FAILED] - self.bounced
        return failed > 0 and not self.counts[DeliveryStatus.SENT]

    def next_step(self, edition_id: int | None) -> str:
        """What the admin does about the rows this run left failed or deferred, or ""."""
        retry = f"`digest retry {edition_id}`" if edition_id is not None else "`digest retry`"
        steps = []
        if self.counts[DeliveryStatus.FAILED] - self.bounced > 0:
            steps.append(f"fix the cause of the failed ones, then {retry} sends them again")
        if self.paused:
            steps.append(f"fix the cause, then {retry} sends the {self.paused} paused ones")
        elif self.stopped:
            steps.append(
                "fix the cause, then `digest retry --due` (or the next run) sends the ones "
                "still queued"
            )
        if self.counts[DeliveryStatus.DEFERRED]:
            steps.append(
                "the deferred ones are tried again when their wait is over (the daemon's "
                f"retry job, or `digest retry --due` under cron); {retry} tries them now"
            )
        return "; ".join(steps)

    def doubt_notes(self) -> list[str]:
        """One line per reason readers refused as unknown again stay doubted, with the fix."""
        return [
            still_doubted_words(why, len(emails), emails)
            for why, emails in self.still_doubted.items()
        ]

    def in_flight_note(self) -> str:
        """One line naming the rows in flight elsewhere and when they come back, or ""."""
        if not self.in_flight:
            return ""
        when = utc_time(self.back_at, seconds=True) if self.back_at else "their lease's end"
        return (
            f"{self.in_flight} in flight, held by another sender; if it stopped, they are "
            f"pending again at {when} and the next send (or a worker) sends them"
        )


def count_words(counts: Mapping[str, int]) -> str:
    """Rows per state as "3 sent, 1 deferred, 1 failed": one wording for every command
    (the row's state, as stored), in the order a row moves through them."""
    order = {state: i for i, state in enumerate(DELIVERY_STATES)}
    return ", ".join(
        f"{n} {state}"
        for state, n in sorted(counts.items(), key=lambda kv: order.get(kv[0], 99))
        if n
    )


SHOWN_ADDRESSES = 5  # addresses a still-doubted line names


def still_doubted_words(why: str, rows: int, emails: Sequence[str]) -> str:
    """Readers refused as unknown again and still not suppressed, in the words the run's
    output and `digest status` share: how many, why, and the fix (the first few named)."""
    named = ", ".join(emails[:SHOWN_ADDRESSES]) + (", ..." if rows > SHOWN_ADDRESSES else "")
    return (
        f"{rows} {why}: if those addresses are really gone, `digest subscribers remove EMAIL` "
        f"for each ({named}); if not, check the relay"
    )


def refusal_reason(detail: str) -> str:
    """A refusal's reason without its address or ids: the server's code and first words
    (an address a server repeats would make each refusal a reason of its own), never a
    bracket left open by the cut ("connection lost twice", not "... twice (421")."""
    words = [w for w in detail.split() if "@" not in w]  # "<ana@example.org>:" and the like
    head = " ".join(words[:6])[:80]
    if head.count("(") > head.count(")"):
        head = head[: head.rindex("(")].rstrip(" ;:,")
    return head or "no reason given"
