"""Log lines an admin reads: timed where they go to a file, JSON for a collector."""

from __future__ import annotations

import logging
import re

from digest.logs import PlainFormatter


def _record() -> logging.LogRecord:
    return logging.LogRecord(
        "digest.deliver", logging.WARNING, __file__, 1, "edition %d: %s", (3, "2 sent"), None
    )


def test_a_line_to_a_file_or_pipe_starts_with_its_utc_time() -> None:
    line = PlainFormatter(timed=True).format(_record())
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\dZ WARNING digest.deliver: edition 3: 2 sent", line
    ), line


def test_a_line_to_a_terminal_has_no_time() -> None:
    assert (
        PlainFormatter(timed=False).format(_record()) == "WARNING digest.deliver: edition 3: 2 sent"
    )
