"""The schedule stage: which slot an edition belongs to, and the daemon that fires digests."""

from digest.schedule.slots import latest_slot, next_slot, trigger

__all__ = ["latest_slot", "next_slot", "trigger"]
