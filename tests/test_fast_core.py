"""The fast core starts no process: a test that does must carry ``@pytest.mark.slow``."""

from __future__ import annotations

import subprocess
import sys

import pytest


def test_an_unmarked_test_that_starts_a_process_fails() -> None:
    with pytest.raises(pytest.fail.Exception, match=r"mark it @pytest.mark.slow"):
        subprocess.run([sys.executable, "-c", "pass"], check=True)


@pytest.mark.slow
def test_a_marked_test_may_start_one() -> None:
    done = subprocess.run([sys.executable, "-c", "print('ran')"], capture_output=True, text=True)
    assert done.stdout.strip() == "ran"
