"""Which links of a news site's listing page the site itself marks as breaking.

A link is breaking when it sits inside a block whose heading, class or id says "breaking"
(or "live", "just in"), or when a small label beside it says so. Used by ``sources.page``
when the config gives no ``breaking`` selector.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from selectolax.lexbor import LexborNode

_BREAKING_WORDS = re.compile(
    r"(?:^|[\s_-])(breaking|breakingnews|live|liveblog|just-?in)(?:$|[\s_-])", re.I
)
_BREAKING_HEADING = re.compile(r"\b(breaking|live|just in)\b", re.I)
_BREAKING_LABEL = re.compile(
    r"^\s*(breaking(\s+news)?|live(\s+updates)?|just\s+in)\b\s*[:|–—-]?", re.I
)
_LABEL_TAGS = {"span", "strong", "em", "b", "mark", "small", "label", "i"}
_HEADINGS = "h1, h2, h3, h4, h5, h6"
# How many blocks around a link may title it. A section's heading is a few levels up; each
# level is a query over the block's subtree, so an unbounded walk up deeply nested markup
# cost time quadratic in its depth.
_ANCESTORS = 8


def anchor_text(anchor: LexborNode) -> str:
    """What a link says: its text, else its image's alt text, else its title."""
    text = anchor.text(separator=" ", strip=True)
    if not text:
        img = anchor.css_first("img[alt]")
        text = (img.attributes.get("alt") if img is not None else None) or ""
        text = text or anchor.attributes.get("title") or ""
    return " ".join(text.split())


class BreakingDetector:
    """Says whether a link sits in a breaking block or carries a breaking label.

    Verdicts per block and article links per block are remembered, so a listing of
    thousands of links costs one pass over its tree, not one per link.
    """

    def __init__(self, article_urls: set[str]) -> None:
        self._paths = {urlsplit(u).path for u in article_urls}
        self._verdicts: dict[int, bool | None] = {}
        self._links: dict[int, int] = {}
        self._headings: dict[int, str | None] = {}

    def __call__(self, anchor: LexborNode) -> bool:
        """The link's own label, or the nearest titled block around it, says breaking."""
        if _BREAKING_LABEL.match(anchor_text(anchor)):
            return True
        parent = anchor.parent
        for _ in range(2):  # a badge sits next to the link, in its item
            if parent is None or parent.tag in ("body", "html", "main"):
                break
            if self._has_label(parent, anchor):
                return True
            parent = parent.parent
        return bool(self._verdict(anchor.parent))

    def _verdict(self, node: LexborNode | None) -> bool | None:
        """True or False as the nearest block with a breaking class or a heading says."""
        chain: list[LexborNode] = []
        verdict: bool | None = None
        for _ in range(_ANCESTORS):
            if node is None or node.tag in ("body", "html", "main"):
                break
            if node.mem_id in self._verdicts:
                verdict = self._verdicts[node.mem_id]
                break
            chain.append(node)
            attrs = node.attributes
            if _BREAKING_WORDS.search(f"{attrs.get('class') or ''} {attrs.get('id') or ''}"):
                verdict = True
                break
            if node.mem_id not in self._headings:
                self._headings[node.mem_id] = self._block_heading(node)
            heading = self._headings[node.mem_id]
            if heading is not None:
                # The nearest block with a heading names the section the link is in.
                verdict = bool(_BREAKING_HEADING.search(heading))
                break
            node = node.parent
        else:
            # Out of levels: no verdict here, but one from a block nearer another link
            # could still be found, so the chain's nodes are not settled.
            return verdict
        for seen in chain:
            self._verdicts[seen.mem_id] = verdict
        return verdict

    def _has_label(self, container: LexborNode, anchor: LexborNode) -> bool:
        """A small "Breaking" / "Live" / "Just in" badge next to the link, in the same item."""
        if self._article_links(container) > 1:
            return False  # a list of several stories: a badge belongs to one of them
        for node in container.traverse():
            if node.tag in _LABEL_TAGS and node.mem_id != anchor.mem_id:
                text = node.text(separator=" ", strip=True)
                if len(text) <= 20 and _BREAKING_LABEL.fullmatch(text):
                    return True
        return False

    def _block_heading(self, block: LexborNode) -> str | None:
        """The heading that titles a block: its first section heading, else one just before it.

        Headings that are themselves article links (a teaser's headline) do not title a block.
        """
        for heading in block.css(_HEADINGS):
            if not self._article_links(heading):
                return heading.text(separator=" ", strip=True)
        sibling = block.prev
        while sibling is not None and sibling.tag in ("-text", "_comment", "-comment"):
            sibling = sibling.prev
        if (
            sibling is not None
            and sibling.tag in ("h1", "h2", "h3", "h4", "h5", "h6")
            and not self._article_links(sibling)
        ):
            return sibling.text(separator=" ", strip=True)
        return None

    def _article_links(self, node: LexborNode) -> int:
        """How many distinct articles ``node`` links to (hrefs may be relative: paths compare)."""
        if node.mem_id not in self._links:
            paths = {urlsplit(a.attributes.get("href") or "").path for a in node.css("a[href]")}
            self._links[node.mem_id] = len(paths & self._paths)
        return self._links[node.mem_id]
