"""Lists of subscribers: everyone or by status, the console's search and its pages, the
choices of topics readers hold (what a build makes views for, what `digest check` warns
of).

A mixin of ``Store``; all SQL stays in ``store/``.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, or_
from sqlalchemy import select as core_select
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import col, select

from digest.states import SubscriberStatus
from digest.store.base import StoreBase
from digest.store.tables import SUBSCRIBERS, Subscriber


class SubscriberListQueries(StoreBase):
    """The queries that list subscribers (``Store`` inherits them)."""

    def subscribers(self, status: str | None = None) -> list[Subscriber]:
        """Subscribers in the order they joined, optionally only those with ``status``."""
        with self.session() as s:
            query = select(Subscriber).order_by(col(Subscriber.id))
            if status is not None:
                query = query.where(Subscriber.status == status)
            return list(s.exec(query))

    def topic_choices(self) -> list[str]:
        """The distinct choices of topics (comma-joined, as stored) of every subscriber
        but the pending: the choices an edition's build works out an edition for. A
        paused, bounced or unsubscribed reader may be active again before the edition's
        send (it is queued for the whole slot), and must find their choice's view there.
        A pending one (never confirmed, so never sent an edition) is left out: sign-ups
        nobody confirms would each cost every build a view; one who confirms after the
        build gets the edition narrowed to their topics (the send's fallback)."""
        query = (
            core_select(SUBSCRIBERS.c.topics)
            .where(SUBSCRIBERS.c.topics != "", SUBSCRIBERS.c.status != SubscriberStatus.PENDING)
            .distinct()
        )
        with self.engine.connect() as connection:
            return sorted(connection.execute(query).scalars())

    def topic_choice_counts(self) -> dict[str, int]:
        """How many active or paused readers hold each choice of topics (comma-joined, as
        stored; readers of every topic left out): what `digest check` holds against the
        topics the sources declare."""
        query = (
            core_select(SUBSCRIBERS.c.topics, func.count())
            .where(
                SUBSCRIBERS.c.topics != "",
                SUBSCRIBERS.c.status.in_((SubscriberStatus.ACTIVE, SubscriberStatus.PAUSED)),
            )
            .group_by(SUBSCRIBERS.c.topics)
        )
        with self.engine.connect() as connection:
            return {topics: count for topics, count in connection.execute(query)}

    def find_subscribers(
        self,
        statuses: Sequence[str] = (),
        topic: str | None = None,
        text: str | None = None,
        *,
        by_address: bool = False,
        limit: int | None = None,
        after: str = "",
    ) -> list[Subscriber]:
        """Subscribers in the order they joined (or ``by_address``, then from the address
        ``after`` on: the console's next page), narrowed to ``statuses`` (none: all), to
        those who get ``topic``'s stories (it is one of theirs, or they chose none, which
        is every topic), and to those whose address or name holds ``text`` in any case; at
        most ``limit``. A NUL, which no stored text holds (PostgreSQL refuses one in a
        query's text too), finds nobody in ``text`` and ends ``after`` (a hand-edited
        address of the console)."""
        if text and "\x00" in text:
            return []
        after = after.partition("\x00")[0]
        order = col(Subscriber.email) if by_address else col(Subscriber.id)
        query = select(Subscriber).order_by(order).limit(limit)
        if by_address and after:
            query = query.where(col(Subscriber.email) > after)
        if statuses:
            query = query.where(col(Subscriber.status).in_(statuses))
        if topic is not None:
            query = query.where(gets_topic(topic))
        if text:
            query = query.where(holds_text(text))
        with self.session() as s:
            return list(s.exec(query))

    def search_subscribers(
        self, text: str = "", status: str = "", topic: str = "", limit: int = 200, after: str = ""
    ) -> list[Subscriber]:
        """The admin console's search: ``find_subscribers`` by address, a page at most from
        the address ``after`` on (an empty field narrows nothing)."""
        statuses = [status] if status else []
        return self.find_subscribers(
            statuses, topic or None, text, by_address=True, limit=limit, after=after
        )


def gets_topic(topic: str) -> ColumnElement[bool]:
    """The subscriber gets ``topic``'s stories: it is one of theirs, or they chose none
    (every topic). Topics are stored comma-joined; % and _ in a name are not wildcards."""
    topics = col(Subscriber.topics)
    return or_(
        topics == "",
        topics == topic,
        topics.startswith(f"{topic},", autoescape=True),
        topics.endswith(f",{topic}", autoescape=True),
        topics.contains(f",{topic},", autoescape=True),
    )


def holds_text(text: str) -> ColumnElement[bool]:
    """The address or the name holds ``text``, in any case (% and _ searched as themselves,
    as in first_last@...)."""
    needle = text.lower()
    return or_(
        func.lower(col(Subscriber.email)).contains(needle, autoescape=True),
        func.lower(func.coalesce(col(Subscriber.name), "")).contains(needle, autoescape=True),
    )
