"""Where each key of a TOML file sits: a small line scanner, because tomllib keeps no positions.

It understands what configs use: ``[table]``, ``[[array.of.tables]]``, ``key = value`` with
dotted keys, and values that span lines (arrays, multi-line strings), so an error can name
the line of the key at fault, or of its table when the key is missing.
"""

from __future__ import annotations

import re

Path = tuple[str | int, ...]

_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_KEY = re.compile(
    r"""^\s*((?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*')(?:\s*\.\s*(?:[A-Za-z0-9_-]+|"[^"]*"|'[^']*'))*)\s*="""
)


def _split_key(key: str) -> list[str]:
    parts = re.findall(r"""[A-Za-z0-9_-]+|"[^"]*"|'[^']*'""", key)
    return [p.strip("\"'") for p in parts]


def _open_brackets(line: str) -> int:
    """Net count of '[' minus ']' outside strings and comments on one line."""
    depth, quote, escaped = 0, "", False
    for ch in line:
        if escaped:
            escaped = False
        elif quote:
            if ch == quote:
                quote = ""
            elif ch == "\\" and quote == '"':  # only basic strings have escapes
                escaped = True
        elif ch in "\"'":
            quote = ch
        elif ch == "#":
            break
        elif ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
    return depth


def key_lines(text: str) -> dict[Path, int]:
    """Map every table and key path of a TOML document to its 1-based line number."""
    lines: dict[Path, int] = {}
    table: Path = ()
    array_counts: dict[tuple[str, ...], int] = {}
    depth = 0
    in_multiline = ""
    for number, line in enumerate(text.splitlines(), start=1):
        if in_multiline:
            if line.count(in_multiline) % 2 == 1:
                in_multiline = ""
            continue
        if depth > 0:
            depth += _open_brackets(line)
            continue
        header = _HEADER.match(line)
        if header:
            names = tuple(_split_key(header.group(2)))
            if header.group(1) == "[[":
                index = array_counts.get(names, -1) + 1
                array_counts[names] = index
                # Nested tables below an array item reset when the array restarts.
                for other in [k for k in array_counts if k[: len(names)] == names and k != names]:
                    del array_counts[other]
                table = (*_resolve(names, array_counts),)
            else:
                table = _resolve(names, array_counts)
            lines.setdefault(table, number)
            continue
        key = _KEY.match(line)
        if key:
            path = (*table, *_split_key(key.group(1)))
            lines.setdefault(path, number)
            rest = line[key.end() :]
            for quote in ('"""', "'''"):
                if rest.count(quote) % 2 == 1:
                    in_multiline = quote
            depth = max(0, _open_brackets(rest))
    return lines


def _resolve(names: tuple[str, ...], array_counts: dict[tuple[str, ...], int]) -> Path:
    """Insert the current index after every prefix of ``names`` that is an array of tables."""
    path: list[str | int] = []
    for i, name in enumerate(names):
        path.append(name)
        prefix = names[: i + 1]
        if prefix in array_counts:
            path.append(array_counts[prefix])
    return tuple(path)


def line_of(lines: dict[Path, int], path: Path) -> int:
    """The line of ``path``, else of its nearest parent present in the file, else 1."""
    for end in range(len(path), 0, -1):
        if path[:end] in lines:
            return lines[path[:end]]
    return 1


def dotted(path: Path) -> str:
    """``('sources', 2, 'url')`` -> ``sources[2].url``, the key path the user reads."""
    out = ""
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out
