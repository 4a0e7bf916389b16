"""Load the TOML config into typed models, reporting every problem with file, line and key."""

from __future__ import annotations

import difflib
import os
import tomllib
import typing
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from digest.config._lines import dotted, key_lines, line_of
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
    except FileNotFoundError:
        raise ConfigError(
            [ConfigProblem(str(file), 0, "(file)", "no such file", "")],
            "run `digest init` to write a starter config, or pass --config PATH "
            f"(or set ${ENV_VAR})",
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            [ConfigProblem(str(file), 0, "(file)", f"cannot read it: {exc}", "")]
        ) from None
    return parse_config(text, file)


def parse_config(text: str, file: Path) -> Config:
    """Validate config text; ``file`` names it in errors and anchors relative paths."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        line = getattr(exc, "lineno", None) or _line_from_message(str(exc))
        raise ConfigError(
            [
                ConfigProblem(
                    str(file),
                    line,
                    "(syntax)",
                    f"not valid TOML: {exc}",
                    "check quotes, brackets and '=' on that line",
                )
            ]
        ) from None
    lines = key_lines(text)
    problems = _duplicate_problems(raw, lines, str(file))
    try:
        config = Config.model_validate({**raw, "base_dir": file.resolve().parent})
    except ValidationError as exc:
        problems += [_problem(err, lines, str(file)) for err in exc.errors()]
        config = None
    if problems or config is None:
        problems.sort(key=lambda p: p.line)
        raise ConfigError(problems)
    return config


def warnings_for(config: Config) -> list[str]:
    """Things that are valid but will stop a send: secrets named but not set here."""
    out = []
    names = [config.service.secret_env]
    if config.delivery.transport == "smtp" and config.delivery.smtp.password_env:
        names.append(config.delivery.smtp.password_env)
    for name in names:
        if not os.environ.get(name):
            out.append(f"${name} is not set in this environment; sending needs it")
    return out


def _line_from_message(message: str) -> int:
    import re

    found = re.search(r"line (\d+)", message)
    return int(found.group(1)) if found else 1


def _duplicate_problems(
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
            if value is None:
                continue
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


def _problem(err: Any, lines: dict[Any, int], file: str) -> ConfigProblem:
    path = tuple(err["loc"])
    kind = err["type"]
    info = _field_info(path)
    help_text = info.description if info and info.description else ""
    key = dotted(path)
    if kind == "missing":
        name = path[-1]
        return ConfigProblem(
            file,
            line_of(lines, path),
            key,
            "required key is missing",
            f"add `{name} = ...` ({help_text})" if help_text else f"add `{name}`",
        )
    if kind == "extra_forbidden":
        known = _known_keys(path[:-1])
        close = difflib.get_close_matches(str(path[-1]), known, n=1)
        fix = f"did you mean {close[0]!r}?" if close else f"known keys here: {', '.join(known)}"
        return ConfigProblem(file, line_of(lines, path), key, "unknown key", fix)
    what = str(err["msg"]).removeprefix("Value error, ")
    if kind != "value_error" and "input" in err and not isinstance(err["input"], dict | list):
        what = f"{what} (got {err['input']!r})"
    fix = "" if kind == "value_error" else (f"expected {help_text}" if help_text else "")
    return ConfigProblem(file, line_of(lines, path), key, what, fix)


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


def _field_info(path: tuple[Any, ...]) -> FieldInfo | None:
    return _walk(path)[1]


def _known_keys(path: tuple[Any, ...]) -> list[str]:
    model = _walk(path)[0] if path else Config
    if model is None:
        return []
    return [k for k in model.model_fields if k != "base_dir"]
