"""Write the demo outlets as real RSS 2.0, Atom 1.0 and JSON Feed 1.1 documents."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

from digest.demo.pictures import picture_url
from digest.demo.stories import OUTLETS, DemoItem, DemoOutlet

MEDIA = "http://search.yahoo.com/mrss/"


def write_feeds(folder: Path, now: datetime | None = None) -> list[Path]:
    """Write one feed file per outlet into ``folder``, dated relative to ``now``."""
    now = now or datetime.now(UTC)
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for outlet in OUTLETS:
        text = {"rss": _rss, "atom": _atom, "json": _json_feed}[outlet.format](outlet, now)
        path = folder / outlet.file
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def _when(now: datetime, minutes: int) -> datetime:
    return (now - timedelta(minutes=minutes)).replace(microsecond=0)


def _rss(outlet: DemoOutlet, now: datetime) -> str:
    items = "".join(
        f"""
    <item>
      <title>{escape(i.title)}</title>
      <link>{outlet.site}/{i.slug}?utm_source=rss</link>
      <guid isPermaLink="false">{outlet.site}/id/{i.slug}</guid>
      <pubDate>{format_datetime(_when(now, i.minutes_ago))}</pubDate>
      <description>{escape(i.summary)}</description>{_media(outlet, i)}
    </item>"""
        for i in outlet.items
    )
    return f"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0" xmlns:media="{MEDIA}">
  <channel>
    <title>{escape(outlet.name)}</title>
    <link>{outlet.site}/</link>
    <description>Latest stories from {escape(outlet.name)}</description>{items}
  </channel>
</rss>
"""


def _atom(outlet: DemoOutlet, now: datetime) -> str:
    entries = "".join(
        f"""
  <entry>
    <title>{escape(i.title)}</title>
    <link rel="alternate" href="{outlet.site}/{i.slug}"/>
    <id>tag:{outlet.site.removeprefix("https://")},2026:{i.slug}</id>
    <updated>{_when(now, i.minutes_ago).isoformat()}</updated>
    <summary type="html">{escape(i.summary)}</summary>{_media(outlet, i, "    ")}
  </entry>"""
        for i in outlet.items
    )
    return f"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom" xmlns:media="{MEDIA}">
  <title>{escape(outlet.name)}</title>
  <id>{outlet.site}/</id>
  <updated>{now.replace(microsecond=0).isoformat()}</updated>{entries}
</feed>
"""


def _json_feed(outlet: DemoOutlet, now: datetime) -> str:
    doc = {
        "version": "https://jsonfeed.org/version/1.1",
        "title": outlet.name,
        "home_page_url": f"{outlet.site}/",
        "items": [
            {
                "id": f"{outlet.site}/id/{i.slug}",
                "url": f"{outlet.site}/{i.slug}",
                "title": i.title,
                "content_html": i.summary,
                "date_published": _when(now, i.minutes_ago).isoformat(),
                # JSON Feed states no picture size: a lead gets its width alone in the email.
                **({"image": picture_url(outlet.site, i.slug)} if i.picture else {}),
            }
            for i in outlet.items
        ],
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def _media(outlet: DemoOutlet, item: DemoItem, indent: str = "      ") -> str:
    """The item's picture as Media RSS says it (in RSS and Atom alike): address, size, and
    what it shows."""
    if item.picture is None:
        return ""
    p = item.picture
    return (
        f'\n{indent}<media:content url="{picture_url(outlet.site, item.slug)}" medium="image" '
        f'type="image/svg+xml" width="{p.width}" height="{p.height}">'
        f"<media:description>{escape(p.alt)}</media:description></media:content>"
    )
