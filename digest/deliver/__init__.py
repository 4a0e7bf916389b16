"""The deliver stage: a Sender interface, its transports, and the dispatcher."""

from digest.deliver import maildir, providers, smtp  # noqa: F401  (register the transports)
from digest.deliver.base import Sender, build_sender, register
from digest.deliver.dispatch import DeliveryReport, dispatch

__all__ = ["DeliveryReport", "Sender", "build_sender", "dispatch", "register"]
