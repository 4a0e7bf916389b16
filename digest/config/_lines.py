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


def _scan_value(line: str, depth: int, multiline: str) -> tuple[int, str]:
    """Carry a value's state across one line: bracket depth, and the open multi-line quote.

    One pass follows every kind of string and stops at a comment, so a bracket or a triple
    quote inside a comment or a single-line string counts for nothing.
    """
    quote, i = "", 0
    while i < len(line):
        ch = line[i]
        if multiline or quote:
            i, closed = _in_string(line, i, multiline or quote, bool(multiline))
            if closed:
                multiline = quote = ""
            continue
        if line.startswith(('"""', "'''"), i):
            multiline = line[i : i + 3]
            i += 3
            continue
        elif ch in "\"'":
            quote = ch
        elif ch == "#":
            break
        elif ch == "[":
            depth += 1
        elif ch == "]":
            depth -= 1
        i += 1
    return depth, multiline


def _in_string(line: str, i: int, delimiter: str, multiline: bool) -> tuple[int, bool]:
    """One step inside a string at ``line[i]``: the next index, and whether the string closed."""
    if line[i] == "\\" and delimiter[0] == '"':  # only basic strings have escapes
        return i + 2, False
    if line.startswith(delimiter, i):
        i += len(delimiter)
        # Up to two more quotes right after the closing three belong to the text.
        extra = 2 if multiline else 0
        while extra and line.startswith(delimiter[0], i):
            i, extra = i + 1, extra - 1
        return i, True
    return i + 1, False


def key_lines(text: str) -> dict[Path, int]:
    """Map every table and key path of a TOML document to its 1-based line number."""
    lines: dict[Path, int] = {}
    table: Path = ()
    array_counts: dict[tuple[str, ...], int] = {}
    depth, multiline = 0, ""
    for number, line in enumerate(text.splitlines(), start=1):
        if depth > 0 or multiline:  # inside a value that spans lines
            depth, multiline = _scan_value(line, depth, multiline)
            depth = max(0, depth)
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
            depth, multiline = _scan_value(line[key.end() :], 0, "")
            depth = max(0, depth)
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
