"""The words a headline and its URL contribute to story matching.

A headline is short, so every word counts: the title's content words, stemmed in the
article's language (Snowball, through PyStemmer), and the words of the URL's slug, which
publishers often write as a fuller headline ("/2014/04/11/heartbleed-bug-hits-cisco-routers").
Stop words, numbers and the slug's machine parts (ids, hashes, "index.html") are dropped.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from functools import lru_cache
from urllib.parse import urlsplit

import Stemmer

_WORD = re.compile(r"[^\W_]+", re.UNICODE)
SUMMARY_WORDS = 25  # of a summary, the distinct words that count
_SUFFIX = re.compile(r"\.[a-z0-9]{2,5}$")
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff]")
_CJK_RUN = re.compile(r"([\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff]+)")


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Headline words that say nothing about which story it is.
STOPWORDS = _words(
    """a an the and or but of in on at to for from by with as is are was were be been being
    it its this that these those after before over under into about than then says said new
    news live breaking update updates updated developing latest report reports amid how why
    what who will would can could may might has have had not no up out s t ll re ve d m
    you your we our they their he she his her i my just get gets more most all now here
    there when where which while via vs video videos photo photos watch first one two"""
)
# Function words of the other languages digest renders, folded; English's apply to all.
_LANGUAGE_STOPWORDS = {
    "de": _words(
        """der die das den dem des ein eine einen einem einer und oder ist sind war im in zu
        mit von fur auf nicht sich bei nach aus uber um wie als auch noch"""
    ),
    "es": _words(
        """el la los las lo del de un una unos unas y o con por para en es son se al que su sus
        mas como tras ante sobre"""
    ),
    "fr": _words(
        """le la les l des du de d un une et ou en au aux pour par sur dans est sont qui que
        qu il elle ils se sa son ses ce cette pas plus apres avant avec"""
    ),
    "it": _words(
        """il lo la gli le i di del della dei delle un una e o con per in su che non si al alla
        da dal"""
    ),
    "pt": _words(
        """o a os as do da dos das de um uma e ou com por para em no na nos nas que se ao mais
        apos"""
    ),
}
# Slug words that name the page, not the story.
_URL_STOPWORDS = _words(
    """www com html htm php asp aspx shtml cms article articles story stories index id en us
    uk blog blogs http https amp detail details content post posts item page"""
)
_LANGUAGES = {
    "da": "danish",
    "de": "german",
    "en": "english",
    "es": "spanish",
    "fi": "finnish",
    "fr": "french",
    "hu": "hungarian",
    "it": "italian",
    "nl": "dutch",
    "no": "norwegian",
    "pt": "portuguese",
    "ro": "romanian",
    "ru": "russian",
    "sv": "swedish",
    "tr": "turkish",
}


def fold(text: str) -> str:
    """Case-folded, and accent-folded in Latin script: 'Zürich' and 'zurich' are one word.

    Marks on other scripts' letters are kept: they make the letter (Russian й, Japanese で).
    """
    if text.isascii():
        return text.lower()
    kept: list[str] = []
    for c in unicodedata.normalize("NFKD", text.casefold()):
        if kept and kept[-1] < "\u0250" and unicodedata.combining(c):
            continue  # an accent on a Latin letter
        kept.append(c)
    return unicodedata.normalize("NFC", "".join(kept))


def _split_cjk(words: list[str]) -> list[str]:
    """Chinese and Japanese write without spaces: their runs become overlapping bigrams."""
    out: list[str] = []
    for word in words:
        if not _CJK.search(word):
            out.append(word)
            continue
        for run in _CJK_RUN.split(word):
            if _CJK.match(run):
                out.extend(
                    [run] if len(run) == 1 else [run[i : i + 2] for i in range(len(run) - 1)]
                )
            elif run:
                out.append(run)
    return out


@lru_cache(maxsize=32)
def _stemmer(language: str) -> Stemmer.Stemmer:
    return Stemmer.Stemmer(_LANGUAGES.get(language, "english"))


def _language(language: str | None) -> str:
    return (language or "en").split("-")[0].split("_")[0].lower()


def _content(words: list[str], language: str) -> list[str]:
    other = _LANGUAGE_STOPWORDS.get(language, frozenset())
    return [
        w for w in words if len(w) > 1 and w not in STOPWORDS and w not in other and not w.isdigit()
    ]


def title_terms(title: str, language: str | None = None) -> list[str]:
    """The headline's content words, stemmed, in order."""
    lang = _language(language)
    text = fold(title.replace("'s ", " ").replace("\u2019s ", " "))
    return _stemmer(lang).stemWords(_content(_split_cjk(_WORD.findall(text)), lang))


def slug_terms(url: str, language: str | None = None) -> list[str]:
    """The words of the URL's slug: the path segment with the most hyphens or underscores.

    Segments with fewer than two separators ("/world/", "/253018-us-internet") carry no
    headline; long words are ids or hashes.
    """
    segments = [s for s in urlsplit(url).path.split("/") if s]
    slug = max(segments, key=lambda s: s.count("-") + s.count("_"), default="")
    if slug.count("-") + slug.count("_") < 2:
        return []
    lang = _language(language)
    words = _content(_WORD.findall(fold(_SUFFIX.sub("", slug))), lang)
    words = [w for w in words if w not in _URL_STOPWORDS and len(w) <= 14]
    return _stemmer(lang).stemWords(words)


def article_terms(
    title: str,
    url: str = "",
    language: str | None = None,
    slug_weight: float = 1.0,
    summary: str = "",
    summary_weight: float = 0.4,
) -> dict[str, float]:
    """Term counts of one article: its headline's words, plus its slug's and summary's.

    A slug word counts ``slug_weight`` once however often it repeats, so a slug that
    restates the headline strengthens those words instead of drowning the rest. The
    summary's first ``SUMMARY_WORDS`` distinct words count ``summary_weight`` each: enough
    for two articles with one wire summary under different headlines to meet, not so much
    that a long summary outweighs the headline.
    """
    counts: dict[str, float] = dict(Counter(title_terms(title, language)))
    if slug_weight > 0 and url:
        for word in set(slug_terms(url, language)):
            counts[word] = counts.get(word, 0.0) + slug_weight
    if summary_weight > 0 and summary:
        words = dict.fromkeys(title_terms(summary[: SUMMARY_WORDS * 12], language))
        for word in list(words)[:SUMMARY_WORDS]:
            counts[word] = counts.get(word, 0.0) + summary_weight
    return counts
