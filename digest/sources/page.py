"""Sources of kind 'page': a news site's own listing page and the article pages it links to.

(Stub: the interface the gatherer calls; filled in by the page-sources work.)
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from digest.config import SourceConfig
from digest.records import FeedItem
from digest.sources.fetch import Fetched


async def read_page_source(
    source: SourceConfig,
    listing: Fetched,
    listing_url: str,
    fetch_article: Callable[[str], Awaitable[Fetched]],
    known: Callable[[list[str]], set[str]],
) -> tuple[list[FeedItem], list[str]]:
    """Items from a listing page: links found on it, metadata read from each new article page.

    ``fetch_article(url)`` fetches through the gatherer's polite client (raises SourceError);
    ``known(urls)`` says which canonical URLs are stored already, so they are not fetched.
    Returns the items and notes on what was skipped and why.
    """
    raise NotImplementedError("page sources are not implemented yet")
