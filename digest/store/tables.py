"""The database tables. Changing one means a new alembic migration (a test checks both agree)."""

from __future__ import annotations

import secrets
from datetime import datetime

from sqlalchemy import (
    Column,
    Index,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlmodel import Field, SQLModel

from digest.states import (
    CLAIM_PATH_STATES,
    CLAIMABLE_DELIVERY_STATES,
    DeliveryStatus,
    SourceStatus,
    SubscriberStatus,
    WorkerRole,
    WorkerState,
    sql_in,
    sql_not_in,
)

# Named here too: migrations name the store's column types from this module (test_layers).
from digest.store.columns import UTCDateTime as UTCDateTime
from digest.store.columns import one_of, when


class Source(SQLModel, table=True):
    """A source from the config, with its fetch health. Known by its configured name."""

    __tablename__ = "sources"
    __table_args__ = (one_of("sources", "status", SourceStatus),)
    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True)
    url: str  # as configured
    # Where to fetch now: the configured URL, or where a 301/308 moved it (reset when the
    # configured URL changes).
    fetch_url: str | None = None
    etag: str | None = None  # validators for conditional GET: a 304 costs nothing
    last_modified: str | None = None
    status: str = Field(
        default=SourceStatus.ACTIVE, sa_column_kwargs={"server_default": SourceStatus.ACTIVE.value}
    )
    # active | gone (answered 410: not fetched again until its configured URL changes)
    next_attempt_at: datetime | None = when(nullable=True)  # backoff / Retry-After
    last_attempt_at: datetime | None = when(nullable=True)
    last_success_at: datetime | None = when(nullable=True)
    consecutive_failures: int = 0
    last_error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    # What to do about last_error, as `digest gather` said it: `digest sources` and the
    # console show it beside the error, so the fix is there after the run's output is gone.
    last_hint: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    items_seen: int = 0
    # The ids of the articles its last full read (a 200) listed, comma-separated: a 304
    # means "still that list", so only these are marked as still listed, and an article
    # the feed dropped long ago is pruned after retention even if the feed answers 304
    # from then on. None until a full read since migration 0014: a 304 marks them all.
    listing: str | None = Field(default=None, sa_column=Column(Text, nullable=True))


class Article(SQLModel, table=True):
    """One article, once: unique per source by guid, and looked up by canonical URL."""

    __tablename__ = "articles"
    __table_args__ = (
        UniqueConstraint("source_id", "guid", name="uq_articles_source_guid"),
        Index("ix_articles_url", "url"),
        Index("ix_articles_published_at", "published_at"),
    )
    id: int | None = Field(default=None, primary_key=True)
    source_id: int = Field(foreign_key="sources.id", index=True)
    guid: str
    url: str
    title: str
    summary: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    author: str | None = None
    published_at: datetime = when()
    first_seen_at: datetime = when(index=True)
    modified_at: datetime | None = when(nullable=True)
    image_url: str | None = None
    image_alt: str | None = None
    # The picture's size as the source states it, both or neither (migration 0018).
    image_width: int | None = None
    image_height: int | None = None
    language: str | None = None
    section: str | None = None
    # The source itself marks it as breaking (a breaking section, label or live flag).
    breaking: bool = Field(default=False, sa_column_kwargs={"server_default": false()})
    content_hash: str | None = Field(default=None, index=True)  # identity of last resort
    # When a gather last found it in its source (refreshed every few hours, not every
    # gather): pruning goes by it, so an item its feed still lists is kept, not stored again
    # as new. None on rows stored before migration 0009: first_seen_at stands in.
    last_seen_at: datetime | None = when(nullable=True, index=True)
    # The story it tells, named by the id of the story's first article (rank.StoryIndex);
    # None until a rank run has placed it. Stored so stories keep their ids across runs.
    story_id: int | None = Field(default=None, index=True)


class Subscriber(SQLModel, table=True):
    """A person who receives digests. ``public_id`` is the random id inside signed links."""

    __tablename__ = "subscribers"
    __table_args__ = (one_of("subscribers", "status", SubscriberStatus),)
    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(unique=True)
    name: str | None = None
    public_id: str = Field(unique=True)
    status: str = Field(
        default=SubscriberStatus.ACTIVE, index=True
    )  # active | unsubscribed | bounced
    topics: str = ""  # comma-separated; empty means every topic
    timezone: str | None = None  # dates in their email; None: the digest's time zone
    locale: str | None = None  # language of their email; None: the service's locale
    created_at: datetime = when()
    unsubscribed_at: datetime | None = when(nullable=True)


class Edition(SQLModel, table=True):
    """One issue of one digest for one scheduled slot, stored rendered so it can be re-sent."""

    __tablename__ = "editions"
    __table_args__ = (UniqueConstraint("digest_id", "slot", name="uq_editions_digest_slot"),)
    id: int | None = Field(default=None, primary_key=True)
    digest_id: str
    slot: datetime = when()
    created_at: datetime = when()
    subject: str
    html: str = Field(sa_column=Column(Text, nullable=False))
    text: str = Field(sa_column=Column(Text, nullable=False))
    story_count: int = 0
    # The ranked stories as JSON (editions.stored.ranked_to_json), so subscribers in another time
    # zone or language get the same edition rendered for them.
    stories: str = Field(default="", sa_column=Column(Text, nullable=False, server_default=""))
    # A random key of this edition in its deliveries' Message-IDs, made when it is built: a
    # copy of the database (a staging install with the same secret and base_url) numbers
    # its next editions and deliveries as production does, and would repeat production's
    # ids (Gmail hides a message whose id it has seen). None: built before keys existed.
    message_key: str | None = Field(default_factory=lambda: secrets.token_urlsafe(16))


class EditionView(SQLModel, table=True):
    """One choice of topics' own edition (``topic_key``: sorted, comma-joined), worked out
    and stored when the edition is built, with it (migration 0025): ``view`` is JSON
    (``editions.stored.view_to_json``): its stories in order, each by id, lead and update
    flag; the stories themselves are the edition's, those it shows beyond the edition's
    own in the edition's ``extra`` (that choice's memory for later builds: a view stored
    before carries its own copy, "had"). Read by the send (its readers get exactly this)
    and by the builds of later editions; pruned once out of their look-back, and the
    edition's ``extra`` with the last of them."""

    __tablename__ = "edition_views"
    edition_id: int = Field(foreign_key="editions.id", primary_key=True)
    topic_key: str = Field(primary_key=True)
    view: str = Field(sa_column=Column(Text, nullable=False))


# The rows the claimable index holds: those still to send (now, after a retry wait) or in
# flight; every sent or failed row leaves it.
CLAIMABLE = sql_in("status", CLAIMABLE_DELIVERY_STATES)
# The rows off the claim's path (every state but pending and sending): a claim writes no
# entry into an index of these. Its queries name their statuses as SQL literals
# (store.delivery_rows): a bound status cannot be matched to a partial index by
# PostgreSQL's generic plans nor by SQLite.
OFF_CLAIM_PATH = sql_not_in("status", CLAIM_PATH_STATES)
# Rows that carry a Message-ID: those a sender recorded, never a pending or claimed one.
WITH_MESSAGE_ID = "message_id IS NOT NULL"
# Per cent of each deliveries page PostgreSQL fills with new rows: every row is updated
# three times (claimed, its attempt counted, its result recorded), and a new version that
# fits on its own page costs no new page, and none of the index writes when no indexed
# column changed (the attempt). At 70 the claim's versions took the room and 40% of the
# attempts still moved. Set by migration 0023 (the schema is made by the migrations; a
# Table's postgresql_with needs SQLAlchemy 2.1); a PostgreSQL test holds the two together.
DELIVERIES_FILLFACTOR = 50


class Delivery(SQLModel, table=True):
    """One row per edition x subscriber: the single source of truth for 'was this sent?'."""

    __tablename__ = "deliveries"
    __table_args__ = (
        UniqueConstraint("edition_id", "subscriber_id", name="uq_deliveries_edition_subscriber"),
        one_of("deliveries", "status", DeliveryStatus),
        Index("ix_deliveries_edition_status", "edition_id", "status"),
        # The sending limits count what was sent in the last second, minute, hour and day;
        # the metrics find the paused rows. Partial (off the claim's path) and the one
        # below (rows with a Message-ID), so a claim writes neither: each claim updates
        # every index of its rows but these (migration 0019).
        Index(
            "ix_deliveries_status_sent_at_off_claim",
            "status",
            "sent_at",
            postgresql_where=text(OFF_CLAIM_PATH),
            sqlite_where=text(OFF_CLAIM_PATH),
        ),
        # A bounce report without VERP is believed only when it quotes one of our
        # Message-IDs: `digest bounces process` looks them up.
        Index(
            "ix_deliveries_message_id",
            "message_id",
            postgresql_where=text(WITH_MESSAGE_ID),
            sqlite_where=text(WITH_MESSAGE_ID),
        ),
        # The claim's pick: only rows still to send, in id order per edition. Partial, so it
        # stays small however many sent rows earlier editions left, and the planner takes
        # it even before ANALYZE has seen a newly queued edition.
        Index(
            "ix_deliveries_claimable",
            "edition_id",
            "id",
            postgresql_where=text(CLAIMABLE),
            sqlite_where=text(CLAIMABLE),
        ),
    )
    id: int | None = Field(default=None, primary_key=True)
    edition_id: int = Field(foreign_key="editions.id")
    subscriber_id: int = Field(foreign_key="subscribers.id", index=True)
    # pending -> sending (claimed, until lease_until) -> sent | deferred (a 4xx: retried after
    # retry_at) | failed (permanent, with the server's words) | suppressed (subscriber left
    # first); pending -> paused (the error budget stopped the edition: until `digest retry`)
    status: str = DeliveryStatus.PENDING
    attempts: int = 0
    message_id: str | None = None
    error: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    updated_at: datetime = when()
    sent_at: datetime | None = when(nullable=True)
    # A claimed row belongs to the sender that claimed it until then; after a crash it
    # returns to pending (so at most the messages in flight at the crash go out twice).
    lease_until: datetime | None = when(nullable=True)
    # Which claim holds the row: finishing, releasing and renewing need it, so a sender
    # whose lease ran out (and whose rows another sender took) cannot overwrite theirs.
    claim_token: str | None = None
    # A deferred row (a 4xx) is not tried again before this: exponential backoff, jitter.
    retry_at: datetime | None = when(nullable=True)


class DigestStart(SQLModel, table=True):
    """When the daemon first scheduled a digest on its plan of now (a reload that moved its
    schedule counts from then): a slot before that was never owed nor missed, so a first
    start on a fresh database catches nothing up, and a schedule moved earlier is not
    said to have missed the slot the old one never had."""

    __tablename__ = "digest_starts"
    digest_id: str = Field(primary_key=True)
    scheduled_at: datetime = when()


class JobRun(SQLModel, table=True):
    """The last run of one job (a digest's send, the gathering): what `status` shows. A
    send run by hand (`digest send`) has a row of its own, ``send ID (manual)``."""

    __tablename__ = "job_runs"
    job: str = Field(primary_key=True)
    started_at: datetime = when()
    finished_at: datetime = when()
    ok: bool
    summary: str = Field(sa_column=Column(Text, nullable=False))


class Admin(SQLModel, table=True):
    """An account of the admin console (`digest admins add`): an argon2 hash, never the
    password. ``generation`` is in every session cookie: raising it ends every session."""

    __tablename__ = "admins"
    id: int | None = Field(default=None, primary_key=True)
    email: str = Field(unique=True)
    password_hash: str
    generation: int = 1
    created_at: datetime = when()
    last_login_at: datetime | None = when(nullable=True)


class SubscriberEvent(SQLModel, table=True):
    """One change of a subscriber's status: when, from what (None: the row was made), to
    what, and what made it (a link, a bounce, an admin): the history on their console page."""

    __tablename__ = "subscriber_events"
    __table_args__ = (
        one_of("subscriber_events", "from_status", SubscriberStatus),  # NULL passes a CHECK
        one_of("subscriber_events", "to_status", SubscriberStatus),
    )
    id: int | None = Field(default=None, primary_key=True)
    subscriber_id: int = Field(foreign_key="subscribers.id", index=True)
    at: datetime = when()
    from_status: str | None = None
    to_status: str
    by: str = Field(sa_column=Column(Text, nullable=False))


class Worker(SQLModel, table=True):
    """A running `digest worker` (or scheduler), by its heartbeat: `digest status` lists
    them, and a row whose last_seen is old names a process that stopped without saying so."""

    __tablename__ = "workers"
    __table_args__ = (
        one_of("workers", "role", WorkerRole),
        one_of("workers", "state", ["", *WorkerState]),  # '': not said yet (the default)
    )
    id: str = Field(primary_key=True)  # host:pid:random, unique per process start
    role: str = WorkerRole.WORKER  # worker | scheduler
    host: str
    pid: int
    started_at: datetime = when()
    last_seen: datetime = when()
    sent: int = 0  # messages this process sent since it started
    rate: float = 0.0  # messages a second between its last two heartbeats
    state: str = ""  # what it does: sending, idle, stopping; leading, standby


class RateWindow(SQLModel, table=True):
    """A sending limit's token bucket (one row per limit: per_second, per_minute), shared
    by every sender on the database: each takes its tokens here before claiming, so the
    limit holds for the whole installation, not per process."""

    __tablename__ = "rate_windows"
    name: str = Field(primary_key=True)
    tokens: float = 0.0  # messages that may go now
    updated: float = 0.0  # Unix time (the database's clock) the tokens were counted


class SourceHabitRow(SQLModel, table=True):
    """One source's settled stories and its articles in them (``digest.rank.habits``), by
    name (a renamed source starts again; the old name's row is kept, unread while it is not
    configured, until ``forget_source_habits``); ``tallied_until``, the same on every row:
    stories begun before it are counted (migration 0021)."""

    __tablename__ = "source_habits"
    source: str = Field(primary_key=True)
    stories: int = 0
    articles: int = 0
    tallied_until: datetime = when()


class SourcePairRow(SQLModel, table=True):
    """The settled stories two sources both carried (``digest.rank.habits``: breadth),
    ``source`` before ``other``; (a, a): a's own. Saved with ``source_habits`` (0024)."""

    __tablename__ = "source_pairs"
    source: str = Field(primary_key=True)
    other: str = Field(primary_key=True)
    stories: int = 0


# A delivery row's states, kept under their old names: digest.states defines them.
DELIVERY_STATES: tuple[str, ...] = tuple(DeliveryStatus)


def _table(model: type[SQLModel]) -> Table:
    """A model's core table (SQLModel does not type ``__table__``)."""
    table: Table = model.__table__  # type: ignore[attr-defined]
    return table


# The core tables by name, for the statements that skip the ORM (bulk writes, claims, counts).
SOURCES = _table(Source)
ARTICLES = _table(Article)
SUBSCRIBERS = _table(Subscriber)
EDITIONS = _table(Edition)
EDITION_VIEWS = _table(EditionView)
DELIVERIES = _table(Delivery)
DIGEST_STARTS = _table(DigestStart)
SUBSCRIBER_EVENTS = _table(SubscriberEvent)
WORKERS = _table(Worker)
RATE_WINDOWS = _table(RateWindow)
SOURCE_HABITS = _table(SourceHabitRow)
SOURCE_PAIRS = _table(SourcePairRow)
