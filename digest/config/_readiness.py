"""What `digest check` warns about: a config that loads, but will fail or do less later.

Each warning is a ConfigProblem, so it reads like an error (``file:line: key: what; fix``).
Most depend on this shell's environment, which may not be the service's: a secret that is
not exported here may be exported where digest runs, so they warn rather than fail.
"""

from __future__ import annotations

import difflib
import math
import os
import re
import tomllib
from collections import Counter
from email.utils import parseaddr
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from digest.config._secrets_ready import secret_warnings
from digest.config.models import Config, file_path, no_source_has, unknown_topics
from digest.domains import registrable_domain, same_organisation
from digest.errors import ConfigProblem
from digest.resources import example_config
from digest.unrecorded import holds_entries, rejected_file


def warnings_for(config: Config) -> list[ConfigProblem]:
    """Things that are valid but will stop a send or a webhook, or silently do less."""
    return [
        *secret_warnings(config),
        *_templates_dir(config),
        *_missing_files(config),
        *_unrecorded_file(config),
        *_dkim_alignment(config),
        *_unsubscribe_mailto(config),
        *_host_pace(config),
        *_digest_topics(config),
        *_short_deliveries(config),
        *_example_values(config),
        *_ignored_keys(config),
    ]


def _ignored_keys(config: Config) -> list[ConfigProblem]:
    """Keys an earlier version read that change nothing now: accepted, said to go."""
    return [
        config.problem(path, f"has no effect any more: {why}", "remove it from the file")
        for path, why in config.ignored_keys.items()
    ]


def _dkim_alignment(config: Config) -> list[ConfigProblem]:
    """A DKIM domain outside the From address's organisation (DMARC relaxed alignment).

    The signature still verifies, but DMARC only counts a d= with the From domain's
    registrable domain: without it (or an aligned SPF) a p=quarantine or p=reject policy
    sends every digest to spam or back, and Gmail and Yahoo require alignment of bulk senders.
    """
    settings = config.delivery.dkim
    sender = parseaddr(config.service.sender)[1].rpartition("@")[2]
    if not settings.enabled or not sender or same_organisation(str(settings.domain), sender):
        return []
    organisation = registrable_domain(sender) or sender
    return [
        config.problem(
            ("delivery", "dkim", "domain"),
            f"d={settings.domain} does not align with the From domain {sender} "
            "(service.sender), so DMARC does not count the signature and a policy of "
            "quarantine or reject applies",
            f"sign as {organisation} or a subdomain of it (publish the key there), or send "
            f"from an address at {settings.domain}",
        )
    ]


def _unsubscribe_mailto(config: Config) -> list[ConfigProblem]:
    """A List-Unsubscribe mailto address that is also the From or Reply-To address.

    Replies go there too: a reader answering a story, quoting the digest (its footer and
    its "unsubscribe" with it), writes to the address whose mail means "take me off", and
    whoever or whatever reads that mailbox cannot tell a reply from a request to leave.
    """
    service = config.service
    mailto = config.unsubscribe_mailto().casefold()
    shared = [
        key
        for key, value in (("sender", service.sender), ("reply_to", service.reply_to))
        if value and parseaddr(value)[1].casefold() == mailto
    ]
    if not shared:
        return []
    key = "unsubscribe_mailto" if service.unsubscribe_mailto else shared[0]
    set_by = (
        "service.unsubscribe_mailto"
        if service.unsubscribe_mailto
        else "service.unsubscribe_mailto (unset: unsubscribe@ the sender's domain)"
    )
    return [
        config.problem(
            ("service", key),
            f"{set_by} is {mailto}, the same address as "
            + " and ".join(f"service.{k}" for k in shared)
            + ": a reader's ordinary reply, quoting the digest, goes where unsubscribe "
            "requests go and could be taken for one",
            "set service.unsubscribe_mailto to an address of its own that only receives "
            "unsubscribe requests (such as unsubscribe@ your domain), apart from the "
            "sender and reply_to",
        )
    ]


def _host_pace(config: Config) -> list[ConfigProblem]:
    """Sources of one host that politeness cannot read within a gather interval.

    Requests to one host start ``per_host_delay_seconds`` apart, so its N sources take at
    least N times that (a page source's article pages more): 200 feeds of one host at the
    default 0.5 s take 100 s, and a gather every minute would always run behind.
    """
    g = config.gather
    counts: Counter[str] = Counter(
        urlsplit(s.url).hostname or ""
        for s in config.sources
        if s.enabled and s.url.startswith(("http://", "https://"))
    )
    interval = g.interval_minutes * 60
    problems = []
    for host, count in counts.most_common():
        seconds = count * g.per_host_delay_seconds
        if not host or seconds <= interval:
            continue
        need = math.ceil(seconds / 60)
        problems.append(
            config.problem(
                ("gather", "interval_minutes"),
                f"{count} sources on {host} take at least {seconds:g} s to read one after "
                f"another ({g.per_host_delay_seconds:g} s apart, gather.per_host_delay_seconds), "
                f"longer than the gather interval of {interval} s, so gathering runs behind",
                f"raise gather.interval_minutes to {need} or more, or, if {host} allows it, "
                "lower gather.per_host_delay_seconds",
            )
        )
    return problems


def _digest_topics(config: Config) -> list[ConfigProblem]:
    """A digest's topics that no source declares: a digest takes only the stories of
    sources with one of its topics, so a misspelt one ('wrld') gets none of them, and a
    digest of only such topics mails nobody, day after day, without a word."""
    known = config.topics()
    problems = []
    for index, digest in enumerate(config.digests):
        unknown = unknown_topics(digest.topics, known)
        if not unknown:
            continue
        what = no_source_has(unknown)
        what += (
            ", so its editions have no stories"
            if len(unknown) == len(digest.topics)
            else ": it adds no stories"
        )
        close = [difflib.get_close_matches(topic, known, n=1) for topic in unknown]
        meant = [f"{match[0]!r}" for match in close if match]
        if meant and len(meant) == len(unknown):
            fix = f"did you mean {', '.join(meant)}?"
        elif known:
            fix = f"the sources' topics are: {', '.join(known)}"
        else:
            fix = "no source declares topics: give a [[sources]] table topics = [...]"
        fix += " (or add the topic to a source's topics; [] takes every source)"
        problems.append(config.problem(("digests", index, "topics"), what, fix))
    return problems


BOUNCE_DAYS = 2  # how long a bounce report can take to come back


def _short_deliveries(config: Config) -> list[ConfigProblem]:
    """Delivery rows kept less long than a bounce can take to come back: the bounce finds
    no Message-ID to match, and the address that bounced stays on the list."""
    days = config.retention.deliveries_days
    if days >= BOUNCE_DAYS:
        return []
    return [
        config.problem(
            ("retention", "deliveries_days"),
            f"delivery rows are kept {days * 24:g} hours: a bounce report that comes back "
            "later quotes a Message-ID no longer known, and the address that bounced is not "
            "marked",
            f"set retention.deliveries_days to {BOUNCE_DAYS} or more",
        )
    ]


def _templates_dir(config: Config) -> list[ConfigProblem]:
    """A templates folder that is not there is skipped, and the built-in templates are used."""
    folder = config.templates_dir()
    if folder is None or folder.is_dir():
        return []
    return [
        config.problem(
            ("service", "templates_dir"),
            f"no folder at {folder}, so the built-in templates are used",
            "create the folder (relative paths start at this file's folder), or remove "
            "templates_dir",
        )
    ]


def _missing_files(config: Config) -> list[ConfigProblem]:
    """Enabled ``file:`` sources whose file is not there: the config is valid (the file may
    be written before the first gather), but every gather would fail on them."""
    return [
        config.problem(
            ("sources", index, "url"),
            f"source {source.name!r} names {path}, which does not exist",
            "fix the path (a relative file: path starts at the config file's folder)",
        )
        for index, source in enumerate(config.sources)
        if source.enabled
        and source.url.startswith("file:")
        and not (path := file_path(source.url, config.base_dir)).exists()
    ]


def _unrecorded_file(config: Config) -> list[ConfigProblem]:
    """The journal of unrecorded sends must be writable when it is needed: the moment the
    database fails to record a batch the server took."""
    path = config.resolve_path(config.delivery.unrecorded_file)
    rejected = _rejected_lines(config, path)
    folder = next((p for p in (path.parent, *path.parents) if p.exists()), None)
    if folder is not None and folder.is_dir() and os.access(folder, os.W_OK):
        if path.is_file() and holds_entries(path):
            return [
                config.problem(
                    ("delivery", "unrecorded_file"),
                    f"{path} holds sends the database failed to record",
                    "the next send records them; `digest status` lists them",
                ),
                *rejected,
            ]
        if not path.exists() or (path.is_file() and os.access(path, os.W_OK)):
            return rejected
    return [
        config.problem(
            ("delivery", "unrecorded_file"),
            f"{path} cannot be written here: if the database fails to record a batch the "
            "server took, its results cannot be kept, and it may go out twice",
            "point it at a file in a folder digest can write (relative paths start at this "
            "file's folder)",
        )
    ]


# A `# key = value` line of the example: an optional key shown switched off.
_COMMENTED_KEY = re.compile(r"^#\s*([A-Za-z_][A-Za-z0-9_]*\s*=\s*.+)$", re.MULTILINE)


@cache
def _example() -> dict[str, Any]:
    """config.example.toml with its optional keys switched on, as `digest init` wrote it."""
    return tomllib.loads(_COMMENTED_KEY.sub(r"\1", example_config().read_text(encoding="utf-8")))


def _example_values(config: Config) -> list[ConfigProblem]:
    """Placeholders left from the example (an example.org host, the sample postal address).

    Only the tables that take effect are looked at: the chosen transport's, not the others'
    placeholders, which nothing reads.
    """
    example = _example()
    tables: list[tuple[str, ...]] = [
        ("service",),
        ("delivery",),
        ("delivery", "dkim"),
        ("delivery", config.delivery.transport),
    ]
    problems = []
    for table in tables:
        shown: Any = example
        current: Any = config
        for part in table:
            shown, current = shown.get(part, {}), getattr(current, part)
        for key, value in shown.items():
            placeholder = isinstance(value, str) and "example" in value.lower()
            if placeholder and getattr(current, key, None) == value:
                problems.append(
                    config.problem(
                        (*table, key),
                        f"{value!r} is still the example's value",
                        "replace it with your own before the first send (example.org names "
                        "and the sample postal address are placeholders)",
                    )
                )
    return problems


def _rejected_lines(config: Config, path: Path) -> list[ConfigProblem]:
    """Lines of the journal that were no entry (a write cut short), moved aside by a replay:
    their deliveries may have gone out again, which only the admin can check."""
    rejected = rejected_file(path)
    try:
        count = len(rejected.read_text(encoding="utf-8", errors="replace").splitlines())
    except OSError:  # none (or unreadable: the journal's own check names the folder)
        return []
    if not count:
        return []
    return [
        config.problem(
            ("delivery", "unrecorded_file"),
            f"{rejected} holds {count} line(s) of the journal that "
            "were no batch's results (a write cut short); their deliveries may have gone out "
            "twice",
            "look the deliveries up in `digest status` / `digest deliveries`, then delete the file",
        )
    ]
