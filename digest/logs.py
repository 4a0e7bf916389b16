"""Logging set-up: readable lines for a terminal, or one JSON object a line for a collector."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

NOISY = ("httpx", "httpcore", "alembic", "apscheduler", "mail.log", "uvicorn.access")

# ``extra=`` of a record whose words a command's report also prints (a source's failure,
# with its hint, is a line of `digest gather`'s table): ``printed_by_command`` keeps it off
# that command's terminal; the daemon, `digest run --once` and the console log it as ever.
IN_REPORT = {"in_report": True}


class JsonFormatter(logging.Formatter):
    """``{"time", "level", "logger", "message"}`` plus ``exception`` when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        document = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            document["exception"] = self.formatException(record.exc_info)
        return json.dumps(document, ensure_ascii=False)


class PlainFormatter(logging.Formatter):
    """``LEVEL logger: message``; led by the UTC time when the lines go to a file or a pipe
    (cron's log, nohup, a daemon's output), where a line without a time cannot be placed."""

    def __init__(self, timed: bool) -> None:
        super().__init__(("%(asctime)s " if timed else "") + "%(levelname)s %(name)s: %(message)s")

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:
        return datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def configure(verbosity: int, json_lines: bool) -> None:
    """Warnings by default, info with -v, debug with -vv; JSON lines when asked."""
    level = logging.WARNING if verbosity == 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    handler = logging.StreamHandler()
    timed = not handler.stream.isatty()
    handler.setFormatter(JsonFormatter() if json_lines else PlainFormatter(timed))
    logging.basicConfig(level=level, handlers=[handler], force=True)
    for name in NOISY:
        logging.getLogger(name).setLevel(max(level, logging.WARNING))


class _NotInReport(logging.Filter):
    """Drops the records marked ``IN_REPORT``, but one carrying a traceback (-vv): the
    report has the message and hint, not the cause."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(record, "in_report", False) or record.exc_info is not None


@contextmanager
def printed_by_command(printed: bool = True) -> Iterator[None]:
    """While a command runs what it then prints as a report (`digest gather`'s table), the
    records marked ``IN_REPORT`` stay off the terminal, so the admin reads each failure
    once, in the table, with its hint. Only readable lines are spared: JSON lines
    (``--log-json``) go to a collector, which has no table. Other records (and every record
    of the daemon, or of `digest run --once`, which logs for cron) pass as ever."""
    if not printed:  # --json: a program reads the report, the admin the log
        yield
        return
    quiet = _NotInReport()
    handlers = [h for h in logging.getLogger().handlers if isinstance(h.formatter, PlainFormatter)]
    for handler in handlers:
        handler.addFilter(quiet)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(quiet)
