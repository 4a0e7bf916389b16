"""The demo outlets' pictures: small SVG drawings made here, so the demo needs no network.

The outlets are made up and so are their pictures' addresses (``https://<outlet>/pictures/
<slug>.svg``, what their feeds carry and the email links to). Offline a mail client has
nowhere to fetch them from and shows the boxes a reader with pictures blocked sees; the
demo's browser preview (``show_pictures``) shows these drawings in their place.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

FOLDER = "pictures"  # beside the preview's HTML


@dataclass(frozen=True)
class DemoPicture:
    """A story's picture: its size as the feed states it, what it shows, its colours."""

    width: int
    height: int
    alt: str
    sky: tuple[str, str]  # top and bottom of the sky
    land: str
    light: str  # the sun, the moon, a lamp


def picture_url(site: str, slug: str) -> str:
    """Where the outlet's feed says the story's picture is."""
    return f"{site}/{FOLDER}/{slug}.svg"


def svg(picture: DemoPicture) -> str:
    """A drawing of ``picture.width`` x ``picture.height``: a sky, a light, two hills."""
    w, h = picture.width, picture.height
    top, bottom = picture.sky
    r = min(w, h) // 7
    hill = (
        f"M0 {h * 0.72:.0f} Q{w * 0.25:.0f} {h * 0.5:.0f} {w * 0.5:.0f} {h * 0.7:.0f} "
        f"T{w} {h * 0.62:.0f} V{h} H0 Z"
    )
    near = f"M0 {h * 0.86:.0f} Q{w * 0.4:.0f} {h * 0.7:.0f} {w} {h * 0.84:.0f} V{h} H0 Z"
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
        f'viewBox="0 0 {w} {h}" role="img"><title>{picture.alt}</title>'
        '<defs><linearGradient id="sky" x1="0" y1="0" x2="0" y2="1">'
        f'<stop offset="0" stop-color="{top}"/><stop offset="1" stop-color="{bottom}"/>'
        f'</linearGradient></defs><rect width="{w}" height="{h}" fill="url(#sky)"/>'
        f'<circle cx="{w * 0.72:.0f}" cy="{h * 0.3:.0f}" r="{r}" fill="{picture.light}"/>'
        f'<path d="{hill}" fill="{picture.land}" opacity="0.75"/>'
        f'<path d="{near}" fill="{picture.land}"/></svg>\n'
    )


def show_pictures(html_file: Path, pictures: dict[str, DemoPicture]) -> int:
    """Write the drawings beside the preview ``html_file`` and point its pictures at them
    (``pictures``: the address each feed gave, and its drawing); how many it points."""
    folder = html_file.parent / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    local = {}
    for url, picture in pictures.items():
        name = url.rsplit("/", 1)[1]
        (folder / name).write_text(svg(picture), encoding="utf-8")
        local[url] = f"{FOLDER}/{name}"
    html = html_file.read_text(encoding="utf-8")
    shown = 0

    def here(match: re.Match[str]) -> str:
        nonlocal shown
        shown += 1
        return f'src="{local[match.group(1)]}"'

    pattern = "|".join(re.escape(url) for url in sorted(local, key=len, reverse=True))
    html = re.sub(f'src="({pattern})"', here, html) if local else html
    html_file.write_text(html, encoding="utf-8")
    return shown
