"""The schedule stage: which slot an edition belongs to, and the daemon that fires digests."""

from digest.schedule.slots import (
    FiringPlan,
    fires_at,
    latest_slot,
    local_time_schedule,
    next_slot,
    trigger,
)

__all__ = [
    "FiringPlan",
    "fires_at",
    "latest_slot",
    "local_time_schedule",
    "next_slot",
    "trigger",
]
