"""The reader's pages as a person sees them: every page of the way in and out (sign-up,
its refusal, check your inbox, confirm, preferences and their refusal, unsubscribe, the way
back, a bad or expired link) in headless Chromium at 375 and 640 px, light and dark.

Nothing may overflow sideways and every piece of text must be legible (WCAG AA contrast
against the background it sits on; the same check as the email's, ``test_screenshots``).
The pages are fetched in-process, then shown with their own styles and nothing else loaded.
PNGs go to ``$DIGEST_ARTIFACTS/screenshots`` for a person to look at.
"""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from digest.app import App
from digest.clock import ManualClock
from digest.config import load_config
from digest.links import make_token
from digest.web import create_app
from tests.browser import launch, sync_api
from tests.conftest import SECRET, FeedServer, SmtpServer, csrf, rss
from tests.test_screenshots import ARTIFACTS, CONTRAST_JS

pytestmark = pytest.mark.slow  # drives Chromium through Playwright


async def _pages(config: Path, smtp_server: SmtpServer) -> dict[str, str]:
    """Each reader page's HTML, walked as a reader walks them."""
    app = App.open(load_config(config), clock=ManualClock(datetime.now(UTC)))
    pages: dict[str, str] = {}
    try:
        transport = httpx.ASGITransport(app=create_app(app))
        async with httpx.AsyncClient(transport=transport, base_url="https://digest.test") as c:
            pages["signup"] = (home := (await c.get("/"))).text
            form = {"csrf": csrf(home), "topics": ["world"]}
            pages["signup-refused"] = (await c.post("/subscribe", data={**form, "email": "x"})).text
            pages["check-inbox"] = (
                await c.post("/subscribe", data={**form, "email": "a@ex.org"})
            ).text
            body = smtp_server.messages[-1].message().get_content()
            link = re.search(r"https://digest\.test(/confirm/\S+)", body)
            assert link, body
            pages["confirm"] = (await c.get(link.group(1))).text
            pages["confirmed"] = (await c.post(link.group(1))).text
            row = app.store.subscriber_by_email("a@ex.org")
            assert row is not None
            prefs = f"/preferences/{make_token(SECRET, 'preferences', row.public_id)}"
            pages["preferences"] = (page := (await c.get(prefs))).text
            zone = {"csrf": csrf(page), "timezone": "Karachii"}
            pages["preferences-refused"] = (await c.post(prefs, data=zone)).text
            pages["preferences-saved"] = (await c.post(prefs, data={**zone, "timezone": ""})).text
            leave = f"/unsubscribe/{make_token(SECRET, 'unsubscribe', row.public_id)}"
            pages["unsubscribe"] = (await c.get(leave)).text
            pages["unsubscribed"] = (await c.post(leave)).text
            pages["preferences-left-refused"] = (await c.post(prefs, data={"csrf": "0.0"})).text
            pages["invalid-link"] = (await c.get(leave + "x")).text
            assert isinstance(app.clock, ManualClock)
            app.clock.advance(3 * 86400)
            await c.post("/subscribe", data={"csrf": csrf(await c.get("/")), "email": "b@ex.org"})
            body = smtp_server.messages[-1].message().get_content()
            late = re.search(r"https://digest\.test(/confirm/\S+)", body)
            assert late, body
            app.clock.advance(3 * 86400)
            pages["expired-link"] = (await c.get(late.group(1))).text
    finally:
        app.close()
    return pages


@pytest.mark.parametrize("width", [375, 640])
def test_every_reader_page_fits_and_is_legible_light_and_dark(
    write_config, feed_server: FeedServer, smtp_server: SmtpServer, width: int
) -> None:
    url = feed_server.add("/f.xml", rss([{"title": "T", "guid": "1", "link": "https://w.test/1"}]))
    config = write_config([("Wire", url)], transport="smtp", smtp_port=smtp_server.port)
    config.write_text(
        config.read_text().replace(f'url = "{url}"', f'url = "{url}"\ntopics = ["world"]')
    )
    pages = asyncio.run(_pages(config, smtp_server))
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    faults: list[str] = []
    with sync_api.sync_playwright() as playwright:
        browser = launch(playwright)
        for scheme in ("light", "dark"):
            page = browser.new_page(viewport={"width": width, "height": 700}, color_scheme=scheme)
            page.route("**/*", lambda route: route.abort())  # nothing leaves the machine
            for name, html in pages.items():
                page.set_content(html, wait_until="load")
                page.screenshot(
                    path=str(ARTIFACTS / f"web-{name}-{width}-{scheme}.png"), full_page=True
                )
                wide = page.evaluate("document.documentElement.scrollWidth")
                if wide > width:
                    faults.append(f"{name} {scheme}: {wide} px wide")
                for found in page.evaluate(CONTRAST_JS):
                    if found["ratio"] < 4.5:
                        faults.append(f"{name} {scheme}: {found['text']!r} at {found['ratio']}:1")
        browser.close()
    assert not faults, faults
