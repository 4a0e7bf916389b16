"""Summaries written for the email: the lead one or two sentences of what a feed or page says.

A feed's description is written for a feed reader, not for a brief: a standfirst in a
list, then the first paragraphs, then "Continue reading...", a tweet's links, a live
blog's time stamps. ``email_summary`` keeps what a reader of the email wants, in three
steps:

1. The HTML's blocks (paragraphs, list items, line breaks) are marked before
   ``html_to_text`` flattens them, so each block reads as a sentence of its own: a list
   item without a full stop gets one ("...on Wednesday. Former teams..."). A block that
   is only a link (a list of related stories) is dropped: it points elsewhere; so is a
   list item with a link once the text has begun (a live blog's standfirst: the other
   blogs, the writer's book at a shop, "email Scott here"), and so are a live blog's
   entries after its standfirst (from the first time stamp or minute mark on).
2. Each block loses the furniture around the news (``BOILERPLATE`` names each kind):
   read-more links, "The post X appeared first on Y", share and tweet links, bare URLs,
   bylines, live-blog time stamps, photo credits, "[...]" and the like, in the languages
   the email is localised to (en, fr, de, es) and Portuguese.
3. ``sentences.lead`` (sentencex, which knows each language's abbreviations) takes the
   lead sentence, with the next while it is short, all within ``limit`` characters; a lead
   sentence longer than that is cut after a whole word and ends in an ellipsis. An
   agency's or a city's dateline before it is left out.

The result is plain text: ``html_to_text`` did the parsing, and nothing here adds markup.
"""

from __future__ import annotations

import html
import re

from digest.config.models import GatherConfig, default
from digest.sentences import ends_sentence, lead
from digest.sources.normalise import html_to_text, strip_tags, too_deep

# gather.summary_chars's default, for callers without a config (a test keeps them equal).
DEFAULT_CHARS: int = default(GatherConfig, "summary_chars")
# Marks a block boundary through html_to_text: printable, so no cleaner of invisible or
# control characters takes it out; ASCII, so an ASCII text stays one byte a character on
# its way through nh3 (a symbol such as U+241E made html_to_text a quarter slower). Text
# that holds it anyway is only split there.
_MARK = "@@@"
_BLOCKS = (
    "p|br|div|li|ul|ol|dd|dt|tr|td|th|table|blockquote|h[1-6]|hr|pre|figure|figcaption"
    "|section|article|header|footer|aside"
)
_BLOCK_TAG = re.compile(rf"<(?=/?(?:{_BLOCKS})\b)", re.I)  # "<" first: re skips to each
# A paragraph or list item that is nothing but a link (with an optional "Related:" label
# before it): a pointer to another story, not this one's text.
_LINK_ONLY = re.compile(
    r"<(li|p)\b[^>]*>\s*(?:<(span|strong|b|em)\b[^>]*>[^<]{0,40}</\2>\s*)?"
    r"<a\b[^>]*>(?:[^<]|<(?!/?(?:a|li|p)\b))*</a>\s*(?:<br\s*/?>\s*)*</\1>",
    re.I,
)
# A list item that holds a link, after the text has begun: in a standfirst's list, the
# items with links point away from the story (a live blog's links to the other blogs, the
# writer's book at a shop, "email Scott here"), while its points of news carry none.
_LINKED_ITEM = re.compile(
    r"<li\b[^>]*>(?:[^<]|<(?!/?li\b))*?<a\b[^>]*\bhref(?:[^<]|<(?!/?li\b))*</li>", re.I
)
_ANY_TAG = re.compile(r"<[^>]*>")
# Plain text (a JSON Feed's content_text, a page's description) marks paragraphs with a
# blank line and list items with a bullet at the start of a line.
_TEXT_BREAK = re.compile(r"\n\s*\n|\n(?=[ \t]*[-*•·][ \t])")
_SPACE = re.compile(r"\s+")

# A person's name, capitalised whatever the case-blind pattern around it: "Jane Doe".
_NAME = (
    r"(?-i:[A-ZÀ-Ý][\w’'.-]+(?:\s+(?:(?:de|van|von|der|da|del|la|le|du)\s+)?"
    r"[A-ZÀ-Ý][\w’'.-]+){0,3})"
)
_ZONE = r"(?:GMT|BST|UTC|CET|CEST|WET|WEST|EET|EEST|[ECMP][SD]T|AE[SD]T|IST|MEZ|MESZ|Uhr|h)"
_CLOCK = rf"\d{{1,2}}(?:[.:h]\d{{2}})?\s*(?:[ap]\.?m\.?)?(?:\s*{_ZONE}\b)?"
_DATE = r"(?:\d{1,2}\s+[A-Za-zéû]{3,9}\.?(?:\s+\d{4})?|[A-Za-z]{3,9}\.?\s+\d{1,2}(?:,\s*\d{4})?)"

# Read-more links and calls to action, as a block of their own or after a sentence's end.
_READ_MORE = (
    r"continue reading|keep reading|read more|read on|read the (?:full|whole|rest of the) "
    r"(?:story|article|post)|read (?:the )?full (?:story|article)|full story|click here"
    r"(?: to read more)?|find out more|learn more|watch(?: the)?(?: video| live)?|listen"
    r"(?: now)?|more\s*(?:»|›|→)"
    r"|lire la suite|lire l[’']article|lire plus|en savoir plus|la suite"
    r"|weiterlesen|mehr lesen|mehr erfahren|zum artikel|artikel lesen|mehr dazu"
    r"|leer más|seguir leyendo|sigue leyendo|continuar leyendo|leer el artículo"
    r"|más información|ver más|leia mais|continuar a ler|ler mais|saiba mais"
)
# Whole blocks that are furniture: see-also lines, share bars, contact and sign-up lines,
# adverts, time stamps, bylines and photo credits standing alone.
_DROP_BLOCK = re.compile(
    r"^(?:"
    r"(?:related|see also|read also|read more|more on this(?: story)?|lire aussi|à lire aussi"
    r"|voir aussi|lesen sie auch|mehr zum thema|auch interessant|lee también|ver también"
    r"|leia também|veja também)\s*:.*"
    r"|(?:share|tweet|email|e-mail|print|partager|teilen|drucken|compartir|imprimir)"
    r"(?:\s+(?:this|on|via|sur|auf|en|por|en)\b.{0,40})?"
    r"|(?:and\s+)?(?:e-?mail|tweet|message|follow|write to)\s+(?:(?-i:[A-Z]\w+)|us|me)\b.*"
    r"|sign up\b.*|subscribe\b.{0,80}|abonnez-vous\b.*|jetzt abonnieren\b.*|suscríbete\b.*"
    r"|advertisement|advertising|publicité|anzeige|werbung|publicidad|publicidade"
    rf"|(?:updated|last updated|published|mis à jour|publié|aktualisiert|veröffentlicht"
    rf"|actualizado|publicado|atualizado)?(?:\s+(?:at|on|à|le|um|am|a las|el|em|às))?\s*"
    rf"{_CLOCK}(?:,?\s*{_DATE})?"
    rf"|(?:by|par|von|por)\s+{_NAME}(?:\s*(?:,|and|&|et|und|y|e)\s*{_NAME})*"
    r"(?:\s*,\s*[^.!?]{0,60})?"  # "By Jane Doe, Political Correspondent"
    r"|(?:photo(?:graph)?s?|picture|image|illustration|foto|fotos|bild|imagen"
    r"|crédits? photo)\s*:.{0,120}"
    r")[\s.:]*$",
    re.I,
)
# Furniture at the start of a block: live-blog time stamps and minute marks, "Updated at",
# a byline before a separator.
_BLOCK_START = re.compile(
    r"^(?:"
    rf"(?:(?:updated|last updated|mis à jour|aktualisiert|actualizado|atualizado)"
    rf"(?:\s+(?:at|à|um|am|a las|às))?\s*)?{_CLOCK}(?:\s+{_DATE})?\s*(?:[:|–—-]\s*|(?=\d))"
    r"|\d{1,3}(?:\+\d{1,2})?\s*(?:min|mins|minute|minutes|’|')\s*[:.–—-]\s*"
    rf"|(?:by|par|von|por)\s+{_NAME}\s*[|–—]\s*"
    r")+",
    re.I,
)
# A live blog's entry begins at its time stamp or minute mark ("8.13pm GMT", "13 min:"):
# after the standfirst, the entries are the running commentary, not the story's lead.
_LIVE_ENTRY = re.compile(
    rf"^\s*(?:\d{{1,2}}[.:h]\d{{2}}\s*(?:[ap]\.?m\.?)?(?:\s*{_ZONE}\b)?"
    rf"|\d{{1,2}}\s*[ap]\.?m\.?(?:\s*{_ZONE}\b)?"
    r"|\d{1,3}(?:\+\d{1,2})?\s*(?:min|mins|minute|minutes|’|')\s*[:.–—-])(?!\w)",
    re.I,
)
# Furniture anywhere in the text.
_ANYWHERE = re.compile(
    # WordPress's footer, in its English, French, German, Spanish and Portuguese words.
    r"(?:the post|l[’']article|der beitrag|la entrada|el artículo|o post|a entrada)\s.{1,300}?"
    r"\s(?:appeared first on|est apparu en premier sur|erschien zuerst auf|wurde zuerst auf"
    r"|se publicó primero en|aparece primero en|apareceu primeiro em)\s[^.!?]{1,120}"
    r"(?:[.!?]|$)(?:\s*veröffentlicht\.)?"
    # A tweet's embed: "— Name (@handle) January 31, 2018", its links and hashtags at the end.
    rf"|[—–-]\s*[^()\n]{{1,60}}\(@\w{{1,20}}\)\s*{_DATE}"
    r"|\bpic\.twitter\.com/\S+|\bhttps?://\S+|\bwww\.[a-z0-9-]+\.\S+"
    r"|click to share on \w+(?:\s*\(opens in new window\))?"
    # A photo credit in brackets.
    r"|[(\[](?:photo(?:graph)?|picture|image|foto|bild|imagen|crédit photo)\s*:[^)\]]{0,100}[)\]]",
    re.I,
)
# What any text _ANYWHERE takes out holds one of these (lower case): a cheap look first.
_ANYWHERE_HINT = re.compile(
    r"://|www\.|pic\.twitter|\(@|first on|premier sur|zuerst auf|primero en|primeiro em"
    r"|click to share|[(\[](?:photo|picture|image|foto|bild|imagen|crédit)"
)
# Furniture at the end of a block: read-more links after a sentence, a trailing photo
# credit, hashtags, a "|" or "–" left hanging.
# Each is searched for only in a block's last characters, and only when a cheap test says
# it may be there: these patterns are anchored at the end, which Python's re cannot start
# from, so a search on the whole block would try them at every position.
_READ_MORE_END = re.compile(
    rf"(?:(?<=[.!?…:\"”’»)\]])|^)\s*(?:{_READ_MORE})\s*(?:\.{{2,}}|…|»|›|→|>>|[.!:])*\s*$",
    re.I,
)
_READ_MORE_TAIL = 48  # the longest phrase with its punctuation
_CREDIT_END = re.compile(
    r"\s+(?:photo(?:graph)?|picture|image|foto|bild|imagen|crédit photo)\s*:\s*[^.!?]{1,100}$",
    re.I,
)
_CREDIT_WORD = re.compile("photo|picture|image|foto|bild|imagen|crédit")  # lower case
_HASHTAGS_END = re.compile(r"(?:\s+#\w+)+\s*$")
_SEPARATORS = "|–—•·"
# The source's own cut: "[...]", "[…]", "(...)", "...", "…" at the end of the text.
_CUT_BY_SOURCE = re.compile(r"\s*(?:[\[(]\s*(?:\.{3}|…)\s*[\])]|\.{3,}|…)\s*$")
_HAS_WORD = re.compile(r"\w")
# A dateline before the lead: "MOSCOU, 24 SET (ANSA) - ", "Nova York, 24 set (EFE).- ",
# "BRASÍLIA (Reuters) - ", "Bengaluru, May 3: ", "MANGALURU: ". A brief has no room for it.
_DATELINE = re.compile(
    rf"^(?:[^.!?:()]{{1,40}}\((?-i:[A-Z][\w/]{{1,12}})\)\.?\s*[-–—]"
    rf"|[A-ZÀ-Ý][\w .'’-]{{1,30}},\s*{_DATE}\s*:|(?-i:[A-ZÀ-Ý]{{2,}}(?:[ -][A-ZÀ-Ý]{{2,}})?)\s*:)"
    r"\s*(?=[\w\"“‘'«])"
)
# What goes before a block's first word: an emoji, a "|" or a bullet left by the layout.
_LEADING = re.compile(r"^[^\w\"“‘'(¿¡«„]+")
_HANGING = " \t\n,;:–—-"  # stripped from the end of a cut text

# Names of the patterns, for tests and for whoever wonders what is taken out.
BOILERPLATE = {
    "read more": _READ_MORE,
    "block": _DROP_BLOCK.pattern,
    "block start": _BLOCK_START.pattern,
    "anywhere": _ANYWHERE.pattern,
    "read more at the end": _READ_MORE_END.pattern,
    "photo credit at the end": _CREDIT_END.pattern,
}


def email_summary(
    text_or_html: str, language: str | None, limit: int = DEFAULT_CHARS, *, markup: bool = True
) -> str:
    """The lead one or two sentences of a feed's or page's text, furniture removed, at most
    ``limit`` characters, ending at a sentence's end or in an ellipsis after a whole word.

    ``markup=False``: the value is text (an Atom ``type="text"`` summary), so "Vec<T>" in it
    is kept as written, as ``html_to_text`` keeps it.
    """
    text = _clean(text_or_html, 6 * limit + 1000, markup)
    if not text:
        return ""
    # sentencex is fast, but a dump of a whole article need not be split to the end:
    # enough for two sentences of the limit, with room for the one after.
    return lead(_DATELINE.sub("", text[: 3 * limit + 200], count=1), language, limit)


def _clean(value: str, window: int, markup: bool = True) -> str:
    """The text's blocks, furniture removed, joined as sentences. Where the source cut its
    text short ("[...]", "..."), the words before the cut are left without a full stop.

    Only the first ``window`` characters of ``value`` are read: the lead sentences are in
    them, and a live blog's whole day need not go through the HTML parser.
    """
    if not value:
        return ""
    if markup and too_deep(value):
        # Hostile nesting (the feed's item gets a note): its text, never a parse.
        value, markup = strip_tags(value), False
    cut_here = len(value) > window
    marked = _marked(value[:window] if cut_here else value, markup)
    blocks, cut_here = _blocks(html_to_text(marked, markup=markup), cut_here)
    if not blocks:
        return ""
    last = _last_block(blocks.pop(), cut_here)
    return " ".join([*map(_sentence_end, blocks), *([last] if last else [])])


def _marked(value: str, markup: bool) -> str:
    """``value`` with a mark at each block's edge, the links that point away dropped, ready
    for ``html_to_text``; a text's line breaks are its block edges."""
    if markup and "<" not in value and "&lt;" in value:
        value = html.unescape(value)  # escaped twice: html_to_text would read it as markup too
    if not (markup and "<" in value):
        return _TEXT_BREAK.sub(f" {_MARK} ", value)
    value = _LINK_ONLY.sub(" ", value)
    if "<li" in value or "<LI" in value:
        value = _LINKED_ITEM.sub(lambda m: _pointer(value, m), value)
    return _BLOCK_TAG.sub(f" {_MARK} <", value)


def _blocks(text: str, cut_here: bool) -> tuple[list[str], bool]:
    """The marked text's blocks without their furniture, up to a live blog's first entry,
    and whether the last of them was cut in mid-sentence (not if the entries were left)."""
    blocks: list[str] = []
    for raw in text.split(_MARK):
        if blocks and _LIVE_ENTRY.match(raw):
            return blocks, False  # the story's own text ended whole, before the first entry
        if block := _block(raw):
            blocks.append(block)
    return blocks, cut_here


def _pointer(value: str, item: re.Match[str]) -> str:
    """A list item with a link (``_LINKED_ITEM``) dropped when text comes before it; the
    first item of the text is kept even so: it is the lead (a link blog's list)."""
    before = html.unescape(_ANY_TAG.sub(" ", value[: item.start()]))
    return " " if _HAS_WORD.search(before) else item.group()


def _last_block(last: str, cut_here: bool) -> str:
    """The last block as the summary ends it: without the words cut in mid-sentence (by
    the window, ``cut_here``, or by the source), else as a sentence."""
    cut = _CUT_BY_SOURCE.search(last, max(0, len(last) - 12))
    if cut_here:  # cut in mid-sentence, maybe in mid-word
        return last.rsplit(" ", 1)[0].rstrip(_HANGING) if " " in last else ""
    if cut:
        # The source cut its text short: its last words are not a sentence. When the
        # ellipsis sits on a letter ("renovaç..."), the last word is a piece of one.
        half_word = not cut.group().startswith((" ", "\t")) and last[: cut.start()][-1:].isalnum()
        last = last[: cut.start()]
        if half_word and " " in last:
            last = last.rsplit(" ", 1)[0]
        return last.rstrip(_HANGING) if _HAS_WORD.search(last) else ""
    return _sentence_end(last)


def _block(raw: str) -> str:
    """One block's text without its furniture; "" when it was all furniture."""
    block = raw.strip()
    low = block.lower()
    if _ANYWHERE_HINT.search(low):  # most blocks have none: skip the slow search
        block = _SPACE.sub(" ", _ANYWHERE.sub(" ", block)).strip()
    for _ in range(3):  # "Read more | Share" : each pass takes one piece off the end
        if not block or _DROP_BLOCK.match(block):
            return ""
        start = _BLOCK_START.match(block)
        trimmed = block[start.end() :] if start else block
        if trimmed[:1] and not trimmed[0].isalnum():
            trimmed = _LEADING.sub("", trimmed)
        trimmed = _end_trimmed(trimmed)
        if trimmed == block:
            break
        block = trimmed
    return block if _HAS_WORD.search(block) else ""


def _end_trimmed(block: str) -> str:
    """``block`` without the furniture at its end: a read-more link, a photo credit,
    hashtags, a separator left hanging."""
    size = len(block)
    end = _READ_MORE_END.search(block, max(0, size - _READ_MORE_TAIL))
    if end is None and "#" in block:
        end = _HASHTAGS_END.search(block, max(0, block.rfind(" ", 0, block.find("#"))))
    if end is None and _CREDIT_WORD.search(block[-130:].lower()):
        end = _CREDIT_END.search(block, max(0, size - 130))
    if end is not None:
        return block[: end.start()].strip()
    return block.rstrip(_SEPARATORS + " ") if block[-1:] in _SEPARATORS else block


def _sentence_end(block: str) -> str:
    """``block`` as a sentence: a full stop after a headline-like fragment or a list item."""
    if ends_sentence(block):
        return block
    return block.rstrip(_HANGING) + "."
