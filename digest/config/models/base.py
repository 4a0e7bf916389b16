"""Shared by every table: the strict base model and the checks several tables use."""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Collection, Iterable, Sequence
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from pydantic import BaseModel, ConfigDict

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class _Model(BaseModel):
    """Base: unknown keys and wrong types are errors, never silently read as something else.

    A typo must not fall back to a default, and strict types keep ``weight = true`` from
    loading as 1.0, ``enabled = "no"`` as false and ``port = "587"`` as 587. Strict still
    takes a whole number where a number is asked (``weight = 2``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def default(model: type[BaseModel], name: str) -> Any:
    """The default ``model`` declares for its field ``name``.

    A function or class outside the config that takes a setting (``Fetcher``'s
    concurrency, ``StoryIndex``'s thresholds) takes this as its default, so the default
    lives once, here, and a caller that passes no value gets what the config file would
    have given it.
    """
    field = model.model_fields[name]
    if field.is_required():
        raise TypeError(f"{model.__name__}.{name} has no default to take")
    return field.get_default(call_default_factory=True)


# What a reader's or a digest's topic that no source declares is told (the CSV import
# counts its lines by it).
NO_SOURCE_HAS = "no source has the topic"


def unknown_topics(chosen: Iterable[str], known: Collection[str]) -> list[str]:
    """The topics of ``chosen`` no source declares (``known``: ``Config.topics``): a reader
    or a digest is sent only stories of its topics, so a misspelt one gets none."""
    return [topic for topic in chosen if topic not in known]


def stranded(chosen: Sequence[str], known: Collection[str]) -> bool:
    """Every topic of ``chosen`` is one no source declares: a reader of that choice is sent
    nothing. Not an empty choice, which is every topic."""
    return bool(chosen) and len(unknown_topics(chosen, known)) == len(chosen)


def no_source_has(topics: Sequence[str]) -> str:
    """The words for ``unknown_topics``: "no source has the topic 'wrld'"."""
    return f"{NO_SOURCE_HAS} {', '.join(map(repr, topics))}"


def check_timezone(
    value: str, otherwise: str = "use an IANA name such as 'Europe/London' or 'UTC'"
) -> str:
    """Accept an IANA time zone name such as ``Europe/London``; the one check of a zone,
    in the config and for a subscriber alike.

    A name that is not a zone but names one (a city, 'europe/paris', 'New York') gets the
    zones it probably means; any other gets ``otherwise``, worded for who is asked.
    """
    if len(value) > LONGEST_ZONE_NAME:  # no zone is; nor worth a guess (or an echo)
        raise ValueError(f"unknown time zone {value[:40]!r}...; {otherwise}")
    try:
        ZoneInfo(value)
    # zoneinfo reads a file named by the value: a region's folder ('Europe') is an
    # IsADirectoryError, another odd name another OSError; none is a zone.
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise ValueError(f"unknown time zone {value!r}; {_zone_hint(value, otherwise)}") from exc
    return value


@functools.lru_cache(maxsize=256)
def _zone_hint(value: str, otherwise: str) -> str:
    """What ``value``, not a zone, probably means; worked out once per value: a CSV from
    another tool often has the same wrong name (a Windows one, 'Eastern Standard Time')
    on every row, and each guess compares it with every zone."""
    if hint := _offset_hint(value) or _region_hint(value):
        return hint
    close = zones_meant(value)
    return f"did you mean {' or '.join(map(repr, close))}?" if close else otherwise


LONGEST_ZONE_NAME = 64  # the longest IANA name is 32 characters


def _region_hint(raw: str) -> str | None:
    """'Europe' or 'australia' is a region, not a zone: name a place in it. The region
    as typed, in its own case: 'America/Argentina' is one too (not 'America')."""
    places = region_places(raw)
    if not places:
        return None
    typed = raw.strip().strip("/")
    region, shown = places[0][: len(typed)], " or ".join(map(repr, places))
    return f"{region!r} is a region, not a zone: name a place in it, such as {shown}"


def region_places(raw: str) -> list[str]:
    """A few zones of the region ``raw`` names ('Europe', 'australia'), for a hint; none
    when it names no region (nor 'Etc': offsets, not places, which ``_offset_hint`` words)."""
    region = raw.strip().strip("/").lower()
    if region == "etc" or len(raw) > LONGEST_ZONE_NAME:
        return []
    return [
        zone
        for zone in sorted(_zones())
        if zone.lower().startswith(region + "/") and not zone.split("/")[-1].isupper()
    ][:3]


_OFFSET = re.compile(r"^(?:gmt|utc)?\s*([+-])\s*(\d{1,2})(?::?(\d{2}))?$", re.IGNORECASE)


def offset_meant(raw: str) -> tuple[str, str] | None:
    """An offset typed for a zone ('GMT+1', 'UTC-05:00'): the offset as written ('UTC+1')
    and the IANA zone that is that offset ('Etc/GMT-1', counted the other way round;
    'UTC' for no offset; "" where no IANA zone is that fixed offset). None for a name that
    is no offset. (The reader's pages word it in the reader's language.)"""
    match = _OFFSET.match(raw.strip())
    if not match:
        return None
    sign, hours, minutes = match[1], int(match[2]), int(match[3] or 0)
    if minutes >= 60 or hours > 14:
        return None
    if not hours and not minutes:
        return "UTC", "UTC"
    offset = f"UTC{sign}{hours}" + (f":{minutes:02d}" if minutes else "")
    if minutes or (sign == "-" and hours > 12):
        return offset, ""
    return offset, f"Etc/GMT{'-' if sign == '+' else '+'}{hours}"


def _offset_hint(raw: str) -> str:
    """The zone an offset such as 'GMT+1' or 'UTC-05:00' means, else "".

    IANA's fixed-offset names count the other way round ('Etc/GMT+1' is UTC-1), so the
    near miss for 'GMT+1' is an hour on the wrong side of UTC, and for 'GMT-5' ten hours
    off: the answer names the Etc zone of the offset meant, and the place's zone, which
    also follows its summer time.
    """
    meant = offset_meant(raw)
    if meant is None:
        return ""
    offset, etc = meant
    place = "the place's own zone, named Area/City ('Europe/Paris', 'America/New_York')"
    if etc == "UTC":
        return f"write 'UTC', or better {place}, which follows its summer time"
    if not etc:
        return f"no IANA zone is a fixed {offset}: use {place}"
    return (
        f"for {offset} write {etc!r} (IANA's Etc names count the other way round), or "
        f"better {place}, which follows its summer time"
    )


@functools.cache
def _zones() -> frozenset[str]:
    """The IANA zones this machine has, read once: ``available_timezones`` walks the zone
    folders and opens each file on every call (tens of milliseconds), and a hint for a
    refused zone, or each refused row of a CSV, asked for them."""
    return frozenset(available_timezones())


@functools.cache
def _zone_keys() -> dict[str, list[str]]:
    """IANA zones by their full name and by their city, in lower case."""
    keys: dict[str, list[str]] = {}
    for zone in sorted(_zones()):
        for key in {zone.lower(), zone.rsplit("/", 1)[-1].lower()}:
            keys.setdefault(key, []).append(zone)
    return keys


def zone_named(raw: str) -> str | None:
    """The one zone a name that is not one names exactly: a city ('Karachi', 'new york')
    or a zone in the wrong case ('europe/paris'); None when it names none or several, or
    is a zone itself. Never a near miss ('Karachii'): that stays for ``check_timezone``
    to suggest. Never an offset ('GMT+5'): its Etc zone counts the other way round
    (Etc/GMT+5 is UTC-5), so it stays for ``check_timezone``'s ``_offset_hint``."""
    if raw in _zones() or _OFFSET.match(raw.strip()):
        return None
    found = _zone_keys().get(raw.strip().lower().replace(" ", "_"), [])
    return found[0] if len(found) == 1 else None


def zones_meant(raw: str) -> list[str]:
    """The zones a mistyped name probably means: 'Karachi' is Asia/Karachi, 'europe/paris'
    is Europe/Paris, 'New York' is America/New_York; a misspelt one, the names closest to
    it ('Europe/Londn' is Europe/London, 'US/Eastrn' US/Eastern)."""
    if len(raw) > LONGEST_ZONE_NAME:  # no zone is: nothing it is close to
        return []
    keys = _zone_keys()
    typed = raw.strip().lower().replace(" ", "_")
    if typed in keys:
        return keys[typed][:3]
    close = difflib.get_close_matches(typed, keys, n=3, cutoff=0.8)
    return list(dict.fromkeys(zone for key in close for zone in keys[key]))[:3]


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
    """Accept the name of an environment variable (the secret itself never sits in the file).
    The value is not repeated in the error: it is most often the secret pasted in, and the
    error goes where a secret must not (a refused reload's record, shown by `digest status`
    and the console's dashboard; the daemon's log)."""
    if not _ENV_NAME.match(value):
        raise ValueError(
            "not an environment variable name (its value is not shown: it may be the secret "
            "itself); name the variable that holds the secret (such as 'DIGEST_SECRET'), "
            "never the secret itself"
        )
    return value
