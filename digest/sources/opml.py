"""OPML import: a feed reader's subscription list turned into ``[[sources]]`` tables.

Three pure steps the ``digest sources import`` command runs in turn: ``read_opml`` (the
feeds an OPML file lists), ``plan_import`` (which are new to the config, which are not and
why) and ``append_sources`` (the config text with one table per new feed appended, every
existing byte, comments included, left as it was).

defusedxml parses the file (no entities, no DTDs, no network); every ``<outline>`` with an
``xmlUrl`` is a feed, at any depth, since readers nest them in folders.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit

import defusedxml.ElementTree as SafeET
import tomlkit
from defusedxml import DefusedXmlException

from digest.errors import DigestError
from digest.sources.addresses import internal_words
from digest.sources.normalise import canonical_url, html_to_text

_NAME_LIMIT = 100


@dataclass(frozen=True)
class OpmlFeed:
    """One feed an OPML file lists: the name to give it and its address."""

    name: str
    url: str


@dataclass(frozen=True)
class ImportPlan:
    """The feeds to add, and for each feed left out the reason."""

    added: list[OpmlFeed]
    skipped: list[tuple[str, str]]  # (what the file called it, why it is left out)


def read_opml(body: bytes, file: str = "the OPML file") -> list[OpmlFeed]:
    """The feeds listed in an OPML document, in file order; DigestError if it is not OPML."""
    hint = "export the subscription list again from your feed reader (OPML 1.0 or 2.0)"
    try:
        root = SafeET.fromstring(body)
    except DefusedXmlException as exc:
        raise DigestError(
            f"{file} uses XML features digest refuses for safety ({type(exc).__name__})", hint
        ) from exc
    except ET.ParseError as exc:
        raise DigestError(f"{file} is not well-formed XML: {exc}", hint) from exc
    if _local(root.tag) != "opml":
        raise DigestError(f"{file} is not OPML: its root element is <{_local(root.tag)}>", hint)
    feeds: list[OpmlFeed] = []
    for outline in root.iter():
        if _local(outline.tag) != "outline":
            continue
        attrs = {k.lower(): v for k, v in outline.attrib.items()}
        url = (attrs.get("xmlurl") or "").strip()
        if not url:
            continue  # a folder, or a link that is not a feed
        raw_name = attrs.get("title") or attrs.get("text") or ""
        name = html_to_text(raw_name, _NAME_LIMIT) or urlsplit(url).hostname or url[:_NAME_LIMIT]
        feeds.append(OpmlFeed(name, url))
    return feeds


def plan_import(feeds: Iterable[OpmlFeed], names: Iterable[str], urls: Iterable[str]) -> ImportPlan:
    """Which feeds are new: not an address or a name the config (or the file before) has."""
    seen_names = {n.casefold() for n in names}
    seen_urls = {canonical_url(u) or u for u in urls}
    added: list[OpmlFeed] = []
    skipped: list[tuple[str, str]] = []
    for feed in feeds:
        url = canonical_url(feed.url)
        if url is None:
            skipped.append((feed.name, f"{feed.url[:80]!r} is not an http(s) address"))
        elif internal := internal_words(url):
            skipped.append(
                (
                    feed.name,
                    f"{url} is on {internal}: a list from elsewhere adds no internal "
                    "address (add it to the config by hand if it is yours)",
                )
            )
        elif url in seen_urls:
            skipped.append((feed.name, f"{feed.url} is already a source"))
        elif feed.name.casefold() in seen_names:
            skipped.append((feed.name, "a source of that name exists already"))
        else:
            added.append(feed)
            seen_urls.add(url)
            seen_names.add(feed.name.casefold())
    return ImportPlan(added, skipped)


def append_sources(text: str, feeds: Iterable[OpmlFeed]) -> str:
    """The config text with one ``[[sources]]`` table per feed appended at its end."""
    tables = "".join(
        "\n" + tomlkit.dumps({"sources": [{"name": f.name, "url": f.url, "kind": "feed"}]})
        for f in feeds
    )
    if not tables:
        return text
    return text + ("" if not text or text.endswith("\n") else "\n") + tables


def _local(tag: object) -> str:
    return str(tag).rsplit("}", 1)[-1].lower()
