"""The sources stage: fetch feeds, parse them into FeedItems, store new articles.

The gatherer itself is ``digest.sources.gather`` (``gather``, ``SourceReport``); it is not
imported here, so a parser process, which imports only ``digest.sources.parse``, starts
without loading the store, the config and the HTTP client (~1 s less per gather's pool).
"""

from digest.sources.normalise import canonical_url, html_to_text
from digest.sources.parse import parse_feed

__all__ = ["canonical_url", "html_to_text", "parse_feed"]
