"""Load the TOML config into typed models, reporting every problem with file, line and key."""

from __future__ import annotations

import hashlib
import os
import re
import tomllib
from pathlib import Path

from pydantic import ValidationError

from digest.config._lines import key_lines, line_of
from digest.config._problems import duplicate_problems, field_info, problem, without_deprecated
from digest.config._selectors import selector_problems
from digest.config.models import Config
from digest.errors import ConfigError, ConfigProblem

DEFAULT_PATH = "digest.toml"
ENV_VAR = "DIGEST_CONFIG"


def config_path(explicit: str | os.PathLike[str] | None) -> Path:
    """``--config PATH``, else ``$DIGEST_CONFIG``, else ``./digest.toml``."""
    return Path(explicit or os.environ.get(ENV_VAR) or DEFAULT_PATH)


def load_config(path: str | os.PathLike[str] | None = None) -> Config:
    """Read and validate the config; raise ConfigError listing every problem found."""
    file = config_path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise ConfigError(
            [ConfigProblem(str(file), 0, "(file)", "no such file", "")],
            "run `digest init` to write a starter config, or pass --config PATH "
            f"(or set ${ENV_VAR})",
        ) from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            [ConfigProblem(str(file), 0, "(file)", f"cannot read it: {exc}", "")]
        ) from exc
    return parse_config(text, file)


def reload_config(current: Config, path: str | os.PathLike[str] | None = None) -> Config:
    """The config file read again by a running service (the daemon's SIGHUP, the console's
    Reload): the new config, or ConfigError, when the file is invalid or changes what only a
    restart can change (the database), and the caller keeps ``current``."""
    config = load_config(path)
    if config.service.database_url != current.service.database_url:
        raise ConfigError(
            [
                config.problem(
                    ("service", "database_url"),
                    "changed while digest runs, which keeps the database it opened",
                    "restart digest to change the database (or put the old URL back)",
                )
            ],
            "restart to change the database; nothing else of the file was applied",
        )
    return config


def lenient_setting(path: str | os.PathLike[str] | None, table: str, key: str) -> str | None:
    """A string setting, ``[table] key``, of a config file that may not load: what the file
    says, the model's default when it leaves the key out, None when it cannot be told (no
    file, or the key's own line broken). A TOML syntax error elsewhere does not hide it: the
    lines are read one by one then. For `digest status`, which finds the database this way
    while the file is invalid."""
    try:
        text = config_path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    info = field_info((table, key))
    default = info.default if info is not None and isinstance(info.default, str) else None
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return _scanned_setting(text, table, key, default)
    section = raw.get(table, {})
    value = section.get(key, default) if isinstance(section, dict) else None
    return value if isinstance(value, str) else None


_HEADER = re.compile(r"^\s*\[\[?\s*([^\[\]]+?)\s*\]\]?\s*(#.*)?$")


def _scanned_setting(text: str, table: str, key: str, default: str | None) -> str | None:
    """``lenient_setting`` of a text that is not valid TOML: its ``key = ...`` line under the
    ``[table]`` header read on its own. The default only when no such line is anywhere: one
    under another header may be the table's own, its header being the broken line."""
    current = ""
    assignment = re.compile(rf"^\s*{re.escape(key)}\s*=")
    elsewhere = False
    for line in text.splitlines():
        if header := _HEADER.match(line):
            current = header.group(1)
        elif assignment.match(line) and current != table:
            elsewhere = True
        elif current == table and assignment.match(line):
            try:
                value = tomllib.loads(line.strip()).get(key)
            except tomllib.TOMLDecodeError:
                return None  # the key's own line is broken: its value is not known
            return value if isinstance(value, str) else None
    return None if elsewhere else default


def _syntax_fix(message: str) -> str:
    """How to mend a TOML syntax error; a key set twice in one table is most often a
    [[sources]] or [[digests]] header lost between two entries, not a quoting slip."""
    if "Cannot overwrite a value" in message:
        return (
            "a key is set twice in the same table: is a [[sources]] or [[digests]] line "
            "missing (or commented out) between two entries, or the key written twice?"
        )
    if "Cannot declare" in message:
        return "a [table] is declared twice: merge the two into one"
    return "check quotes, brackets and '=' on that line"


def parse_config(text: str, file: Path) -> Config:
    """Validate config text; ``file`` names it in errors and anchors relative paths."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = getattr(exc, "lineno", None) or _line_from_message(str(exc), text)
        raise ConfigError(
            [
                ConfigProblem(
                    str(file),
                    line,
                    "(syntax)",
                    f"not valid TOML: {exc}",
                    _syntax_fix(str(exc)),
                )
            ]
        ) from exc
    lines = key_lines(text)
    problems = duplicate_problems(raw, lines, str(file)) + selector_problems(raw, lines, str(file))
    if "base_dir" in raw:  # set from the file's place, never from the file
        problems.append(
            ConfigProblem(
                str(file),
                line_of(lines, ("base_dir",)),
                "base_dir",
                "unknown key",
                "remove it: relative paths are always relative to this file's folder",
            )
        )
    raw, ignored = without_deprecated(raw)
    try:
        config = Config.model_validate(
            {**raw, "base_dir": file.resolve().parent},
            context={
                "file": str(file),
                "key_lines": lines,
                "ignored_keys": ignored,
                "fingerprint": config_fingerprint(text),
            },
        )
    except ValidationError as exc:
        problems += [problem(err, lines, str(file)) for err in exc.errors()]
        config = None
    if problems or config is None:
        problems.sort(key=lambda p: p.line)
        raise ConfigError(problems)
    return config


def config_fingerprint(text: str) -> str:
    """A config file's text in twelve hex digits (as ``load_config`` reads it): equal for a
    file written again unchanged, different for any edit."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def _line_from_message(message: str, text: str) -> int:
    found = re.search(r"line (\d+)", message)
    if found:
        return int(found.group(1))
    return max(1, len(text.splitlines())) if "end of document" in message else 1
