"""The house's import rules, as README's Development section draws them: every module under
``digest/`` is parsed (imports inside functions count too) and each package may import only
the packages its row allows. A new edge is either a design change (change the rule here and
in the README, in the same commit) or a shortcut to undo."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "digest"
README = PACKAGE.parent / "README.md"

# Leaf modules anyone may import; they import only each other.
LEAVES = frozenset(
    {"digest", "errors", "records", "resources", "domains", "links", "logs", "states", "clock"}
    | {"sentences", "unrecorded"}
)
# Two pure helpers inside stages, leaves too: the config validates with them.
HELPERS = {"digest.render.i18n": "render.i18n", "digest.schedule.slots": "schedule.slots"}
# `digest.schedule` itself re-exports only the slot arithmetic; the daemon is schedule.daemon.
HELPERS["digest.schedule"] = "schedule.slots"
# The translations are render.i18n's data (one module per language), part of that helper.
HELPERS |= {
    f"digest.render.translations{'' if p.stem == '__init__' else '.' + p.stem}": "render.i18n"
    for p in (PACKAGE / "render" / "translations").glob("*.py")
}

# What each unit may import besides the leaves and its own package.
MAY_IMPORT: dict[str, frozenset[str]] = {
    name: frozenset(allowed)
    for name, allowed in {
        "render.i18n": set(),
        # Pure slot arithmetic: config imports it to validate schedules, so it reads no
        # config (a digest's firing plan is made in editions.slots).
        "schedule.slots": set(),
        "demo": set(),
        "config": {"render.i18n", "schedule.slots"},
        "store": set(),
        "subscribers": {"config", "store", "render.i18n"},
        "sources": {"config", "store"},
        "rank": {"config"},
        "render": {"rank", "config"},  # write_preview names the digest's files
        "deliver": {"config", "store", "subscribers", "render"},
        "app": {"config", "store", "sources", "deliver"},
        "editions": {"app", "config", "store", "rank", "render", "schedule.slots"},
        "sending": {"app", "config", "store", "subscribers", "deliver", "editions"}
        | {"schedule.slots"},
        "pipeline": {"app", "config", "store", "sources", "deliver", "editions", "sending"},
        "worker": {"app", "store", "deliver", "sending"},
        # The names jobs are recorded under: built by the jobs, read back by the reports.
        "job_names": set(),
        # The jobs of a run, recorded for status, whoever runs them: daemon, CLI, console;
        # a job the database failed is said in its words (store.trouble.database_error).
        "jobs": {"app", "store", "deliver", "pipeline", "sending", "sources", "job_names"},
        # Typed reports (status, explain) that the command line and the console print.
        "reports": {"app", "config", "store", "editions", "schedule.slots", "job_names"},
        # The faces: the daemon, the web app and the command line compose everything above.
        "schedule": {"app", "config", "store", "sources", "deliver", "editions", "sending"}
        | {"pipeline", "jobs", "job_names"},
        "web": {"app", "config", "store", "sources", "deliver", "editions", "sending"}
        | {"pipeline", "subscribers", "rank", "render", "schedule.slots", "reports", "jobs"},
        "cli": {"app", "config", "store", "sources", "deliver", "editions", "sending"}
        | {"pipeline", "subscribers", "rank", "render", "schedule", "web", "worker", "demo"}
        | {"reports", "jobs", "job_names"},
        "__main__": {"cli"},
    }.items()
}

# Today's exceptions, each a shortcut to undo (module, unit it imports): delete a line once
# the import is gone; the test fails while a line here is stale.
KNOWN: set[tuple[str, str]] = set()


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _exists(module: str) -> bool:
    path = PACKAGE.parent.joinpath(*module.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def _unit(module: str) -> str:
    """The unit a module belongs to: a top-level module, a package, or one of the helpers."""
    if module in HELPERS:
        return HELPERS[module]
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "digest"


def _imports(path: Path) -> set[str]:
    """The ``digest`` modules a file imports, anywhere in it, relative imports resolved."""
    module = _module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            for alias in node.names:  # `from digest import demo` imports digest.demo
                found.add(f"{base}.{alias.name}" if _exists(f"{base}.{alias.name}") else base)
    return {name for name in found if name == "digest" or name.startswith("digest.")}


def _edges() -> set[tuple[str, str]]:
    """(module, unit it imports) for every import that leaves the module's own unit."""
    edges = set()
    for path in sorted(PACKAGE.rglob("*.py")):
        module = _module_name(path)
        for imported in _imports(path):
            if _unit(imported) != _unit(module):
                edges.add((module, _unit(imported)))
    return edges


def _allowed(source: str, target: str) -> bool:
    if target in LEAVES:
        return True
    if source not in MAY_IMPORT:  # a leaf imports only leaves
        return False
    if target.split(".")[0] == source:  # a stage uses its own helpers
        return True
    allowed = MAY_IMPORT[source]
    return target in allowed or target.split(".")[0] in allowed


def test_every_unit_has_a_rule() -> None:
    units = {_unit(_module_name(path)) for path in PACKAGE.rglob("*.py")}
    assert units <= LEAVES | set(MAY_IMPORT), "add a row to MAY_IMPORT (and the README)"


def test_every_import_follows_the_layers() -> None:
    broken = sorted(
        f"{module} imports {target}"
        for module, target in _edges()
        if not _allowed(_unit(module), target) and (module, target) not in KNOWN
    )
    assert not broken, "imports against the layers (see README, Development):\n" + "\n".join(broken)


def test_the_known_exceptions_are_still_there() -> None:
    stale = KNOWN - _edges()
    assert not stale, f"remove from KNOWN, the import is gone: {sorted(stale)}"


def test_a_migration_calls_no_live_code() -> None:
    """A migration must do years later what it did the day it was written: it may name the
    store's column types (``digest.store.tables``) and raise the project's errors (with a
    hint the command line shows), and keeps a frozen copy of any logic it needs."""
    versions = PACKAGE / "store" / "migrations" / "versions"
    live = sorted(
        f"{path.stem} imports {name}"
        for path in versions.glob("*.py")
        for name in _imports(path)
        if name not in {"digest.store.tables", "digest.errors"}
    )
    assert not live, "copy what a migration needs into it:\n" + "\n".join(live)


@pytest.mark.parametrize(
    ("source", "target", "ok"),
    [
        ("rank", "store", False),
        ("render", "deliver", False),
        ("sources", "rank", False),
        ("store", "deliver", False),
        ("web", "cli", False),
        ("config", "schedule", False),
        ("web", "schedule", False),
        ("web", "schedule.slots", True),
        ("config", "schedule.slots", True),
        ("deliver", "render", True),
        ("cli", "web", True),
        ("errors", "config", False),
    ],
)
def test_the_rules_say_what_the_readme_says(source: str, target: str, ok: bool) -> None:
    assert _allowed(source, target) is ok


def test_an_import_inside_a_function_and_a_relative_one_are_seen() -> None:
    assert "digest.rank.terms" in _imports(PACKAGE / "render" / "edition.py")  # in a function
    assert "digest.demo" in _imports(PACKAGE / "cli" / "setup.py")  # `from digest import demo`
    providers = _imports(PACKAGE / "deliver" / "providers" / "__init__.py")  # `from . import`
    assert "digest.deliver.providers.mailgun" in providers


def _readme_house() -> tuple[str, dict[str, frozenset[str] | None]]:
    """README's "The house": the text above its table, and each row's unit with the units it
    may import (None: "everything"; what follows a ";" is a reminder, not a rule)."""
    section = README.read_text(encoding="utf-8").split("### The house", 1)[1].split("\n## ")[0]
    prose, _, table = section.partition("| Package |")
    rows: dict[str, frozenset[str] | None] = {}
    for line in table.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) != 3 or not cells[0].startswith("`"):
            continue
        unit = cells[0].strip("`").removesuffix("/").removesuffix(".py")
        allowed = cells[2].split(";")[0]
        rows[unit] = (
            None if allowed == "everything" else frozenset(re.findall(r"`([\w.]+)`", allowed))
        )
    return prose, rows


def test_the_readme_draws_the_same_house() -> None:
    """The Development section is where a newcomer learns the rules: a row per unit, each with
    exactly the imports this test allows, and every leaf named."""
    prose, rows = _readme_house()
    units = set(MAY_IMPORT) - set(HELPERS.values()) - {"__main__"}
    assert set(rows) == units, "README's table and MAY_IMPORT name different units"
    for unit, allowed in rows.items():
        everything = frozenset(units - {unit})
        assert (everything if allowed is None else allowed) == MAY_IMPORT[unit], unit
    missing = sorted(leaf for leaf in LEAVES - {"digest"} if f"`{leaf}`" not in prose)
    assert not missing, f"README names no leaf {missing}"
