"""Logging set-up: readable lines for a terminal, or one JSON object a line for a collector."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

NOISY = ("httpx", "httpcore", "alembic", "apscheduler", "mail.log", "uvicorn.access")


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
