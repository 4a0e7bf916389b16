"""Write the demo outlets as real RSS 2.0, Atom 1.0 and JSON Feed 1.1 documents."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path
from xml.sax.saxutils import escape

from digest.demo.stories import OUTLETS, DemoOutlet


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
      <description>{escape(i.summary)}</description>
    </item>"""
        for i in outlet.items
    )
    return f"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0">
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
    <summary type="html">{escape(i.summary)}</summary>
  </entry>"""
        for i in outlet.items
    )
    return f"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
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
            }
            for i in outlet.items
        ],
    }
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"
