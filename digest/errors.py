"""The one exception tree of digest. Every error carries a hint that tells the user what to fix.

    DigestError                 base: message + hint, what the CLI prints
    ├── ConfigError             the TOML config is unreadable or invalid (carries every problem)
    ├── UsageError              the command asks for what the config lacks (an unknown digest id)
    ├── StoreError              the database cannot be opened or migrated
    ├── SourceError             one source could not be fetched or parsed (a warning, never fatal)
    ├── TemplateError           an email template is missing or broken (file and line)
    └── DeliveryError           the transport cannot deliver at all (connection, auth, folder)

Each edge translates them: the CLI prints ``error: message`` and ``hint: ...`` and exits
non-zero (at ``-vv`` it logs the traceback first, with the chained cause); the pipeline logs
a SourceError with the source's name and goes on. Raise them ``from exc`` so the original
error travels with them; ``from None`` only where the cause would leak something (say why).
"""

from __future__ import annotations

import re
from dataclasses import dataclass


class DigestError(Exception):
    """Base of every error digest raises on purpose; ``hint`` says how to fix it."""

    exit_code = 1

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[object, ...]:
        # Errors cross process boundaries (parsing runs in worker processes): pickle them
        # with the arguments their own __init__ takes.
        return (type(self), (self.message, self.hint))


@dataclass(frozen=True)
class ConfigProblem:
    """One thing wrong with a config file, located by line and dotted key path."""

    file: str
    line: int
    key: str
    what: str
    fix: str

    def __str__(self) -> str:
        fix = f"; {self.fix}" if self.fix else ""
        where = f"{self.file}:{self.line}" if self.line > 0 else self.file
        key = f"{where}: {self.key}" if where else self.key  # a config built in code has no file
        return f"{key}: {self.what}{fix}"


class ConfigError(DigestError):
    """The config could not be loaded; ``problems`` lists every mistake, not just the first."""

    exit_code = 2

    def __init__(self, problems: list[ConfigProblem], hint: str = "") -> None:
        self.problems = problems
        lines = "\n".join(str(p) for p in problems)
        super().__init__(lines, hint or "fix the lines above, then run `digest check` again")

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.problems, self.hint))


class UsageError(DigestError):
    """The command was asked for something the config does not have (an unknown digest id):
    bad usage, exit 2, so cron's monitoring does not read a typo as a failed run."""

    exit_code = 2


class StoreError(DigestError):
    """The database cannot be opened, migrated or written."""


class SourceError(DigestError):
    """One source failed; the run logs it by name and carries on with the others."""

    def __init__(self, source: str, message: str, hint: str = "") -> None:
        super().__init__(f"source {source!r}: {message}", hint)
        self.source = source
        self.reason = message

    def __reduce__(self) -> tuple[object, ...]:
        return (type(self), (self.source, self.reason, self.hint))


class TemplateError(DigestError):
    """An email template is missing or has a syntax error; nothing is sent."""

    exit_code = 2  # like a config error: the admin's files need fixing


class DeliveryError(DigestError):
    """The transport cannot deliver at all (server unreachable, login refused, folder unwritable).

    ``results`` holds what the transport did finish before it stopped, so those rows are
    recorded and never sent again.
    """

    def __init__(self, message: str, hint: str = "", results: list[object] | None = None) -> None:
        super().__init__(message, hint)
        self.results = results or []


# "://user:password@" in a URL (a database's, a proxy's); then "user:password@" after a
# slash or a space, in a URL mistyped ("postgresql//user:pw@host"), its password up to a "/"
_URL_PASSWORD = re.compile(r"(://[^:/@\s]*:)[^@\s]*@")
_MISTYPED_PASSWORD = re.compile(r"((?:^|[\s/'\"])[^:/@\s'\"]+:)[^@\s/'\"]*@")


def without_password(text: str) -> str:
    """``text`` with the password of each ``scheme://user:password@`` in it hidden: for an
    error that names a URL, shown on a terminal, in a log, in a job's record."""
    return _MISTYPED_PASSWORD.sub(r"\1***@", _URL_PASSWORD.sub(r"\1***@", text))
