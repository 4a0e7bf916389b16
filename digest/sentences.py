"""The lead sentences of a text within a length: how the email's summaries are cut, in one place.

Gathering writes each article's summary with ``lead`` at ``gather.summary_chars``
(``sources.summary``, after taking the furniture out); the email shortens a Latest item's
stored summary with it again at the digest's ``latest_summary_chars`` (``render``). Both
follow one rule, so a summary is never cut one way when stored and another way when shown:

- the lead sentence, with the next while it is short (``THIN``), all within the limit;
- a lead sentence longer than the limit is cut after a whole word and ends in an
  ellipsis, without an article, a preposition or a conjunction left hanging before it
  ("...between the United States…", not "...between the United States and…"). Not at a
  comma: in "The leader of the party, John Smith, resigned" the words before a comma are
  often a subject without its verb.

sentencex (Wikimedia's rule-based segmenter, which knows each language's abbreviations:
"Dr.", "U.S.", "z.B.", "Sr.") does the splitting. A leaf: it imports no part of digest.
"""

from __future__ import annotations

import re

import sentencex

# A summary is the lead sentence, and the next ones while it is shorter than a third of the
# limit: a short standfirst ("He was 38.", "Capra? Coppola?") says too little alone, while
# a long one's next sentence mostly says it again (the standfirst, then the article's lead).
THIN = 3

_ENDS_SENTENCE = re.compile(r"[.!?…][\"'”’»)\]]*$")
_HANGING = " \t\n,;:–—-"  # stripped from the end of a cut text
# Words that cannot end a phrase, in the languages the email is localised to (en, fr, de,
# es) and Portuguese: a cut before the ellipsis drops them.
_DANGLING = frozenset(
    " ".join(
        (
            "a an the of to in on at by for from with and or but nor as than that into onto",
            "le la les un une des du de à au aux en et ou mais pour par sur dans avec sans que",
            "der die das den dem des ein eine einen einem einer und oder aber mit von zu zum",
            "zur im am auf aus bei für nach über unter vor dass als wie",
            "el los las una unos unas del al y o e u ni pero con sin por para como",
            "os as um uma uns umas do da dos das ao aos no na nos nas em pelo pela pelos",
            "pelas com sem mas",
        )
    ).split(" ")
)


def lead(text: str, language: str | None, limit: int) -> str:
    """The lead sentence of ``text`` (with the next while it is short), at most ``limit``
    characters, ending at a sentence's end or in an ellipsis after a whole word."""
    text = text.strip()
    if not text:
        return ""
    sentences = [s.strip() for s in sentencex.segment(language_code(language), text)]
    sentences = [s for s in sentences if s] or [text]
    if len(sentences) > 1 and not ends_sentence(sentences[-1]):
        sentences.pop()  # the source's (or the caller's window's) cut in mid-sentence
    chosen: list[str] = []
    length = -1
    for sentence in sentences:
        if length + 1 + len(sentence) > limit or not ends_sentence(sentence):
            break
        if chosen and length >= limit // THIN:
            break  # the lead sentence says enough; a second one would mostly repeat it
        chosen.append(sentence)
        length += 1 + len(sentence)
    if chosen:
        return " ".join(chosen)
    return shorten(sentences[0], limit)


def shorten(text: str, limit: int) -> str:
    """``text`` cut after its last whole word within ``limit`` characters, with an
    ellipsis; a function word left hanging at the cut is dropped."""
    cut = text
    if len(text) >= limit:
        cut = text[: limit - 1]  # the ellipsis takes the last character
        if text[limit - 1] != " " and " " in cut:
            cut = cut.rsplit(" ", 1)[0]  # the last word did not fit whole
    words = cut.rstrip(_HANGING).split(" ")
    while len(words) > 3 and words[-1].rstrip(_HANGING).lower() in _DANGLING:
        words.pop()
    return " ".join(words).rstrip(_HANGING).rstrip(".") + "…"


def ends_sentence(text: str) -> bool:
    """True when ``text`` ends as a sentence does (only its last characters are searched)."""
    return _ENDS_SENTENCE.search(text, max(0, len(text) - 8)) is not None


# A BCP 47 language tag as pages, sitemaps and admins write it ("en", "pt-BR").
_LANGUAGE_TAG = re.compile(r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$")


def language_tag(value: str) -> str | None:
    """``value`` stripped when it is a language tag ("en", "pt-BR"), at most 35 characters;
    None for anything else. One rule for what a page or a sitemap declares and for a
    source's ``language`` in the config."""
    tag = value.strip()
    return tag if _LANGUAGE_TAG.match(tag) and len(tag) <= 35 else None


def written_tag(value: str) -> str | None:
    """``language_tag`` of a tag as feeds and admins write it: "pt_BR" is "pt-BR"."""
    return language_tag(value.replace("_", "-"))


def language_code(tag: str | None) -> str:
    """The language sentencex is asked for: the tag's primary subtag, English by default."""
    if not tag:
        return "en"
    return tag.replace("_", "-").split("-", 1)[0].lower() or "en"
