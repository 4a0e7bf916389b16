"""The plain typed records that flow between the stages: sources -> rank -> render -> deliver.

Each stage takes and returns these, never ORM rows, so every stage's core is testable alone.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime
from typing import Protocol

# What no database column should hold: NUL (PostgreSQL refuses it), other C0 controls but
# tab and line breaks, and lone UTF-16 surrogates (a JSON feed's "\ud800": UTF-8 cannot
# encode it, so the whole insert would fail).
_UNSTORABLE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ud800-\udfff]")


def storable(text: str) -> str:
    """``text`` with the characters no database can store replaced (U+FFFD) or dropped."""
    if text.isascii() and text.isprintable():
        return text
    return _UNSTORABLE.sub(lambda m: "" if m[0] < " " else "\ufffd", text)


# Characters that show nothing yet change what a reader sees or what a filter matches: the
# explicit bidi controls (U+202E turns "gpj.exe" around, and an unclosed one turns the rest
# of a subject line or a text part around with it), zero-width spaces, word joiners and
# invisible operators, byte-order marks, the soft hyphen, Hangul fillers (a "blank" name)
# and Unicode tag characters (invisible ASCII). Kept: LRM/RLM/ALM, which right-to-left text
# uses to place its punctuation and which reorder nothing beyond themselves; variation
# selectors; and ZWJ/ZWNJ where they join (below).
_HIDDEN = (
    "\u00ad\u115f\u1160\u180e\u200b\u202a-\u202e\u2060-\u2064\u2066-\u206f\u3164"
    "\ufeff\uffa0\ufff9-\ufffb"
)
# ZWJ and ZWNJ shape Persian, Indic and emoji sequences (between two characters beyond
# ASCII); anywhere else (in Latin text, at an edge, beside a space) they only hide.
_JOINER = "\u200c\u200d"
# A run of tag characters, unless it follows the black flag (a subdivision flag: England).
_TAGS = "(?<![\U0001f3f4\U000e0000-\U000e007f])[\U000e0000-\U000e007f]+"
INVISIBLE = re.compile(
    f"[{_HIDDEN}]|(?<![^\\x00-\\x7f\\s{_JOINER}])[{_JOINER}]|[{_JOINER}](?![^\\x00-\\x7f\\s])"
    f"|{_TAGS}"
)
# Every one of them, joiners too: in an address none of them is text (``invisible_encoded``).
_ANY_INVISIBLE = re.compile(f"[{_HIDDEN}{_JOINER}\U000e0000-\U000e007f]")
_SPACES = re.compile(" {2,}")


def strip_invisible(text: str) -> str:
    """``text`` without the invisible characters that disguise it (bidi overrides, zero-width
    characters, byte-order marks); spaces they stood between become one.

    Every text that reaches an email goes through this (FeedItem does it on creation), so a
    headline cannot reverse the subject line it ends up in, nor hide from deduplication.
    """
    # One character class finds none in most texts; the alternation walks every position.
    if text.isascii() or _ANY_INVISIBLE.search(text) is None:
        return text
    cleaned = INVISIBLE.sub("", text)
    if len(cleaned) == len(text):
        return text
    return _SPACES.sub(" ", cleaned).strip()


def invisible_encoded(url: str) -> str:
    """``url`` with its invisible characters percent-encoded: the same address (a browser
    sends them encoded), which can no longer turn around the text it is printed in."""
    if url.isascii():
        return url
    return _ANY_INVISIBLE.sub(lambda m: "".join(f"%{b:02X}" for b in m[0].encode()), url)


# The FeedItem fields a reader sees as text (not its links, guid or language tag).
_TEXT_FIELDS = ("title", "summary", "author", "image_alt", "section")


@dataclass(frozen=True)
class FeedItem:
    """One entry read from a feed: text only, already sanitised, link already canonical.

    Every text field is made storable on creation, whichever reader built it, so one
    feed's broken character cannot fail the batch that stores other sources' articles; the
    fields shown as text also lose their invisible characters (``strip_invisible``).
    """

    guid: str
    url: str
    title: str
    summary: str
    author: str | None
    published_at: datetime | None
    modified_at: datetime | None = None
    image_url: str | None = None
    image_alt: str | None = None
    language: str | None = None
    section: str | None = None
    breaking: bool = False  # the source itself marks it breaking (section, label, live flag)
    # The picture's size as the source states it, or its address writes it (The Guardian's
    # crop), both or neither: its shape in the email.
    image_width: int | None = None
    image_height: int | None = None
    # The link as the feed wrote it (canonical), when ``url`` is the article's own address
    # behind it (FeedBurner's origLink, a redirector's target); None when they are one. An
    # item without an id of its own keeps it as its guid: its identity is what it was.
    feed_link: str | None = None

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, str):
                clean = storable(value)
                if f.name in _TEXT_FIELDS:
                    clean = strip_invisible(clean)
                if clean is not value:
                    object.__setattr__(self, f.name, clean)


@dataclass(frozen=True)
class ArticleRecord:
    """A stored article as the ranker sees it, with its source's configured weight and topics."""

    id: int
    source: str
    title: str
    url: str
    summary: str
    published_at: datetime
    source_weight: float = 1.0
    topics: tuple[str, ...] = ()
    breaking: bool = False  # flagged breaking by its own source
    image_url: str | None = None
    image_alt: str | None = None
    # The story it belongs to (the id of the story's first article), once clustered.
    story_id: int | None = None
    # When digest first stored it (the velocity signal); None: count from published_at.
    first_seen_at: datetime | None = None
    language: str | None = None  # the feed's or page's language tag: how its words stem
    # The picture's size as the source stated it or its address wrote it (both or neither):
    # the email keeps its shape.
    image_width: int | None = None
    image_height: int | None = None

    @property
    def seen_at(self) -> datetime:
        """When it reached digest: first_seen_at, else published_at."""
        return self.first_seen_at or self.published_at


@dataclass(frozen=True)
class Signal:
    """One named part of a story's score: its raw value and what it added."""

    name: str
    value: float
    contribution: float


@dataclass(frozen=True)
class Story:
    """Articles that tell the same story; ``lead`` supplies the headline shown."""

    lead: ArticleRecord
    others: tuple[ArticleRecord, ...]
    score: float
    signals: tuple[Signal, ...]
    # An earlier edition sent it, and it has grown since (new sources, a new headline):
    # shown marked as an update.
    update: bool = False
    # An earlier edition sent it, and it has not grown since: left out of the edition.
    repeat: bool = False

    @property
    def sources(self) -> tuple[str, ...]:
        """Distinct source names carrying the story, the lead's first."""
        # A dict keeps the first-seen order in linear time: a running story carries
        # hundreds of articles, and a list's `in` made this quadratic.
        return tuple(dict.fromkeys((self.lead.source, *(a.source for a in self.others))))

    @property
    def topics(self) -> frozenset[str]:
        """Every topic of every source carrying the story."""
        return frozenset(t for a in (self.lead, *self.others) for t in a.topics)

    @property
    def story_id(self) -> int:
        """The story's stable id (its first article's), matched across editions."""
        return self.lead.story_id if self.lead.story_id is not None else self.lead.id

    @property
    def also(self) -> tuple[ArticleRecord, ...]:
        """One article per other source (its first listed), for "Also: ..." under the lead."""
        seen = {self.lead.source}
        picked = []
        for a in self.others:
            if a.source not in seen:
                seen.add(a.source)
                picked.append(a)
        return tuple(picked)


@dataclass(frozen=True)
class RankedEdition:
    """What goes into one edition: the breaking stories, then the latest ones."""

    breaking: tuple[Story, ...]
    latest: tuple[Story, ...]
    # How many stories the window held, those past the section sizes and the cap too.
    candidates: int = 0
    # Of those, how many were left out as sent by an earlier edition and not grown since
    # (stored with the edition), and those stories, best first (as ranked; not stored).
    repeats: int = 0
    repeated: tuple[Story, ...] = ()
    # Stories passed over for Latest as their source had latest_per_source there already,
    # best first: not in the edition, so not sent (candidates of a later one); not stored.
    capped: tuple[Story, ...] = ()
    # Stories the edition of some choice of topics shows beyond this edition's own (or
    # with another lead): stored with it ("extra"), so a send renders them; never in what
    # every reader was sent (the repeat rule reads Breaking and Latest).
    extra: tuple[Story, ...] = ()
    # Each choice of topics' own edition (its key: sorted, comma-joined), worked out at
    # the build with its memory (``rank``'s ``choices``); stored apart as views.
    views: Mapping[str, RankedEdition] = field(default_factory=dict)

    @property
    def count(self) -> int:
        """How many stories the edition carries."""
        return len(self.breaking) + len(self.latest)


@dataclass(frozen=True)
class RenderedEdition:
    """An edition rendered once: subject, inlined HTML and text, holding personalisation tokens."""

    subject: str
    html: str
    text: str
    omitted: int = 0  # stories dropped to keep the HTML under Gmail's clip (on the web view)


class Reader(Protocol):
    """What sending reads of a subscriber: a stored ``Subscriber``, or the claim's plain
    record of one (``store.claims.ClaimedSubscriber``)."""

    @property
    def id(self) -> int | None: ...
    @property
    def email(self) -> str: ...
    @property
    def name(self) -> str | None: ...
    @property
    def public_id(self) -> str: ...
    @property
    def topics(self) -> str: ...
    @property
    def timezone(self) -> str | None: ...
    @property
    def locale(self) -> str | None: ...


@dataclass(frozen=True)
class Recipient:
    """One subscriber as delivery needs them: address, name and personal links."""

    subscriber_id: int
    email: str
    name: str | None
    unsubscribe_url: str
    unsubscribe_mailto: str
    preferences_url: str
    bounce_address: str | None = None  # VERP envelope sender, when configured


@dataclass(frozen=True)
class MessageFields:
    """One recipient's message as an HTTP API wants it: fields, not MIME bytes.

    ``subject``, ``text`` and ``html`` are the edition's, still holding their tokens (the
    HTML body's tokens are spelled apart from the text's, so one flat substitution table
    serves both); ``values`` maps every token to this recipient's value, HTML-escaped for
    the HTML tokens. ``headers`` are the list headers, with this recipient's values.
    """

    sender: str  # From, with display name
    reply_to: str | None
    to: str  # the address alone
    to_name: str | None
    subject: str
    text: str
    html: str
    headers: dict[str, str]
    values: dict[str, str]

    def render(self, body: str) -> str:
        """``body`` with this recipient's values in place of its tokens."""
        for token, value in self.values.items():
            body = body.replace(token, value)
        return body


@dataclass(frozen=True)
class OutgoingMessage:
    """Bytes ready for the wire, and who they go to.

    ``fields`` is set, and ``data`` left empty, for a transport that asks for fields
    (``wants_fields = True``): HTTP APIs build their own MIME. ``crlf``: every line of
    ``data`` ends in CRLF, no CR or LF stands alone (a personalised template's bytes), so
    the SMTP transport need not look (two scans of the message, a sixth of a send's CPU).
    ``dot_safe``: no line of ``data`` starts with a dot either (qp.encode writes one as
    ``=2E``), so SMTP's dot-stuffing has nothing to double and the transport sends the bytes
    as they are (its scan for them cost 30 us a 41 KB message, the GIL held).
    """

    delivery_id: int
    sender: str
    recipient: str
    message_id: str
    data: bytes = field(repr=False)
    fields: MessageFields | None = field(default=None, repr=False)
    crlf: bool = False
    dot_safe: bool = False


@dataclass(frozen=True)
class SendResult:
    """What the transport said about one message.

    ``status``: sent; deferred (4xx: retried after its wait); failed (5xx); bounced (5.1.x: the
    address is dead, the row fails and the subscriber is suppressed); skipped (nothing of
    the edition is in their topics: decided before sending, final).
    """

    delivery_id: int
    status: str  # a digest.states.SendStatus
    detail: str = ""


@dataclass(frozen=True)
class EarlierEditions:
    """Which earlier editions' stories a digest's readers had: the digest's last ``limit``
    before ``before``, every one since ``since`` (the story memory), of the ``slots`` only
    for a local-time digest, and the ``others`` digests' within the story memory. Worked
    out by ``editions.views.earlier_editions``; what the store's reads of earlier
    editions (their stories, their views, their ids) take."""

    digest_id: str
    before: datetime
    limit: int
    slots: list[datetime] | None
    since: datetime
    others: list[str]


@dataclass(frozen=True)
class EarlierStored:
    """The earlier editions (``EarlierEditions``) as stored, read at once: each one's
    stories JSON (``stories``: edition id -> ``editions.stored.ranked_to_json``, the
    newest built first) and the views of the choices of topics asked for (``views``:
    topic key -> edition id -> ``editions.stored.view_to_json``)."""

    stories: Mapping[int, str]
    views: Mapping[str, Mapping[int, str]]
