"""[[digests]]: what goes in each digest and when it is sent."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Literal

from pydantic import Field, field_validator

from digest.config.models.base import _Model, check_timezone
from digest.schedule.slots import next_slot, trigger

_DIGEST_ID = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


class DigestConfig(_Model):
    """One digest: what goes in it and when it is sent."""

    id: str = Field(description="short identifier used on the command line, such as 'morning'")
    title: str = Field(min_length=1, description="the email's title, shown in the subject line")
    schedule: str = Field(
        default="0 7 * * *", description="cron expression (minute hour day month weekday)"
    )
    timezone: str | None = Field(
        default=None, description="IANA time zone of the schedule; defaults to service.timezone"
    )
    breaking_items: int = Field(default=5, ge=0, le=50, description="at most this many breaking")
    latest_items: int = Field(default=20, ge=0, le=200, description="at most this many latest")
    latest_per_source: int = Field(
        default=3,
        ge=0,
        le=200,
        description="at most this many Latest stories led by one source's article, best "
        "first, so a source that posts a lot does not fill the section; more of it only "
        "when the section would otherwise be short; a choice of topics gets its own Latest "
        "by the same rule. 0: no cap. Breaking is not capped",
    )
    lookback_hours: float = Field(
        default=24, gt=0, le=24 * 31, description="articles published in this window count"
    )
    topics: list[str] = Field(
        default_factory=list, description="only sources with one of these topics; empty means all"
    )
    local_time: bool = Field(
        default=False,
        description="send at the schedule's time in each subscriber's own time zone "
        "(run every quarter hour, for zones such as +5:30 and +5:45), each run's zones "
        "getting an edition built from the news of that moment",
    )
    latest_group_by: Literal["topic", "source"] = Field(
        default="topic",
        description="group 'Latest' by the lead's first topic ('topic') or its source ('source')",
    )
    latest_summary_chars: int = Field(
        default=160,
        ge=0,
        le=2000,
        description="a Latest item's summary at most this many characters: its lead "
        "sentence, cut after a whole word (with an ellipsis) when longer; "
        "0 lists Latest as headlines only. Breaking keeps gather.summary_chars",
    )
    send_empty: bool = Field(
        default=False,
        description="send an edition with no stories (a 'nothing new' email); off: no email "
        "goes to anyone whose edition would be empty, and the run says why",
    )

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not _DIGEST_ID.match(value):
            raise ValueError(
                f"{value!r} is not a valid id; use lower-case letters, digits, '-' and '_'"
            )
        return value

    @field_validator("latest_summary_chars")
    @classmethod
    def _latest_chars(cls, value: int) -> int:
        if 0 < value < 40:
            chars = cls.model_fields["latest_summary_chars"].default
            raise ValueError(
                f"{value} characters hold no sentence; use 40 or more ({chars} is the "
                "default), or 0 for headlines only"
            )
        return value

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str | None) -> str | None:
        return None if value is None else check_timezone(value)

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str) -> str:
        fields = "minute hour day month weekday"
        try:
            trigger(value, "UTC")
        except ValueError as exc:
            fix = (
                f"write five fields ({fields}), such as '0 7 * * *' for 07:00 every day"
                if len(value.split()) != 5
                else "minute is 0-59, hour 0-23, day 1-31, month 1-12, weekday 0-7 (0 and 7 "
                "= Sunday); each may be *, a list 1,3, a range 1-5 or a step */2"
            )
            raise ValueError(f"{value!r} is not a cron expression ({exc}); {fix}") from exc
        if next_slot(value, "UTC", datetime.now(UTC)) is None:
            raise ValueError(f"{value!r} never fires (no month has that day); check day and month")
        return value
