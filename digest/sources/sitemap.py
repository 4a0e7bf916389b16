"""Sources of kind 'sitemap': a news sitemap (``<urlset>`` with ``<news:news>`` entries).

(Stub: the interface the gatherer calls; filled in by the page-sources work.)
"""

from __future__ import annotations

from digest.records import FeedItem


def parse_sitemap(source: str, body: bytes, base_url: str) -> tuple[list[FeedItem], list[str]]:
    """Items of a news sitemap and notes on skipped entries; SourceError if it is not one."""
    raise NotImplementedError("news sitemaps are not implemented yet")
