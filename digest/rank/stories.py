"""Group articles that tell the same story, by the overlap of their title words.

A first, explainable clusterer: each title becomes a set of content words; an article joins
the existing story whose words it shares most (Jaccard at least the configured similarity),
found through an inverted index so the window is never compared pairwise.
(The real, incremental clusterer is the ranking issue's work.)
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Sequence

from digest.records import ArticleRecord

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
STOPWORDS = frozenset(
    [
        "a",
        "an",
        "the",
        "and",
        "or",
        "but",
        "of",
        "in",
        "on",
        "at",
        "to",
        "for",
        "from",
        "by",
        "with",
        "as",
        "is",
        "are",
        "was",
        "were",
        "be",
        "been",
        "being",
        "it",
        "its",
        "this",
        "that",
        "these",
        "those",
        "after",
        "before",
        "over",
        "under",
        "into",
        "about",
        "than",
        "then",
        "says",
        "said",
        "new",
        "news",
        "live",
        "breaking",
        "update",
        "updates",
        "developing",
        "latest",
        "report",
        "reports",
        "amid",
        "how",
        "why",
        "what",
        "who",
        "will",
        "would",
        "can",
        "could",
        "may",
        "might",
        "has",
        "have",
        "had",
        "not",
        "no",
        "up",
        "out",
    ]
)


def title_words(title: str) -> frozenset[str]:
    """Normalised content words of a headline: case- and accent-folded, stop words dropped."""
    folded = unicodedata.normalize("NFKD", title.casefold())
    folded = "".join(c for c in folded if not unicodedata.combining(c))
    return frozenset(
        w for w in _WORD.findall(folded) if w not in STOPWORDS and (len(w) > 1 or w.isdigit())
    )


def group_stories(
    articles: Sequence[ArticleRecord], similarity: float
) -> list[list[ArticleRecord]]:
    """Partition ``articles`` into stories; order within and across groups follows the input."""
    groups: list[list[ArticleRecord]] = []
    group_words: list[frozenset[str]] = []
    index: dict[str, set[int]] = defaultdict(set)
    for article in articles:
        words = title_words(article.title)
        best, best_score = -1, 0.0
        candidates = set().union(*(index[w] for w in words)) if words else set()
        for g in candidates:
            other = group_words[g]
            score = len(words & other) / len(words | other)
            if score > best_score:
                best, best_score = g, score
        if best >= 0 and best_score >= similarity:
            groups[best].append(article)
            continue
        groups.append([article])
        group_words.append(words)
        for w in words:
            index[w].add(len(groups) - 1)
    return groups
