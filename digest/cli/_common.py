"""What every command shares: the lazily loaded config and App."""

from __future__ import annotations

from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any, TypeVar

import click
from rich.console import Console

from digest.app import App, run
from digest.clock import SYSTEM_CLOCK, Clock
from digest.config import Config, load_config

T = TypeVar("T")
console = Console()
err_console = Console(stderr=True)


@dataclass
class Context:
    """The config path from the command line; config and App opened on first use, on
    ``clock`` (``main``'s: the system clock, or a set one in tests)."""

    config_path: str | None
    _config: Config | None = None
    _app: App | None = field(default=None, repr=False)
    clock: Clock = field(default=SYSTEM_CLOCK, repr=False)

    def config(self) -> Config:
        """The validated config (ConfigError, exit 2, when it is not)."""
        if self._config is None:
            self._config = load_config(self.config_path)
        return self._config

    def app(self) -> App:
        """The App, with the database open and migrated."""
        if self._app is None:
            self._app = App.open(self.config(), clock=self.clock)
            click.get_current_context().call_on_close(self._app.close)
        return self._app


pass_context = click.make_pass_decorator(Context)


def run_async(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run one coroutine to completion on a fresh event loop (see digest.app.run)."""
    return run(coroutine)
