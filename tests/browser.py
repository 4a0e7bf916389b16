"""Chromium through Playwright for the browser tests: found once, launched with one set of
flags (no sandbox in a container, nothing phoning home). A module that imports this skips
without Chromium, unless DIGEST_REQUIRE_CHROMIUM says it must be there (scripts/test)."""

from __future__ import annotations

import os
import shutil
from typing import Any

import pytest

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None:
    if os.environ.get("DIGEST_REQUIRE_CHROMIUM"):
        raise RuntimeError("Chromium is required here (scripts/test installs it) but missing")
    pytest.skip("Chromium is not installed (scripts/test installs it)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api")

FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def launch(playwright: Any) -> Any:
    """This machine's Chromium, headless, with the flags every browser test uses."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
