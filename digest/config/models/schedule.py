"""[schedule] and [worker]: who schedules and who sends, on one machine or many."""

from __future__ import annotations

from pydantic import Field

from digest.config.models.base import _Model


class ScheduleConfig(_Model):
    """The scheduler, `digest run`: any number may run on PostgreSQL, one leads at a time."""

    send: bool = Field(
        default=True,
        description="the leading scheduler sends what it queues; false: it only gathers, "
        "builds and queues, and `digest worker`s send",
    )
    leader_check_seconds: float = Field(
        default=5.0,
        ge=1,
        le=60,
        description="how often a scheduler checks it still holds the lead (PostgreSQL), and "
        "a standby tries to take it; a standby leads within three of these",
    )
    fork_jobs: bool = Field(
        default=True,
        description="run each gather, send and retry in a process of its own that exits "
        "when the job ends, so the daemon stays the size it started however long it runs; "
        "false: in the daemon itself (where the system cannot fork, always)",
    )


class WorkerConfig(_Model):
    """`digest worker`: long-lived senders, any number on any number of machines."""

    poll_seconds: float = Field(
        default=2.0,
        gt=0,
        le=300,
        description="an idle worker looks for work this often (on PostgreSQL it also wakes "
        "at once when rows are queued)",
    )
    heartbeat_seconds: float = Field(
        default=5.0,
        gt=0,
        le=300,
        description="a worker writes its heartbeat row (last seen, messages sent) this often",
    )
