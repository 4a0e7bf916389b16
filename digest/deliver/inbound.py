"""Mail that comes back: bounce reports and mailto unsubscribe requests, weighed and acted on.

Anyone can send digest a DSN naming any address, or an "unsubscribe" naming anyone, so
nothing here trusts what a message says about who it is for. A bounce suppresses a reader
only with proof that it answers mail digest sent them:

- it came back to a VERP address (``bounce+TOKEN@verp_domain``) whose signed token is
  genuine: then it is that token's reader who bounced, whatever address the report names
  (a forwarding target, say), and nobody else;
- without VERP (``delivery.verp_domain`` unset), it quotes the Message-ID of a delivery
  that went to the address it reports as failed.

With ``verp_domain`` set, every digest leaves with a VERP sender, so a report that did not
come back to one is refused. An unsubscribe request is mail sent to the List-Unsubscribe
address, and acts only on a genuine unsubscribe token, the same the https link carries;
bounces that are no DSN, auto-replies, and other automatic mail without the token in its
subject quote the digest, token and all, and are no request (see ``unsubscribes``).
Everything refused or ignored is reported with the reason.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from email.message import Message
from enum import StrEnum
from typing import Protocol

from digest.deliver.bounces import (
    Bounce,
    bounces_in,
    is_report,
    quoted_message_ids,
    verp_recipient,
)
from digest.deliver.unsubscribes import (
    Candidates,
    automatic_sign,
    bounce_sign,
    is_automatic_reply,
    is_mailto_reply,
    is_unsubscribe_request,
    says_unsubscribe,
    sender_of,
    subject_of,
    token_candidates,
)
from digest.links import Keys, read_token, read_verp
from digest.states import SubscriberStatus
from digest.store import Subscriber
from digest.subscribers import stored_form


class InboundStore(Protocol):
    """The store methods that reading returned mail needs."""

    def subscriber_by_email(self, email: str) -> Subscriber | None: ...
    def subscriber_by_public_id(self, public_id: str) -> Subscriber | None: ...
    def message_recipients(self, message_ids: Collection[str]) -> dict[str, int]: ...
    def suppress_subscriber(
        self, subscriber_id: int, status: str = SubscriberStatus.BOUNCED, by: str = ""
    ) -> bool: ...
    def unsubscribe(
        self, *, email: str | None = None, public_id: str | None = None, by: str = ...
    ) -> bool: ...


@dataclass(frozen=True)
class InboundRules:
    """What a returned message is checked against (from the config)."""

    secret: Keys
    verp_domain: str | None  # set: only a bounce to a genuine VERP address counts
    unsubscribe_address: str  # the mailto: of List-Unsubscribe


class Verdict(StrEnum):
    """What became of one bounce or request."""

    SUPPRESSED = "suppressed"
    KEPT = "kept"  # a permanent failure that may pass another day: reported only
    UNSUBSCRIBED = "unsubscribed"
    UNCHANGED = "unchanged"  # the reader had already left
    IGNORED = "ignored"  # not about a subscriber, or not a report or request at all
    REFUSED = "refused"  # no proof it answers our mail, or a token that is not genuine


@dataclass(frozen=True)
class Outcome:
    """One line of the report."""

    verdict: Verdict
    line: str


@dataclass
class InboundReport:
    """What one pass over a mailbox (or one piped message) did."""

    messages: int = 0
    reports: int = 0  # DSNs naming a permanent failure
    requests: int = 0  # unsubscribe requests
    outcomes: list[Outcome] = field(default_factory=list)

    def count(self, verdict: Verdict) -> int:
        """How many bounces or requests ended so."""
        return sum(o.verdict is verdict for o in self.outcomes)

    def summary(self) -> str:
        """The closing line."""
        return (
            f"{self.messages} messages read, {self.reports} bounce reports, "
            f"{self.count(Verdict.SUPPRESSED)} addresses suppressed, "
            f"{self.requests} unsubscribe requests, "
            f"{self.count(Verdict.UNSUBSCRIBED)} unsubscribed, "
            f"{self.count(Verdict.REFUSED)} refused"
        )


def handle_inbound(
    messages: Iterable[Message], store: InboundStore, rules: InboundRules
) -> InboundReport:
    """Weigh every message and act on the genuine ones: see the module docstring."""
    report = InboundReport()
    for message in messages:
        report.messages += 1
        if is_report(message):
            found = bounces_in(message)
            report.reports += bool(found)
            report.outcomes.extend(_bounces(message, found, store, rules))
        else:
            request, outcome = _weigh(message, store, rules)
            report.requests += request
            report.outcomes.append(outcome)
    return report


def _weigh(message: Message, store: InboundStore, rules: InboundRules) -> tuple[bool, Outcome]:
    """A message that is no DSN: whether it is an unsubscribe request, and what became of
    it. Mail that answers the digest quotes it, its unsubscribe token with it (in the
    List-Unsubscribe header, in the footer's link): only a reply to the mailto counts."""
    address = rules.unsubscribe_address
    # A reader whose address is postmaster@ replies to the mailto like anyone else.
    if bounce := bounce_sign(message, mailto_reply=is_mailto_reply(message, address)):
        return False, _other(message, f"a bounce ({bounce}; no delivery status report)")
    if is_automatic_reply(message):
        return False, _other(message, "an automatic reply")
    if not is_unsubscribe_request(message, address):
        if says_unsubscribe(message):
            why = (
                f"it says unsubscribe but was not sent to {address}, the List-Unsubscribe "
                "address (a reply to the digest, an answer quoting it); nobody unsubscribed"
            )
            return False, _other(message, why)
        return False, _other(message, "not a bounce report or unsubscribe request")
    automatic = automatic_sign(message)
    # A program's mail counts by the token in its subject (a mail provider's one-click
    # request sends the mailto as it is), never by the digest its body may quote.
    candidates = token_candidates(message, body=not automatic)
    if automatic and not candidates.subject:
        why = (
            f"automatic mail ({automatic}) without the unsubscribe token in its subject: "
            "what its body quotes is no request"
        )
        return False, _other(message, why)
    return True, _unsubscribe(message, candidates, store, rules)


def _bounces(
    message: Message, found: list[Bounce], store: InboundStore, rules: InboundRules
) -> list[Outcome]:
    if not found:  # a "delayed" report, or one of only temporary failures
        return []
    verp = verp_recipient(message)
    if verp:
        # The token names the subscriber even when the failed address was a forwarding
        # target; the address the report names counts for nothing.
        public_id = read_verp(rules.secret, verp)
        if public_id is None:
            why = (
                f"it came back to {verp}, whose token is not genuine (forged, or signed "
                "with another secret); nobody suppressed"
            )
            return [_refused(b, why) for b in found]
        owner = store.subscriber_by_public_id(public_id)
        if owner is None:
            why = "its VERP token names no subscriber (removed since?); ignored"
            return [Outcome(Verdict.IGNORED, f"  {_head(b)}: {why}") for b in found]
        return [_judge(b, owner, store) for b in found]
    if rules.verp_domain:
        why = (
            f"it came back to {_recipient(message)}, not to a bounce+TOKEN@"
            f"{rules.verp_domain} address: digest sends with VERP (delivery.verp_domain), "
            "so a genuine bounce names its reader by that token; nobody suppressed"
        )
        return [_refused(b, why) for b in found]
    quoted = quoted_message_ids(message)
    sent_to = set(store.message_recipients(quoted).values())
    outcomes = []
    for bounce in found:
        subscriber = store.subscriber_by_email(stored_form(bounce.address))
        if subscriber is None:
            line = f"  {_head(bounce)}: not a subscriber; ignored"
            outcomes.append(Outcome(Verdict.IGNORED, line))
        elif subscriber.id in sent_to:
            outcomes.append(_judge(bounce, subscriber, store))
        elif not quoted:
            why = (
                "it quotes no Message-ID (the returned message or its headers), so nothing "
                "shows it answers a digest sent there; nobody suppressed"
            )
            outcomes.append(_refused(bounce, why))
        else:
            why = (
                f"the Message-ID it quotes ({', '.join(sorted(quoted))}) is of no digest "
                "sent to this address; nobody suppressed"
            )
            outcomes.append(_refused(bounce, why))
    return outcomes


def _judge(bounce: Bounce, subscriber: Subscriber, store: InboundStore) -> Outcome:
    """The proven reader of a bounce: suppressed when the address is dead."""
    head = _head(bounce)
    diagnostic = bounce.diagnostic or "no diagnostic"
    who = "" if subscriber.email == stored_form(bounce.address) else f" {subscriber.email}"
    if not bounce.dead:
        return Outcome(Verdict.KEPT, f"  {head}: permanent failure kept active ({diagnostic})")
    if subscriber.id is not None and store.suppress_subscriber(
        subscriber.id, SubscriberStatus.BOUNCED, "a bounce message to the return address"
    ):
        return Outcome(Verdict.SUPPRESSED, f"  {head}: suppressed{who} ({diagnostic})")
    return Outcome(Verdict.UNCHANGED, f"  {head}:{who or ' they'} had already left; unchanged")


def _unsubscribe(
    message: Message, candidates: Candidates, store: InboundStore, rules: InboundRules
) -> Outcome:
    head = f"  unsubscribe request from {sender_of(message)}"
    if not candidates.subject and not candidates.body:
        why = "no unsubscribe token in its subject or body; nobody unsubscribed"
        return Outcome(Verdict.REFUSED, f"{head}: refused: {why}")
    # The subject is what the mailto: sets; the body only when the subject has no token.
    readers: list[str] = []
    for group in (candidates.subject, candidates.body):
        for token in group:
            public_id = read_token(rules.secret, "unsubscribe", token)
            if public_id is not None and public_id not in readers:
                readers.append(public_id)
        if readers:
            break
    if not readers:
        why = (
            "its token is not genuine (mangled, forged, or signed with another secret); "
            "nobody unsubscribed"
        )
        return Outcome(Verdict.REFUSED, f"{head}: refused: {why}")
    if len(readers) > 1:
        why = f"its tokens name {len(readers)} different readers; nobody unsubscribed"
        return Outcome(Verdict.REFUSED, f"{head}: refused: {why}")
    subscriber = store.subscriber_by_public_id(readers[0])
    if subscriber is None:
        return Outcome(Verdict.IGNORED, f"{head}: its token names no subscriber; ignored")
    if store.unsubscribe(public_id=readers[0], by="an unsubscribe email (mailto)"):
        return Outcome(Verdict.UNSUBSCRIBED, f"{head}: {subscriber.email} unsubscribed")
    line = f"{head}: {subscriber.email} had already left; unchanged"
    return Outcome(Verdict.UNCHANGED, line)


def _other(message: Message, what: str) -> Outcome:
    subject = " ".join(subject_of(message).split())[:60]
    line = f"  message from {sender_of(message)} ({subject!r}): {what}; ignored"
    return Outcome(Verdict.IGNORED, line)


def _refused(bounce: Bounce, why: str) -> Outcome:
    return Outcome(Verdict.REFUSED, f"  {_head(bounce)}: refused: {why}")


def _head(bounce: Bounce) -> str:
    return f"{bounce.address}: {bounce.status}"


def _recipient(message: Message) -> str:
    for header in ("Delivered-To", "X-Original-To", "To"):
        if message.get(header):
            return " ".join(str(message[header]).split())
    return "an address of its own"
