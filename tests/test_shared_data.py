"""The shared read-only data (sample feeds, specs, corpora) is found in one place.

A worktree or a CI checkout is not always beside ``../shared``: ``DIGEST_SHARED`` then says
where it is, and only ``tests.conftest.SHARED`` reads it. A test that builds the path from
its own file finds nothing there and skips, so its checks silently stop running.
"""

from __future__ import annotations

import re
from pathlib import Path

TESTS = Path(__file__).resolve().parent
_OWN_PATH = re.compile(r"""/\s*["']shared["']""")  # a path to the shared folder built by hand


def test_every_test_finds_the_shared_data_through_conftest() -> None:
    own = sorted(
        path.name
        for path in TESTS.glob("*.py")
        if path.name != "conftest.py" and _OWN_PATH.search(path.read_text(encoding="utf-8"))
    )
    assert own == [], "use tests.conftest.SHARED (which honours DIGEST_SHARED)"
