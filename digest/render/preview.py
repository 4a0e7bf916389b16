"""An edition written to files with sample personal links, for a person to open: `digest
preview` and the first-run setup's look at the first edition."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from digest.records import Recipient
from digest.render.message import substitute

if TYPE_CHECKING:
    from digest.config import Config


class Rendered(Protocol):
    """What is written: a rendered edition, or a stored one."""

    @property
    def html(self) -> str: ...

    @property
    def text(self) -> str: ...


def write_preview(
    config: Config, edition: Rendered, out_dir: Path, name: str = "digest"
) -> tuple[Path, Path]:
    """Write an edition's HTML and text with sample personal links, for a person to open."""
    sample = Recipient(
        0,
        "preview@example.org",
        None,
        f"{config.service.base_url}/unsubscribe/PREVIEW",
        f"mailto:{config.unsubscribe_mailto()}",
        f"{config.service.base_url}/preferences/PREVIEW",
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    html_path, text_path = out_dir / f"{name}.html", out_dir / f"{name}.txt"
    html_path.write_text(substitute(edition.html, sample, is_html=True), encoding="utf-8")
    text = substitute(edition.text, sample, is_html=False)
    # A text file ends with a newline (the email's part need not): `cat` leaves the shell's
    # prompt on a line of its own, and diff and git do not flag the last line.
    text_path.write_text(text if text.endswith("\n") else f"{text}\n", encoding="utf-8")
    return html_path.resolve(), text_path.resolve()
