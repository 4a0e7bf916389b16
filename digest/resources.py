"""Files digest ships beside its code: the email templates and the example config.

In a source checkout they sit at the top level (``templates/email``, ``config.example.toml``);
an installed wheel carries copies under ``digest/_data``.
"""

from __future__ import annotations

from pathlib import Path

from digest.errors import DigestError

_PACKAGE = Path(__file__).resolve().parent


def _find(*relative: str) -> Path:
    for base in (_PACKAGE.parent, _PACKAGE / "_data"):
        candidate = base.joinpath(*relative)
        if candidate.exists():
            return candidate
    raise DigestError(f"{'/'.join(relative)} is missing from the installation", "reinstall digest")


def email_templates_dir() -> Path:
    """The built-in ``templates/email`` folder."""
    return _find("templates", "email")


def example_config() -> Path:
    """The documented ``config.example.toml``."""
    return _find("config.example.toml")
