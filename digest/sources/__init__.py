"""The sources stage: fetch feeds, parse them into FeedItems, store new articles."""

from digest.sources.gather import SourceReport, gather
from digest.sources.normalise import canonical_url, html_to_text
from digest.sources.parse import parse_feed

__all__ = ["SourceReport", "canonical_url", "gather", "html_to_text", "parse_feed"]
