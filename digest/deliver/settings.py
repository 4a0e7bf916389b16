"""How a dispatch sends, from ``[delivery]``: batch size, lease, retry waits, the error
budget, DKIM signing and how long a sent batch's record is retried."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from digest.config import Config
from digest.config.models import DeliveryConfig, default
from digest.deliver.limits import ErrorBudget, retry_delay
from digest.deliver.signing import make_signer


@dataclass(frozen=True)
class DispatchSettings:
    """How a dispatch sends, from ``[delivery]`` (``from_config``); the defaults are the
    config model's, with no error budget, no retry wait and no signing."""

    batch_size: int = default(DeliveryConfig, "batch_size")
    lease_seconds: float = default(DeliveryConfig, "lease_seconds")
    # Seconds a deferred row waits before its next try, by its tries so far (None: it is
    # tried again at the next run).
    retry_after: Callable[[int], float] | None = None
    # Share of a run's messages refused that pauses the edition (None: never paused).
    error_budget: float | None = None
    error_budget_minimum: int = default(DeliveryConfig, "error_budget_minimum")
    signer: Callable[[bytes], bytes] | None = None  # DKIM
    # How long a sent batch's record is retried while the database fails (its results are
    # kept meanwhile in the store's journal of unrecorded sends, if it has one).
    record_retry_seconds: float = default(DeliveryConfig, "record_retry_seconds")

    @classmethod
    def from_config(cls, config: Config) -> DispatchSettings:
        """The settings ``[delivery]`` gives (DKIM signing included)."""
        delivery = config.delivery
        return cls(
            batch_size=delivery.batch_size,
            lease_seconds=delivery.lease_seconds,
            retry_after=partial(
                retry_delay,
                base=delivery.retry_base_seconds,
                cap=delivery.retry_max_hours * 3600,
            ),
            error_budget=delivery.error_budget,
            error_budget_minimum=delivery.error_budget_minimum,
            signer=make_signer(config),
            record_retry_seconds=delivery.record_retry_seconds,
        )

    def budget(self) -> ErrorBudget | None:
        """A fresh error budget for one run (None: the run has none)."""
        if self.error_budget is None:
            return None
        return ErrorBudget(self.error_budget, self.error_budget_minimum)
