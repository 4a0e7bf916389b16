"""The Config screen: the config file as it is on disk, `digest check`'s verdict on it, and
Reload, which reads it again as the daemon's SIGHUP does (``digest.config.reload_config``).

The file stays the admin's: the console shows, checks and reloads it, and never writes it.
An invalid file is shown with its errors and the running config kept; a valid one is what
the console uses from the next request on. `digest serve` read some things once at start,
which only a restart changes: the database (a reload that changes it is refused), the
signing secret and the console's login settings, and the subscriber pages.

The file holds the names of environment variables, never secrets (the schema refuses
anything else in an ``*_env`` key), but a file being fixed may hold a pasted secret, and a
database URL may carry a password: those are redacted from the text and from every message
shown, and so is the value of every variable the file names.
"""

from __future__ import annotations

import logging
import os
import re
import signal
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from digest.config import Config, reload_config
from digest.errors import ConfigError, TemplateError
from digest.render import check_templates
from digest.sources.health import health_warning, source_health
from digest.store import Store
from digest.store.lock import daemon_holder
from digest.store.tables import Admin
from digest.web.admin.console import Console
from digest.web.admin.reports import check_problems

log = logging.getLogger("digest.web.admin")
REDACTED = "•••• (redacted)"

# A key whose value would be a secret if it were not a variable's name.
_SENSITIVE = re.compile(r"pass|secret|token|credential|key|auth", re.IGNORECASE)
_NOT_SECRET = ("_file", "_dir", "_path", "_id")  # a path or an id names, it does not hold
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ASSIGNMENT = re.compile(r"""^\s*(?P<key>[A-Za-z0-9_."' -]+?)\s*=\s*(?P<value>.*)$""")
_QUOTED = re.compile(r"""^(?P<q>"|')(?P<inner>(?:\\.|(?!(?P=q)).)*)(?P=q)""")
# user:password@ in a URL (a PostgreSQL database_url, a proxy)
_URL_PASSWORD = re.compile(r"""[A-Za-z][A-Za-z0-9+.-]*://[^\s:/@'"]*:([^\s@'"/]+)@""")


@dataclass(frozen=True)
class FileCheck:
    """The config file now: its redacted text, when it changed, and `digest check`'s words."""

    file: str
    text: str
    modified: datetime | None
    errors: list[str]
    warnings: list[str]
    summary: str = ""


@dataclass
class Redactor:
    """Secret values found in a file's text (and in the environment it names), to blank
    wherever they would be shown."""

    secrets: set[str] = field(default_factory=set)

    def __call__(self, text: str) -> str:
        for secret in sorted(self.secrets, key=len, reverse=True):
            text = text.replace(secret, REDACTED)
        return text

    def add(self, value: str) -> None:
        """Blank ``value`` wherever it shows (an empty one blanks nothing)."""
        self.secrets.update({value} - {""})

    def add_variable(self, name: str) -> None:
        """Blank the value of the environment variable ``name`` (one under four characters
        would blank every word that holds it, and is no secret worth the name)."""
        if len(os.environ.get(name, "")) >= 4:
            self.secrets.add(os.environ[name])


def redact(text: str, running: Config | None = None) -> tuple[str, Redactor]:
    """The file's text with each secret-looking value replaced, and the redactor for the
    messages shown beside it (which also blanks the values of the variables ``running``
    names, the defaults not written in the file included)."""
    redactor = Redactor()
    for name in _env_names(running.model_dump() if running else {}):
        redactor.add_variable(name)
    out: list[str] = []
    closing = ""  # the closing quotes of a sensitive multi-line value being skipped
    for line in text.splitlines():
        if closing:  # inside a sensitive multi-line value: only its closing quotes show
            inside, done, after = line.partition(closing)
            redactor.add(inside.strip())
            if done:
                out.append(closing + after)
                closing = ""
            continue
        shown, closing = _redact_line(line, redactor)
        out.append(shown)
    for found_password in _URL_PASSWORD.finditer(text):
        redactor.add(found_password.group(1))
    return redactor("\n".join(out)), redactor


def _redact_line(line: str, redactor: Redactor) -> tuple[str, str]:
    """One line outside a multi-line value, as shown (a sensitive value's secrets added to
    ``redactor``), and the closing quotes of a sensitive multi-line value it opens ("")."""
    found = _ASSIGNMENT.match(line)
    if found is None or line.lstrip().startswith(("#", "[")):
        return line, ""
    key = found.group("key").split(".")[-1].strip().strip("\"'")
    value = found.group("value").strip()
    quoted = _QUOTED.match(value)
    literal = quoted.group("inner") if quoted else value.split("#")[0].strip()
    if key.endswith("_env") and _ENV_NAME.fullmatch(literal):
        redactor.add_variable(literal)  # a variable the file names: shown, its value never
    elif _sensitive(key) and value.startswith(('"""', "'''")):
        quotes, rest = value[:3], value[3:]
        if quotes in rest:
            redactor.add(rest.split(quotes)[0])
        else:
            redactor.add(rest.strip())
            return line[: line.index(quotes) + 3] + REDACTED, quotes
    elif _sensitive(key) and literal:
        redactor.add(literal)
    return line, ""


def _env_names(settings: object) -> set[str]:
    """The values of every ``*_env`` setting in a config's dump: the variables it reads."""
    found: set[str] = set()
    if isinstance(settings, dict):
        for key, value in settings.items():
            if str(key).endswith("_env") and isinstance(value, str):
                found.add(value)
            else:
                found |= _env_names(value)
    elif isinstance(settings, list):
        for value in settings:
            found |= _env_names(value)
    return found


def _sensitive(key: str) -> bool:
    return bool(_SENSITIVE.search(key)) and not key.endswith(_NOT_SECRET)


def check_file(running: Config, store: Store | None = None) -> FileCheck:
    """The running config's file as it is on disk now, and what `digest check` says of it
    (with what a reload would refuse: a changed database); with the ``store``, as the
    command does when the database is there, a warning for each source failing now."""
    path = running.file
    try:
        raw = Path(path).read_text(encoding="utf-8")
        modified = datetime.fromtimestamp(Path(path).stat().st_mtime, UTC)
    except (OSError, UnicodeDecodeError) as exc:
        return FileCheck(path, "", None, [f"{path}: cannot read it: {exc}"], [])
    text, scrub = redact(raw, running)
    try:
        config = reload_config(running, path)
    except ConfigError as exc:
        return FileCheck(path, text, modified, [scrub(str(p)) for p in exc.problems], [])
    errors, warnings = check_problems(config)
    if store is not None:
        health = source_health(store, config.sources)
        warnings += [line for h in health if (line := health_warning(h))]
    try:
        check_templates(config.templates_dir())
    except TemplateError as exc:
        errors.append(f"{exc.message}; {exc.hint}" if exc.hint else exc.message)
    enabled = sum(s.enabled for s in config.sources)
    summary = (
        f"{len(config.sources)} sources ({enabled} enabled), {len(config.digests)} digests, "
        f"delivery by {config.delivery.transport}"
    )
    return FileCheck(
        path, text, modified, [scrub(e) for e in errors], [scrub(w) for w in warnings], summary
    )


class ConfigScreen:
    """GET /admin/config, POST /admin/config/reload, POST /admin/config/signal."""

    def __init__(self, console: Console) -> None:
        self.c, self.app = console, console.app
        self.loaded_at = self.app.clock.now()  # about when `digest serve` read the file

    async def show(self, request: Request, admin: Admin) -> Response:
        return await self._page(request, admin)

    async def _page(
        self,
        request: Request,
        admin: Admin,
        status: int = 200,
        refused: list[str] | None = None,
        hint: str = "",
        signalled: str = "",
    ) -> Response:
        running = self.app.config
        if not running.file:
            return self.c.message(
                request, admin, "Config", "This service's config was not read from a file.", 404
            )
        report = await run_in_threadpool(check_file, running, self.app.store)
        holder = await run_in_threadpool(daemon_holder, self.app.engine)
        return self.c.page(
            "config.html.j2",
            request,
            admin,
            status,
            title="Config",
            report=report,
            loaded_at=self.loaded_at,
            changed=report.modified is not None and report.modified > self.loaded_at,
            reloaded=request.query_params.get("reloaded") == "1",
            sources=len(running.sources),
            digests=len(running.digests),
            refused=refused or [],
            hint=hint,
            daemon=holder,
            daemon_pid=_local_pid(holder),
            signalled=signalled,
        )

    async def reload(self, request: Request, admin: Admin) -> Response:
        """Read the file again: the console uses it from now on, or keeps the running one."""
        running = self.app.config
        try:
            config = await run_in_threadpool(reload_config, running, running.file)
        except ConfigError as exc:
            raw = await run_in_threadpool(_read, running.file)
            _, scrub = redact(raw, running)
            log.warning("admin %s: the config reload failed; the running one is kept", admin.email)
            return await self._page(
                request, admin, 400, [scrub(str(p)) for p in exc.problems], scrub(exc.hint)
            )
        self.app.config = config  # what every screen reads, from the next request on
        self.loaded_at = self.app.clock.now()
        log.info(
            "admin %s reloaded the config: %d sources, %d digests",
            admin.email,
            len(config.sources),
            len(config.digests),
        )
        return RedirectResponse("/admin/config?reloaded=1", 303)

    async def signal_daemon(self, request: Request, admin: Admin) -> Response:
        """SIGHUP to the daemon holding this database's lock on this machine."""
        pid = _local_pid(await run_in_threadpool(daemon_holder, self.app.engine))
        if pid is None:
            return await self._page(
                request, admin, 409, signalled="No daemon of this database runs on this machine."
            )
        try:
            os.kill(pid, signal.SIGHUP)
        except PermissionError:
            said = (
                f"The daemon (pid {pid}) runs as another user than `digest serve`: run "
                f"`kill -HUP {pid}` (or `systemctl reload` its unit) as that user."
            )
            return await self._page(request, admin, 403, signalled=said)
        except ProcessLookupError:
            return await self._page(
                request, admin, 409, signalled=f"The daemon (pid {pid}) has just stopped."
            )
        log.info("admin %s signalled the daemon (pid %d) to reload its config", admin.email, pid)
        said = (
            f"The daemon (pid {pid}) was told to reload: its log says whether the file was "
            "taken or refused (and why)."
        )
        return await self._page(request, admin, signalled=said)


def _read(path: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return ""


def _local_pid(holder: str | None) -> int | None:
    """The daemon's pid when its lock says it (SQLite: a lock file of this machine)."""
    found = re.fullmatch(r"pid (\d+)", holder or "")
    if found is None or int(found.group(1)) in (0, os.getpid()):
        return None
    return int(found.group(1))


__all__ = ["ConfigScreen", "FileCheck", "check_file", "redact"]
