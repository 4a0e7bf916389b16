"""A page source's CSS selectors checked as the page reader compiles them, so a typo in
`links` or `breaking` fails `digest check` with its line rather than matching nothing."""

from __future__ import annotations

from typing import Any

from selectolax.lexbor import LexborHTMLParser, SelectolaxError

from digest.config._lines import dotted, line_of
from digest.errors import ConfigProblem


def selector_problems(raw: dict[str, Any], lines: dict[Any, int], file: str) -> list[ConfigProblem]:
    """A page source's CSS selectors, compiled by selectolax as the page reader compiles them.

    Checked here rather than in the model so a mistake fails `digest check` with its line,
    while a SourceConfig built in code still reaches the reader's own SourceError.
    """
    problems = []
    items = raw.get("sources")
    for index, item in enumerate(items if isinstance(items, list) else []):
        for key in ("links", "breaking"):
            value = item.get(key) if isinstance(item, dict) else None
            if not isinstance(value, str):
                continue  # unset, or of the wrong type: validation reports that
            unclosed = _unclosed(value)
            try:
                LexborHTMLParser("").css(value)
            except (SelectolaxError, ValueError):
                unclosed = unclosed or "?"
            if unclosed:
                path = ("sources", index, key)
                why = f": a {unclosed} is never closed" if unclosed != "?" else ""
                problems.append(
                    ConfigProblem(
                        file,
                        line_of(lines, path),
                        dotted(path),
                        f"{value!r} is not a CSS selector selectolax can read{why}",
                        "write one such as 'section.latest a' (descendant), 'ul > li > a' "
                        f"(child) or '.breaking a', or remove `{key}` to let digest find them",
                    )
                )
    return problems


_CLOSERS = {"[": "]", "(": ")"}


def _unclosed(selector: str) -> str:
    """The bracket, parenthesis or quote a selector opens and never closes, or "".

    selectolax closes them itself at the end (``div[class=latest`` reads as
    ``div[class=latest]``, which matches the div, never a link), so a typo would pass.
    """
    stack: list[str] = []
    quote = ""
    escaped = False
    for char in selector:
        if escaped:
            escaped = False
        elif char == "\\":
            escaped = True
        elif quote:
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char in _CLOSERS:
            stack.append(char)
        elif stack and char == _CLOSERS[stack[-1]]:
            stack.pop()
    return quote or (stack[-1] if stack else "")
