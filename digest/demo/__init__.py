"""The embedded default: a demo folder with its own config, sample feeds, SQLite and Maildir.

Everything is local and offline: the sources are ``file:`` feeds written next to the
config, the database is ``digest.db`` and the digest lands in the Maildir ``mail/``. The
stories' pictures are drawn here (``demo.pictures``) and shown by the browser preview; in
the Maildir their made-up addresses show as the boxes of pictures not loaded.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

from digest.demo.feeds import write_feeds
from digest.demo.pictures import DemoPicture, picture_url, show_pictures
from digest.demo.stories import OUTLETS, SUBSCRIBERS

CONFIG_NAME = "digest.toml"
SECRET_ENV = "DIGEST_SECRET"

_HEADER = """# The embedded demo of digest: local sample feeds, SQLite, a Maildir in ./mail.
# Written by `digest demo`; edit freely. The documented template is config.example.toml.

[service]
name = "The Demo Desk"
base_url = "https://digest.example.org"
timezone = "Europe/London"
locale = "en_GB"
database_url = "sqlite:///digest.db"
sender = "The Demo Desk <digest@digest.example.org>"
postal_address = "The Demo Desk, 1 Example Street, London EC1A 1AA"
secret_env = "DIGEST_SECRET"

[[digests]]
id = "morning"
title = "Morning Briefing"
schedule = "0 7 * * *"
breaking_items = 3
latest_items = 12
lookback_hours = 24

[delivery]
transport = "maildir"

[delivery.maildir]
path = "mail"
"""


def demo_config_text() -> str:
    """The demo config, its [[sources]] generated from the sample outlets."""
    sources = "".join(
        f'\n[[sources]]\nname = "{o.name}"\nurl = "file:feeds/{o.file}"\n'
        f"weight = {o.weight}\ntopics = {json.dumps(list(o.topics))}\n"
        for o in OUTLETS
    )
    return _HEADER + sources


def prepare(folder: Path) -> Path:
    """Create or refresh the demo folder; return its config path.

    The feeds are rewritten on every run so their items are always recent. The signing
    secret comes from $DIGEST_SECRET when set, else from ``.secret`` in the folder (made once).
    """
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / CONFIG_NAME
    if not config.exists():
        config.write_text(demo_config_text(), encoding="utf-8")
    write_feeds(folder / "feeds")
    if not os.environ.get(SECRET_ENV):
        secret_file = folder / ".secret"
        if not secret_file.exists():
            secret_file.write_text(secrets.token_urlsafe(32), encoding="utf-8")
            secret_file.chmod(0o600)
        os.environ[SECRET_ENV] = secret_file.read_text(encoding="utf-8").strip()
    return config


def pictures() -> dict[str, DemoPicture]:
    """Every sample picture by the address its outlet's feed gives it."""
    return {picture_url(o.site, i.slug): i.picture for o in OUTLETS for i in o.items if i.picture}


def show_preview_pictures(html_file: Path) -> int:
    """Point the preview's pictures at the demo's own drawings, written beside it: the
    outlets are made up, their addresses lead nowhere (``demo.pictures``)."""
    return show_pictures(html_file, pictures())


__all__ = [
    "CONFIG_NAME",
    "SUBSCRIBERS",
    "demo_config_text",
    "pictures",
    "prepare",
    "show_preview_pictures",
]
