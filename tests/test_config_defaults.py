"""Defaults live once: a callable that takes a setting defaults to what the config model
declares, so a caller that passes nothing gets what the config file would have given."""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import pytest
from pydantic import BaseModel

from digest.config.models import DeliveryConfig, DigestConfig, GatherConfig, RankConfig, default
from digest.config.models.transports import _ApiConfig
from digest.deliver.dispatch import DeliveryStore, DispatchSettings
from digest.deliver.providers._http import ApiClient
from digest.rank.cluster import StoryIndex
from digest.render import EditionInfo
from digest.sources import fetch, parse, summary
from digest.store.claims import ClaimQueries

# (callable, its parameter, the config model, the model's field)
TAKEN: list[tuple[Callable[..., Any], str, type[BaseModel], str]] = [
    (StoryIndex, "similarity", RankConfig, "story_similarity"),
    (StoryIndex, "merge", RankConfig, "merge_similarity"),
    (fetch.Fetcher, "concurrency", GatherConfig, "concurrency"),
    (fetch.HostPolicy, "per_host", GatherConfig, "per_host_concurrency"),
    (fetch.HostPolicy, "delay", GatherConfig, "per_host_delay_seconds"),
    (fetch.Limits, "max_redirects", GatherConfig, "max_redirects"),
    (fetch.Limits, "timeout_seconds", GatherConfig, "timeout_seconds"),
    (parse.parse_feed, "limit", GatherConfig, "max_items_per_source"),
    (parse.parse_feed, "summary_chars", GatherConfig, "summary_chars"),
    (summary.email_summary, "limit", GatherConfig, "summary_chars"),
    # written out where it is taken: editions.edition_info is to pass the digest's own
    (EditionInfo, "latest_summary_chars", DigestConfig, "latest_summary_chars"),
    (ApiClient, "timeout", _ApiConfig, "timeout_seconds"),
    (ApiClient, "max_retries", _ApiConfig, "max_retries"),
    (DispatchSettings, "batch_size", DeliveryConfig, "batch_size"),
    (DispatchSettings, "lease_seconds", DeliveryConfig, "lease_seconds"),
    (DispatchSettings, "error_budget_minimum", DeliveryConfig, "error_budget_minimum"),
    # still written out where they are taken (to be read from DeliveryConfig): this keeps
    # them equal until then
    (DeliveryStore.claim_deliveries, "lease_seconds", DeliveryConfig, "lease_seconds"),
    (ClaimQueries.claim_deliveries, "lease_seconds", DeliveryConfig, "lease_seconds"),
]


@pytest.mark.parametrize(
    ("taker", "param", "model", "field"),
    TAKEN,
    ids=[f"{t.__qualname__}.{p}" for t, p, _, _ in TAKEN],
)
def test_a_callable_defaults_to_the_config_models_default(
    taker: Callable[..., Any], param: str, model: type[BaseModel], field: str
) -> None:
    declared = inspect.signature(taker).parameters[param].default

    assert declared is not inspect.Parameter.empty
    assert type(declared) is type(default(model, field))
    assert declared == default(model, field), f"{model.__name__}.{field}"


def test_the_largest_body_read_is_gathers_max_body_mb() -> None:
    ten_mb = int(default(GatherConfig, "max_body_mb") * 1024 * 1024)

    assert fetch.Limits().max_body_bytes == ten_mb


def test_a_field_without_a_default_has_none_to_take() -> None:
    from digest.config.models import SourceConfig

    with pytest.raises(TypeError, match=r"SourceConfig\.url has no default"):
        default(SourceConfig, "url")
