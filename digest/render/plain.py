"""The plain-text part's layout: lines of at most 78 columns, numbered items whose wrapped
lines hang under their text, and links a client can open whole.

RFC 5322 asks for lines of at most 78 characters; a client shows longer ones wrapped where
it likes, or scrolled. A URL is never broken (a client would link only its first half):
one that does not fit beside its label goes on a line of its own, and one longer than a
line stands alone and runs past the margin.
"""

from __future__ import annotations

import textwrap
from collections.abc import Callable

WIDTH = 78


def wrap(text: str, indent: int | str = 0, first: str | None = None) -> str:
    """``text`` in lines of at most ``WIDTH`` columns, each after ``indent`` (spaces, or the
    string itself); the first line after ``first`` instead when given (a hanging indent).

    Words are never broken, nor split at their hyphens: a URL or a long word that does not
    fit goes whole onto a line of its own.
    """
    pad = " " * indent if isinstance(indent, int) else indent
    return textwrap.fill(
        " ".join(text.split()),
        WIDTH,
        initial_indent=pad if first is None else first,
        subsequent_indent=pad,
        break_long_words=False,
        break_on_hyphens=False,
    )


def link(label: str, url: str, indent: int = 0) -> str:
    """``Label: URL`` on one line when it fits in ``WIDTH`` columns; else the label, and
    the URL alone on the next line (so a client links all of it)."""
    pad = " " * indent
    line = f"{pad}{label} {url}"
    if len(line) <= WIDTH:
        return line
    return f"{wrap(label, indent)}\n{pad}{url}"


def numbered(n: int, total: int, text: str) -> str:
    """Item ``n`` of ``total``, its number right-aligned so that the text of every item,
    and each wrapped line under it, starts in the same column past item 9:
    `` 9. Headline`` / ``10. Headline``."""
    width = item_indent(total)
    return wrap(text, width, first=f"{n}.".rjust(width - 1) + " ")


def item_indent(total: int) -> int:
    """The column where the text of numbered items starts: ``"1. "`` is 3, ``"10. "`` 4."""
    return len(str(max(total, 1))) + 2


def jinja_globals() -> dict[str, Callable[..., str | int]]:
    """``wrap``, ``link``, ``numbered`` and ``item_indent`` for the text template."""
    return {"wrap": wrap, "link": link, "numbered": numbered, "item_indent": item_indent}
