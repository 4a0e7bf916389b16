"""Defaults live once: a callable that takes a setting defaults to what the config model
declares, so a caller that passes nothing gets what the config file would have given."""

from __future__ import annotations

import ast
import inspect
import sys
import textwrap
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
    # editions.edition_info passes the digest's own; this is for a caller that passes none
    (EditionInfo, "latest_summary_chars", DigestConfig, "latest_summary_chars"),
    (ApiClient, "timeout", _ApiConfig, "timeout_seconds"),
    (ApiClient, "max_retries", _ApiConfig, "max_retries"),
    (DispatchSettings, "batch_size", DeliveryConfig, "batch_size"),
    (DispatchSettings, "lease_seconds", DeliveryConfig, "lease_seconds"),
    (DispatchSettings, "error_budget_minimum", DeliveryConfig, "error_budget_minimum"),
    # still written out where they are taken (to be read from DeliveryConfig): this keeps
    # them equal until then (WRITTEN_OUT)
    (DeliveryStore.claim_deliveries, "lease_seconds", DeliveryConfig, "lease_seconds"),
    (ClaimQueries.claim_deliveries, "lease_seconds", DeliveryConfig, "lease_seconds"),
]

WRITTEN_OUT = {DeliveryStore.claim_deliveries, ClaimQueries.claim_deliveries}


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


def _written_default(taker: Callable[..., Any], param: str) -> ast.expr:
    """The expression ``param``'s default is written as in ``taker``'s source: a
    function's parameter or a dataclass's field."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(taker)))
    node = tree.body[0]
    if isinstance(node, ast.ClassDef):
        for item in node.body:
            if isinstance(item, ast.AnnAssign) and ast.unparse(item.target) == param:
                assert item.value is not None
                return item.value
        node = next(i for i in node.body if getattr(i, "name", None) == "__init__")
    assert isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
    args = node.args
    positional = [a.arg for a in (*args.posonlyargs, *args.args)]
    first = len(positional) - len(args.defaults)
    named = dict(zip(positional[first:], args.defaults, strict=True))
    named |= {a.arg: d for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True) if d}
    return named[param]


def _takes_default(expr: ast.expr, module: str) -> bool:
    """``default(Model, "field")``, or a module constant made of it (here or imported)."""
    if isinstance(expr, ast.Call):
        return ast.unparse(expr.func) == "default"
    if isinstance(expr, ast.Name):
        for stmt in ast.parse(inspect.getsource(sys.modules[module])).body:
            if isinstance(stmt, ast.ImportFrom) and stmt.module:
                if any((a.asname or a.name) == expr.id for a in stmt.names):
                    return _takes_default(expr, stmt.module)
            elif isinstance(stmt, ast.AnnAssign | ast.Assign) and stmt.value is not None:
                targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
                if any(ast.unparse(t) == expr.id for t in targets):
                    return _takes_default(stmt.value, module)
    return False


@pytest.mark.parametrize(
    ("taker", "param"),
    [(t, p) for t, p, _, _ in TAKEN if t not in WRITTEN_OUT],
    ids=[f"{t.__qualname__}.{p}" for t, p, _, _ in TAKEN if t not in WRITTEN_OUT],
)
def test_a_callable_takes_its_default_from_the_model_not_a_copy(
    taker: Callable[..., Any], param: str
) -> None:
    """Equal today is not enough: a number written out again stays behind when the
    config's default changes."""
    expr = _written_default(taker, param)

    assert _takes_default(expr, taker.__module__), f"{param} = {ast.unparse(expr)}"


def test_the_largest_body_read_is_gathers_max_body_mb() -> None:
    ten_mb = int(default(GatherConfig, "max_body_mb") * 1024 * 1024)

    assert fetch.Limits().max_body_bytes == ten_mb


def test_a_field_without_a_default_has_none_to_take() -> None:
    from digest.config.models import SourceConfig

    with pytest.raises(TypeError, match=r"SourceConfig\.url has no default"):
        default(SourceConfig, "url")
