"""[gather], [retention] and [[sources]]: what is fetched, how, and how long it is kept."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal
from urllib.parse import unquote, urlsplit

from pydantic import Field, field_validator

from digest.config.models.base import _Model
from digest.sentences import written_tag


class GatherConfig(_Model):
    """How sources are fetched."""

    interval_minutes: int = Field(
        default=30, ge=1, le=1440, description="how often `digest run` gathers, in minutes"
    )
    timeout_seconds: float = Field(
        default=20.0,
        gt=0,
        le=300,
        description="the time one source may take, its redirects and article pages included",
    )
    concurrency: int = Field(default=32, ge=1, le=512, description="requests in flight at once")
    per_host_concurrency: int = Field(
        default=2, ge=1, le=32, description="requests in flight at once to one host"
    )
    per_host_delay_seconds: float = Field(
        default=0.5, ge=0, le=60, description="politeness pause between requests to one host"
    )
    max_body_mb: float = Field(
        default=10.0,
        gt=0,
        le=500,
        description="a response larger than this (decompressed) is cut off",
    )
    max_redirects: int = Field(default=5, ge=0, le=20, description="redirects followed per request")
    backoff_max_hours: float = Field(
        default=24.0, gt=0, le=24 * 14, description="longest pause for a source failing repeatedly"
    )
    max_items_per_source: int = Field(
        default=200, ge=1, description="items read from one feed per fetch, newest first"
    )
    summary_chars: int = Field(
        default=250,
        ge=80,
        le=1000,
        description="a story's summary in the email: its lead sentences, at most this long",
    )
    retention_days: float = Field(
        default=30,
        gt=0,
        description="articles their source has not listed for this many days are pruned "
        "(a fraction is part of a day: 0.5 is 12 hours)",
    )


class RetentionConfig(_Model):
    """How long sent editions and their per-reader delivery rows are kept (articles:
    gather.retention_days), and the habits of a source gone from the config. Pruned by
    every gather and by `digest db prune`."""

    editions_days: float = Field(
        default=365,
        gt=0,
        description="editions older than this many days leave the archive and web view, "
        "with their delivery rows (a digest's newest edition always stays)",
    )
    deliveries_days: float = Field(
        default=90,
        gt=0,
        description="the per-reader delivery rows of editions older than this many days are "
        "deleted (the edition stays); bounces quoting their Message-IDs are not matched then",
    )
    source_habits_days: float = Field(
        default=180,
        gt=0,
        description="a source no longer in [[sources]] (removed, or renamed: its old name) "
        "and not fetched for this many days loses its kept habits (rank.habits); one back "
        "sooner picks its tally up again",
    )


class SourceConfig(_Model):
    """One news source: a feed, a news sitemap, or a news site's own listing page."""

    name: str = Field(min_length=1, description="a unique, human name for the source")
    kind: Literal["feed", "sitemap", "page"] = Field(
        default="feed",
        description="'feed' (RSS, Atom, JSON Feed), 'sitemap' (a news sitemap) or 'page' "
        "(a listing page such as 'Latest Updates'; each linked article page is read)",
    )
    url: str = Field(description="the source's http(s) address, or file: path for a local file")
    links: str | None = Field(
        default=None,
        description="kind 'page': CSS selector of the article links; found automatically if unset",
    )
    breaking: str | None = Field(
        default=None,
        description="kind 'page': CSS selector of the page's breaking-news links or section",
    )
    max_articles: int = Field(
        default=30, ge=1, le=500, description="kind 'page': article pages read per fetch, at most"
    )
    weight: float = Field(default=1.0, ge=0, le=10, description="how much this source counts")
    topics: list[str] = Field(default_factory=list, description="topics its articles belong to")
    enabled: bool = Field(default=True, description="set to false to pause the source")
    language: str | None = Field(
        default=None,
        description="the language its articles are written in (a BCP 47 tag: 'pt-BR', "
        "'de'), for a source that declares none or a wrong one; unset: what it declares",
    )

    @field_validator("language")
    @classmethod
    def _language(cls, value: str | None) -> str | None:
        """A tag as BCP 47 writes it: "pt_BR" (how some feeds write it) becomes "pt-BR"."""
        if value is None:
            return None
        tag = written_tag(value)
        if tag is None:
            raise ValueError(
                f"{value!r} is not a language tag; write the language as a BCP 47 tag such "
                "as 'en', 'pt-BR' or 'de' (or leave language unset)"
            )
        return tag

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not re.match(r"^(https?://[^/\s]+|file:)", value):
            raise ValueError(
                f"{value!r} is not a feed address; use an http(s) URL such as "
                "'https://example.org/feed.xml' (or 'file:path' for a local file)"
            )
        return value


def file_path(url: str, base_dir: Path) -> Path:
    """The local path a ``file:`` source names; relative paths start at the config's folder.

    Here, beside the source's url, so the fetcher that reads the file and `digest check`
    (and the console's check) that looks for it resolve it by one rule."""
    parts = urlsplit(url)
    raw = unquote(
        parts.path if parts.netloc in ("", "localhost") else f"//{parts.netloc}{parts.path}"
    )
    path = Path(raw)
    return path if path.is_absolute() else base_dir / path
