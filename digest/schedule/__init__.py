"""The schedule stage: which slot an edition belongs to, and the daemon that fires digests."""

from digest.schedule.slots import fires_at, hourly_schedule, latest_slot, next_slot, trigger

__all__ = ["fires_at", "hourly_schedule", "latest_slot", "next_slot", "trigger"]
