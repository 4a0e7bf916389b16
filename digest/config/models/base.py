"""Shared by every table: the strict base model and the checks several tables use."""

from __future__ import annotations

import re
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class _Model(BaseModel):
    """Base: unknown keys and wrong types are errors, never silently read as something else.

    A typo must not fall back to a default, and strict types keep ``weight = true`` from
    loading as 1.0, ``enabled = "no"`` as false and ``port = "587"`` as 587. Strict still
    takes a whole number where a number is asked (``weight = 2``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def check_timezone(value: str) -> str:
    """Accept an IANA time zone name such as ``Europe/London``."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(
            f"unknown time zone {value!r}; use an IANA name such as 'Europe/London' or 'UTC'"
        ) from exc
    return value


def secret_hint(env: str) -> str:
    """How to set the signing secret: made once and kept, since every link mailed is signed
    with it (a command that makes a new one on each start would break them all)."""
    return (
        "make one once with python3 -c 'import secrets; print(secrets.token_urlsafe(32))' "
        f"and set {env} to that value where digest runs (its systemd EnvironmentFile, say), "
        "the same on every start: a new secret breaks every link already mailed (the README "
        "says how to rotate one)"
    )


def check_env_name(value: str) -> str:
    """Accept the name of an environment variable (the secret itself never sits in the file)."""
    if not _ENV_NAME.match(value):
        raise ValueError(
            f"{value!r} is not an environment variable name; name the variable that holds "
            "the secret (such as 'DIGEST_SECRET'), never the secret itself"
        )
    return value
