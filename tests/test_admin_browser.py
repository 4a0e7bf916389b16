"""An admin in a real browser (headless Chromium, Playwright) walks the console: log in,
dashboard, preview as a segment, a test send that arrives in the SMTP server, subscriber
search and status change, CSV import previewed then imported, an edition retried, log out.
Each step is checked in the database or the mailbox; each screen is kept as a PNG in
``$DIGEST_ARTIFACTS/screenshots`` (default ``artifacts/screenshots``) at 1280 px (light)
and 375 px (dark), and at 375 px nothing may scroll sideways."""

from __future__ import annotations

import base64
import os
from pathlib import Path
from typing import Any

import pytest

from digest.app import run
from digest.pipeline import gather_sources, run_digest
from tests.admin_site import ADMIN, PASSWORD, Console
from tests.browser import launch, sync_api
from tests.conftest import ROOT, FeedServer, SmtpServer, rss

NEW_STORY = "Comet returns after seventy years"
NEW_LINK = "https://news.test/comet"

pytestmark = pytest.mark.slow  # drives Chromium through Playwright
ARTIFACTS = Path(os.environ.get("DIGEST_ARTIFACTS", ROOT / "artifacts")) / "screenshots"


@pytest.fixture
def site(console: Console) -> Console:
    return console


def _wait_for_mail(smtp_server: SmtpServer, count: int) -> None:
    import time

    deadline = time.monotonic() + 10
    while len(smtp_server.messages) < count and time.monotonic() < deadline:
        time.sleep(0.05)


# The colours a region of a PNG holds, counted by Chromium itself (a canvas in a blank page).
_COLOURS_JS = """async ([png, box]) => {
  const image = new Image();
  image.src = "data:image/png;base64," + png;
  await image.decode();
  const canvas = document.createElement("canvas");
  canvas.width = image.width; canvas.height = image.height;
  const context = canvas.getContext("2d");
  context.drawImage(image, 0, 0);
  const pixels = context.getImageData(box.x, box.y, box.width, box.height).data;
  const seen = new Set();
  for (let i = 0; i < pixels.length && seen.size < 50; i += 4) {
    seen.add((pixels[i] << 16) | (pixels[i + 1] << 8) | pixels[i + 2]);
  }
  return seen.size;
}"""


class Shots:
    """Screenshots of each screen, wide and narrow; the narrow one must not scroll sideways,
    and every frame on a screen (the preview's email) must show in both pictures."""

    def __init__(self, browser: Any, base: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        # The phone-width copy is also the dark-mode one: both looks are checked by eye.
        self.narrow = browser.new_context(
            viewport={"width": 375, "height": 812}, color_scheme="dark"
        )
        self.base = base

    def take(self, page: Any, name: str) -> None:
        page.wait_for_load_state("networkidle")
        self._capture(page, f"admin-{name}.png")
        narrow = self.narrow.new_page()
        narrow.context.add_cookies(page.context.cookies())
        narrow.goto(page.url, wait_until="networkidle")
        self._capture(narrow, f"admin-{name}-375.png")
        overflow = narrow.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0, f"{name} scrolls sideways at 375 px by {overflow} px"
        narrow.close()

    def _capture(self, page: Any, file: str) -> None:
        """The whole page, frames included. Chromium's full-page capture leaves a frame of
        another origin (the preview's sandboxed email) blank when it lies below the
        viewport (microsoft/playwright#40583): the 375 px preview showed a white box where
        the email was. So the viewport is made as tall as the page, and captured."""
        viewport = page.viewport_size
        height = page.evaluate("document.documentElement.scrollHeight")
        page.set_viewport_size({"width": viewport["width"], "height": height})
        frames = page.locator("iframe").all()
        boxes = [frame.bounding_box() for frame in frames]
        picture = b""
        for _ in range(50):  # until every frame has painted (a few frames' time)
            picture = page.screenshot(path=str(ARTIFACTS / file))
            if all(self._colours(picture, box) > 1 for box in boxes if box):
                break
            page.wait_for_timeout(100)
        page.set_viewport_size(viewport)
        blank = [box for box in boxes if box and self._colours(picture, box) <= 1]
        assert not blank, f"{file}: a frame shows as a blank box at {blank}"

    def _colours(self, png: bytes, box: dict[str, float]) -> int:
        """How many colours the region ``box`` of the picture ``png`` holds (at most 50)."""
        region = {k: int(box[k]) + (2 if k in "xy" else -4) for k in ("x", "y", "width", "height")}
        checker = self.narrow.new_page()
        try:
            return int(checker.evaluate(_COLOURS_JS, [base64.b64encode(png).decode(), region]))
        finally:
            checker.close()


def test_an_admin_walks_the_console(
    site: Console, smtp_server: SmtpServer, feed_server: FeedServer
) -> None:
    store = site.app.store
    for address, name in (
        ("ann@example.org", "Ann Archer"),
        ("bob@example.org", "Bob Baker"),
        ("later@example.org", "Lee Later"),
    ):
        store.add_subscriber(address, name)
    first = run(run_digest(site.app))  # one sent edition, one deferred row to retry
    assert first.edition is not None and first.delivery is not None
    edition_id = first.edition.id
    assert store.delivery_counts(edition_id) == {"sent": 2, "deferred": 1}  # type: ignore[arg-type]
    mails_before = len(smtp_server.messages)
    # Those three stories went out; the next edition is a new one (each story goes once).
    feed_server.add("/science.xml", rss([{"title": NEW_STORY, "guid": "n1", "link": NEW_LINK}]))
    run(gather_sources(site.app))

    with sync_api.sync_playwright() as playwright:
        browser = launch(playwright)
        shots = Shots(browser, site.base)
        page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()

        # Log in: the console sends a stranger to the login page, then back where they were.
        page.goto(site.base + "/admin/subscribers")
        assert page.url.startswith(site.base + "/admin/login")
        shots.take(page, "login")
        page.fill("#email", ADMIN)
        page.fill("#password", PASSWORD)
        page.keyboard.press("Enter")  # the keyboard alone is enough
        page.wait_for_url(site.base + "/admin/subscribers")

        # Dashboard.
        page.click("nav >> text=Dashboard")
        body = page.inner_text("main")
        assert "Daemon" in body and "not running" in body
        assert "Next Daily Test" in body and "UTC" in body
        assert f"#{edition_id} daily" in body and "451 4.7.1 Try again later" in body
        assert "3 active" in body
        shots.take(page, "dashboard")

        # Preview as a segment: science only, in French, in Tokyo.
        page.click("nav >> text=Preview")
        page.fill("#timezone", "Asia/Tokyo")
        page.select_option("#locale", "fr")
        page.check("input[value=science]")
        page.click("form[aria-label='Whose edition'] button[type=submit]")
        stories = page.inner_text("table")
        assert NEW_STORY in stories and "Storm reaches the coast" not in stories
        assert "recency" in stories  # explain's signals beside each story
        frame = page.frame_locator("iframe.email")
        assert NEW_STORY in frame.locator("body").inner_text()
        assert NEW_STORY in page.inner_text("pre.text")
        # The text part shows its own lines (78 columns), none wrapped again by the pane: a
        # wrapped line would read as a broken message. Each line of text is one line box.
        line_boxes, text_lines = page.eval_on_selector(
            "pre.text",
            """pre => {
                const range = document.createRange();
                range.selectNodeContents(pre);
                const tops = new Set([...range.getClientRects()]
                    .filter(r => r.width > 0).map(r => Math.round(r.top)));
                return [tops.size, pre.textContent.split("\\n").filter(l => l.trim()).length];
            }""",
        )
        assert line_boxes == text_lines
        shots.take(page, "preview")

        # Send this preview to me: it arrives, marked as a test, and is not a delivery.
        page.click("text=Send this preview to me")
        assert "A test copy was sent to boss@example.org" in page.inner_text("main")
        _wait_for_mail(smtp_server, mails_before + 1)
        test_mail = smtp_server.messages[-1]
        assert test_mail.recipients == [ADMIN]
        message = test_mail.message()
        assert str(message["Subject"]).startswith("[Test] ") and message["X-Digest-Test"] == "yes"
        assert NEW_STORY in message.as_string()
        assert sum(store.delivery_counts(edition_id).values()) == 3  # type: ignore[arg-type]
        assert len(store.editions()) == 1
        shots.take(page, "preview-sent")

        # Subscribers: search by name, open the person, pause then unsubscribe.
        page.click("nav >> text=Subscribers")
        page.fill("#q", "baker")
        page.click("form[role=search] button")
        rows = page.inner_text("table tbody")
        assert "bob@example.org" in rows and "ann@example.org" not in rows
        shots.take(page, "subscribers")
        page.click("text=bob@example.org")
        page.click("button[value=pause]")
        assert "is paused" in page.inner_text("main")
        assert store.subscriber_by_email("bob@example.org").status == "paused"  # type: ignore[union-attr]
        page.click("button[value=unsubscribe]")
        # Final for the admin: the page asks first, and nothing changes until it is answered.
        assert "Unsubscribe bob@example.org?" in page.inner_text("main")
        assert store.subscriber_by_email("bob@example.org").status == "paused"  # type: ignore[union-attr]
        page.click("text=Yes, unsubscribe bob@example.org")
        assert store.subscriber_by_email("bob@example.org").status == "unsubscribed"  # type: ignore[union-attr]
        assert "Only they can come back" in page.inner_text("main")
        assert page.locator("button[value=resume]").count() == 0  # no way back from here
        shots.take(page, "subscriber")

        # CSV import: previewed (how each column is read, which rows are refused), then done.
        page.click("nav >> text=Import")
        page.fill(
            "#text",
            "Email Address;Full Name;Interests\n"
            "cy@example.org;Cy Clark;science\n"
            "not-an-address;Nope;world\n"
            "bob@example.org;Bob Baker;world\n"
            "di@example.org;Di Dee;cooking\n",
        )
        page.click("button[value=preview]")
        main = page.inner_text("main")
        assert "Email Address\temail" in main and "Interests\ttopics" in main
        assert "2 rows accepted" in main and "2 rows refused" in main
        assert "no source has the topic" in main and "not re-added: unsubscribed earlier" in main
        assert store.subscriber_by_email("cy@example.org") is None  # nothing written yet
        shots.take(page, "import-preview")
        page.click("text=Import 1 new row")
        assert "Imported 1 new" in page.inner_text("main")
        cy = store.subscriber_by_email("cy@example.org")
        assert cy is not None and cy.topics == "science" and cy.name == "Cy Clark"
        assert store.subscriber_by_email("bob@example.org").status == "unsubscribed"  # type: ignore[union-attr]
        shots.take(page, "import-done")

        # Editions: the deferred row is retried (the server now takes it) and sent.
        smtp_server.handler.defer_later = False
        page.click("nav >> text=Editions")
        shots.take(page, "editions")
        page.click(f"text=#{edition_id} daily")
        page.select_option("#state", "deferred")
        page.click("form.filters button")
        assert "later@example.org" in page.inner_text("table >> nth=1")
        page.click("text=Retry 1 failed, paused or deferred row and send")
        assert "Retried: 0 failed re-queued, 0 paused resumed, 1 deferred due now; then 1 sent" in (
            page.inner_text("main")
        )
        assert store.delivery_counts(edition_id) == {"sent": 3}  # type: ignore[arg-type]
        assert any(m.recipients == ["later@example.org"] for m in smtp_server.messages)
        shots.take(page, "edition")

        # Sources and the transport check.
        page.click("nav >> text=Sources")
        page.click("button[aria-label='Fetch Science Daily now']")
        assert "Fetched Science Daily: 1 item, 0 new" in page.inner_text("main")
        shots.take(page, "sources")
        page.click("nav >> text=Delivery")
        page.click("text=Test the connection")
        assert "Connection ok: 127.0.0.1:" in page.inner_text("main")
        shots.take(page, "delivery")
        mails = len(smtp_server.messages)

        # The config: shown, checked and reloaded, never written.
        page.click("nav >> text=Config")
        page.click("text=Reload the file")
        assert "Reloaded: 2 sources, 1 digests" in page.inner_text("main")
        shots.take(page, "config")

        # Log out: the console is closed again.
        page.click("nav >> text=Log out >> nth=0")
        assert page.url.startswith(site.base + "/admin/login")
        page.goto(site.base + "/admin/")
        assert page.url.startswith(site.base + "/admin/login")
        browser.close()
    assert len(smtp_server.messages) == mails  # the connection test sent nothing
