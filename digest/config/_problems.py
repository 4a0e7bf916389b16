"""A config's problems in an admin's words: each pydantic error (and each key written twice
or retired) said with its file, line and key, and what to write instead.

Apart from the loader (``loader.parse_config`` calls ``duplicate_problems``,
``without_deprecated`` and ``problem``; ``lenient_setting`` reads a default by
``field_info``) so the loading reads in one sitting.
"""

from __future__ import annotations

import difflib
import typing
from typing import Any

from pydantic import BaseModel
from pydantic.fields import FieldInfo

from digest.config._lines import Path as KeyPath
from digest.config._lines import dotted, line_of
from digest.config.models import Config
from digest.errors import ConfigProblem


def duplicate_problems(
    raw: dict[str, Any], lines: dict[Any, int], file: str
) -> list[ConfigProblem]:
    """Source names and digest ids must be unique: they are how the database knows them."""
    problems = []
    for table, key in (("sources", "name"), ("digests", "id")):
        seen: dict[object, int] = {}
        items = raw.get(table)
        if not isinstance(items, list):
            continue
        for index, item in enumerate(items):
            value = item.get(key) if isinstance(item, dict) else None
            if not isinstance(value, str):
                continue  # missing or of the wrong type: validation reports it
            if value in seen:
                path = (table, index, key)
                problems.append(
                    ConfigProblem(
                        file,
                        line_of(lines, path),
                        dotted(path),
                        f"{value!r} is already used by {table}[{seen[value]}]",
                        f"give each entry of [[{table}]] a unique {key}",
                    )
                )
            else:
                seen[value] = index
    return problems


# Keys an earlier version read, and what replaces them: an upgrade must not silently
# change what a kept setting means.
RETIRED = {
    "rank.similarity": "it was headline word overlap (Jaccard, 0.5 by default); stories now "
    "match by the cosine similarity of their words: replace it with `story_similarity = 0.25` "
    "(lower joins more, higher splits more)",
}


# Keys an earlier version read that no longer change anything, and why: still accepted,
# so a file written for that version loads as it is, and `digest check` says each can go
# (``Config.ignored_keys``).
DEPRECATED: dict[tuple[str, ...], str] = {
    ("rank", "sent_penalty"): "a story an earlier edition sent is left out of the edition "
    "unless it has grown since (then it goes again, as an update), so no score is lowered",
}


def without_deprecated(raw: dict[str, Any]) -> tuple[dict[str, Any], dict[KeyPath, str]]:
    """The file's tables without the ``DEPRECATED`` keys (the tables on their way copied,
    the rest shared), and the ones it had, with why they do nothing."""
    ignored: dict[KeyPath, str] = {}
    raw = dict(raw)
    for path, why in DEPRECATED.items():
        *tables, key = path
        parent = raw
        for name in tables:
            child = parent.get(name)
            if not isinstance(child, dict):
                break
            parent[name] = parent = dict(child)
        else:
            if key in parent:
                del parent[key]
                ignored[path] = why
    return raw, ignored


def problem(err: Any, lines: dict[Any, int], file: str) -> ConfigProblem:
    path = tuple(err["loc"])
    kind = err["type"]
    info = field_info(path)
    help_text = info.description if info and info.description else ""
    key = dotted(path)
    line = line_of(lines, path)
    if info is not None and _model_in(info.annotation) is not None:  # a [table] or [[tables]]
        return _table_problem(err, info, help_text, file, line)
    if kind == "missing":
        name = path[-1]
        fix = f"add `{name} = ...` ({help_text})" if help_text else f"add `{name}`"
        return ConfigProblem(file, line, key, "required key is missing", fix)
    if kind == "extra_forbidden":
        return _unknown_key_problem(path, file, line)
    return _value_problem(err, info, help_text, file, line)


def _table_problem(
    err: Any, info: FieldInfo, help_text: str, file: str, line: int
) -> ConfigProblem:
    """A [table] or [[tables]] that is missing, empty, or written as something else."""
    path = tuple(err["loc"])
    kind = err["type"]
    key = dotted(path)
    many = typing.get_origin(info.annotation) is list
    if kind in ("missing", "too_short"):
        fix = f"add at least one [[{key}]] table" if many else f"add a [{key}] table"
        what = "required table is missing" if kind == "missing" else "needs at least one entry"
        return ConfigProblem(file, line, key, what, f"{fix} ({help_text})")
    name = dotted(path[:-1] if isinstance(path[-1], int) else path)
    fix = f"write each entry as a [[{name}]] table" if many else f"write a [{name}] table"
    return ConfigProblem(file, line, key, str(err["msg"]), fix)


def _unknown_key_problem(path: tuple[Any, ...], file: str, line: int) -> ConfigProblem:
    """A key no model knows: retired, misplaced, a near miss, or else the keys known here."""
    key = dotted(path)
    if key in RETIRED:
        return ConfigProblem(file, line, key, "this key is no longer read", RETIRED[key])
    known = _known_keys(path[:-1])
    close = difflib.get_close_matches(str(path[-1]), known, n=1)
    misplaced = _misplaced(path)
    if misplaced:
        fix = misplaced
    elif close:
        fix = f"did you mean {close[0]!r}?"
    elif headed := _lost_header(path):
        fix = headed
    else:
        fix = f"known keys here: {', '.join(known)}"
    return ConfigProblem(file, line, key, "unknown key", fix)


def _lost_header(path: tuple[Any, ...]) -> str:
    """The header a key probably lost: ``name`` under [rank] is a [[sources]] key whose
    ``[[sources]]`` line was deleted or commented out, which put it in the table above."""
    for table in ("sources", "digests"):
        if path[:1] != (table,) and path[-1] in _known_keys((table, 0)):
            return (
                f"`{path[-1]}` is a key of [[{table}]]: is a [[{table}]] line missing (or "
                "commented out) above it?"
            )
    return ""


def _value_problem(
    err: Any, info: FieldInfo | None, help_text: str, file: str, line: int
) -> ConfigProblem:
    """A value of the wrong type or out of range, with what a right one looks like."""
    path = tuple(err["loc"])
    key = dotted(path)
    what = str(err["msg"]).removeprefix("Value error, ")
    if err["type"] == "value_error":  # our validators say what is wrong and how to fix it
        return ConfigProblem(file, line, key, what, "")
    if "input" in err and not isinstance(err["input"], dict | list):
        what = f"{what} (got {err['input']!r})"
    expected = _expected(info.annotation, item=isinstance(path[-1], int)) if info else ""
    fix = f"write {expected}" if expected else ""
    if help_text:
        fix = f"{fix} ({help_text})" if fix else help_text
    return ConfigProblem(file, line, key, what, fix)


def _misplaced(path: tuple[Any, ...]) -> str:
    """Where a key unknown in its table belongs when an enclosing table knows it, else "".

    A key written below a sub-table's header lands in that sub-table (``transport`` after
    ``[delivery.smtp]``); a near-miss there would be the wrong hint.
    """
    key, table = path[-1], path[:-1]
    for end in range(len(table) - 1, -1, -1):
        if isinstance(table[end], int):
            continue  # ('sources',) without its index is not a table of its own
        parent = table[:end]
        if key not in _known_keys(parent):
            continue
        if not parent:
            return _top_level(str(key), table)
        return f"`{key}` belongs to {_header(parent)}: move it above {_header(table)}"
    return ""


# A table's name written as a key of another table: not a line in the wrong place, but
# another idea of how the two relate, answered with how they do.
_RELATIONS = {
    ("digests", "sources"): "a digest takes the stories of every source that has one of its "
    "topics: give those [[sources]] topics = [...] and list the topic in this digest's "
    "topics (topics = [] takes every source)",
}


def _top_level(key: str, table: tuple[Any, ...]) -> str:
    """Where a top-level key written inside a table goes: above the first header, unless
    it names a table of its own, which no move above a header would make right."""
    relation = _RELATIONS.get((str(table[0]), key))
    if relation:
        return relation
    info = Config.model_fields[key]
    if _model_in(info.annotation) is None:
        return f"`{key}` is top-level: move it above the first [table] header"
    many = typing.get_origin(info.annotation) is list
    own = f"[[{key}]] tables of its own" if many else f"a [{key}] table of its own"
    return f"`{key}` is not a key of {_header(table)}: its settings go in {own}"


def _header(table: tuple[Any, ...]) -> str:
    """How a table's header is written: ``[delivery.smtp]``, or ``[[sources]]`` for an item."""
    name = ".".join(str(part) for part in table if not isinstance(part, int))
    return f"[[{name}]]" if isinstance(table[-1], int) else f"[{name}]"


_SIMPLE = {bool: "true or false", int: "a whole number", float: "a number", str: 'a "string"'}


def _expected(annotation: Any, item: bool = False) -> str:
    """What a value of this type looks like in TOML, for the fix of a wrong-type error."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    origin = typing.get_origin(annotation)
    if origin is list:
        if item:
            return _expected(args[0])
        return 'a list such as ["a", "b"]' if args == [str] else "a list in [brackets]"
    if origin is typing.Literal:
        return "one of " + ", ".join(f'"{a}"' for a in args)
    if len(args) == 1:  # X | None: the key is optional, and written as X
        return _expected(args[0])
    return _SIMPLE.get(annotation, "")


def _walk(path: tuple[Any, ...]) -> tuple[type[BaseModel] | None, FieldInfo | None]:
    """Follow a location through the models: the model holding the last key and its field."""
    model: type[BaseModel] | None = Config
    info: FieldInfo | None = None
    for part in path:
        if isinstance(part, int) or model is None:
            continue
        info = model.model_fields.get(str(part))
        if info is None:
            return None, None
        model = _model_in(info.annotation)
    return model, info


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _model_in(arg)
        if found is not None:
            return found
    return None


def field_info(path: tuple[Any, ...]) -> FieldInfo | None:
    return _walk(path)[1]


def _known_keys(path: tuple[Any, ...]) -> list[str]:
    model = _walk(path)[0] if path else Config
    if model is None:
        return []
    return [k for k in model.model_fields if k != "base_dir"]
