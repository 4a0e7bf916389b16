"""JSON Feed 1.0 / 1.1 (https://jsonfeed.org/version/1.1) read by hand into FeedItems."""

from __future__ import annotations

import json
from typing import Any

from digest.errors import SourceError
from digest.records import FeedItem
from digest.sources.dates import iso_date
from digest.sources.entries import (
    TITLE_LIMIT,
    _language,
    _resolved,
    _skipped,
    _some_usable,
    _untitled,
    deep_notes,
)
from digest.sources.normalise import (
    canonical_url,
    fitting_language,
    headline,
    html_to_text,
)
from digest.sources.pictures import (
    Picture,
    inline_addresses,
    inline_picture,
    left_out_note,
    stated_size,
)
from digest.sources.redirects import item_links
from digest.sources.summary import DEFAULT_CHARS, email_summary


def parse_json_feed(
    source: str,
    body: bytes,
    base_url: str | None,
    summary_chars: int = DEFAULT_CHARS,
    language: str | None = None,
) -> tuple[list[FeedItem], list[str]]:
    """JSON Feed 1.0 / 1.1 (https://jsonfeed.org/version/1.1); ``language``: the source's
    configured one, which wins over what the feed and its items declare."""
    doc = _document(source, body)
    notes: list[str] = []
    items: list[FeedItem] = []
    feed_language = _language(doc.get("language"))
    raw_items = doc.get("items")
    if not isinstance(raw_items, list):
        raise SourceError(
            source,
            f"the JSON Feed's 'items' is {_json_kind(raw_items)}, not a list of items",
            "a broken feed generator: tell the site; digest tries again at the next run",
        )
    for index, raw in enumerate(raw_items):
        if not isinstance(raw, dict):
            notes.append(f"item {index + 1} is not an object; skipped")
            continue
        fields = _JsonFields(raw, index, notes)
        item = _item(fields, base_url, feed_language, summary_chars, language)
        if item is not None:
            items.append(item)
    _some_usable(source, len(raw_items), items, notes)
    return items, notes


def _document(source: str, body: bytes) -> dict[str, Any]:
    """The JSON Feed's top-level object; SourceError when the body is no JSON Feed."""
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise SourceError(
            source, f"invalid JSON: {exc}", "check the feed URL in the config"
        ) from exc
    except RecursionError as exc:  # [[[[...]]]] a hundred thousand deep: no feed is written so
        raise SourceError(
            source,
            "invalid JSON Feed: nested too deeply to read",
            "no JSON Feed nests like this; check the feed URL, or tell the site",
        ) from exc
    # The spec says https://jsonfeed.org/version/1.1; early feeds wrote http://.
    if not isinstance(doc, dict) or "://jsonfeed.org/version/" not in str(doc.get("version")):
        raise SourceError(source, "JSON without a JSON Feed 'version'", "check the feed URL")
    return doc


def _item(
    field: _JsonFields,
    base_url: str | None,
    feed_language: str | None,
    summary_chars: int,
    configured: str | None,
) -> FeedItem | None:
    """The item's FeedItem; None, with a note, without an http(s) link or a title."""
    index, notes = field.index, field.notes
    link = field.text("url") or field.text("external_url")
    # A redirector's target, the written link its identity, as for RSS and Atom items.
    links = item_links(_resolved(link, base_url))  # none: no link, not the feed's own
    if links is None:
        notes.append(_skipped(index, field.text("title", noted=False), link, base_url))
        return None
    url = links.url
    # summary and content_text are plain text by the spec, but feeds put markup in
    # them too: everything goes through html_to_text, so no markup can get through.
    summary_html = field.text("summary") or field.text("content_html") or field.text("content_text")
    notes.extend(deep_notes(index, title=field.text("title", noted=False), summary=summary_html))
    language = configured or _language(field.text("language")) or feed_language
    summary = email_summary(summary_html, language, summary_chars)
    title = headline(html_to_text(field.text("title"), TITLE_LIMIT), summary)
    if not title:
        notes.append(_untitled(index, url))
        return None
    language = fitting_language(language, title, summary)
    written = field.text("image") or field.text("banner_image")
    image = canonical_url(written)
    # No image of its own: the first picture of its HTML, as for RSS and Atom items.
    if image:  # JSON Feed states no size: the shape its address may write
        picture = Picture(image, None, *stated_size(image, None, None))
    else:
        picture = inline_picture([field.text("content_html")], url, title)
        if picture.url is None and (
            note := left_out_note(
                index,
                title,
                [written.strip(), *inline_addresses([field.text("content_html")], url)],
            )
        ):
            notes.append(note)
    return FeedItem(
        guid=(field.text("id", number=True) or links.identity)[:500],
        url=url,
        title=title,
        summary=summary,
        author=html_to_text(field.author(), 200) or None,
        published_at=iso_date(field.text("date_published") or field.text("date_modified"), None),
        image_url=picture.url,
        image_alt=picture.alt,
        language=language,
        image_width=picture.width,
        image_height=picture.height,
        feed_link=links.feed_link,
    )


class _JsonFields:
    """One JSON Feed item's fields as text; a field of another type (an object as a title,
    a list as a url) is left out with a note, never stored as its Python repr."""

    def __init__(self, raw: dict[str, Any], index: int, notes: list[str]) -> None:
        self.raw, self.index, self.notes = raw, index, notes

    def text(self, key: str, *, number: bool = False, noted: bool = True) -> str:
        """The field's string; "" when absent or of another type. ``number``: the spec's
        reader coerces a numeric id to a string, so a number is taken as its digits."""
        return self._text(self.raw, key, key, number=number, noted=noted)

    def author(self) -> str:
        """The first author's name: from ``authors`` (1.1), else ``author`` (1.0). A plain
        string where the spec has an object is taken as the name (no repr can come of it)."""
        key = "authors" if self.raw.get("authors") is not None else "author"
        value = self.raw.get(key)
        people = value if key == "authors" else [value]
        if value is None or not isinstance(people, list):
            if value is not None:
                self._note(key, value, "a list of authors")
            return ""
        for n, person in enumerate(people):
            label = f"{key}[{n}]" if key == "authors" else key
            if isinstance(person, str):
                name = person
            elif isinstance(person, dict):
                name = self._text(person, "name", f"{label}.name")
            else:
                self._note(label, person, "an author")
                continue
            if name.strip():
                return name
        return ""

    def _text(
        self,
        mapping: dict[str, Any],
        key: str,
        label: str,
        *,
        number: bool = False,
        noted: bool = True,
    ) -> str:
        value = mapping.get(key)
        if value is None or isinstance(value, str):
            return value or ""
        if number and isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        if noted:
            self._note(label, value)
        return ""

    def _note(self, label: str, value: object, wanted: str = "text") -> None:
        self.notes.append(
            f"item {self.index + 1}: its {label!r} is {_json_kind(value)}, not {wanted}; left out"
        )


def _json_kind(value: object) -> str:
    """What a JSON value is, in a note's words."""
    if value is None:
        return "missing"
    if isinstance(value, bool):
        return "true or false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "a list" if isinstance(value, list) else "an object"
