"""The console's long lists at a newsroom's size: every row of an edition's deliveries and
every subscriber can be reached a page at a time (a page is a few rows here, so a handful
of readers stands for 100,000)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from digest.app import run
from digest.pipeline import run_digest
from digest.store import Store, open_engine, upgrade
from digest.web.admin import views
from tests.admin_site import Console, console_config, serving
from tests.conftest import FeedServer, SmtpServer, csrf
from tests.store_queries import add_readers, reader_address

READERS = [f"reader{i}@example.org" for i in range(5)]


@pytest.fixture
def client(console: Console) -> Iterator[httpx.Client]:
    with console.logged_in() as c:
        yield c


def edition_paged_by_two(console: Console, monkeypatch: pytest.MonkeyPatch) -> str:
    """The console's page of an edition sent to READERS, two delivery rows a page."""
    for email in READERS:
        console.app.store.add_subscriber(email)
    report = run(run_digest(console.app))
    assert report.edition is not None
    monkeypatch.setattr(views, "DELIVERIES_PAGE", 2, raising=False)
    return f"/admin/editions/{report.edition.id}"


def walk(client: httpx.Client, path: str) -> list[str]:
    """The addresses listed on ``path`` and every page its "Next" links lead to, in order."""
    seen: list[str] = []
    while path:
        page = client.get(path)
        assert page.status_code == 200, path
        seen += re.findall(r'<a href="/admin/subscribers/\d+">([^<]+)</a>', page.text)
        found = re.search(r'<a href="([^"]+)" rel="next">', page.text)
        path = found.group(1).replace("&amp;", "&") if found else ""
    return seen


def test_every_delivery_row_of_an_edition_is_reached_page_by_page(
    console: Console,
    client: httpx.Client,
    smtp_server: SmtpServer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    edition = edition_paged_by_two(console, monkeypatch)
    first = client.get(edition).text
    assert "2 of 5 rows on this page." in first
    assert walk(client, edition) == READERS  # each once, in the order they were queued
    assert walk(client, f"{edition}?state=sent") == READERS
    assert walk(client, f"{edition}?state=failed") == []


def test_every_subscriber_is_reached_page_by_page_with_the_filters_kept(
    console: Console, client: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    from digest.web.admin import subscriber_screens

    store = console.app.store
    for email in reversed(READERS):  # joined in the other order: the list goes by address
        store.add_subscriber(email)
    paused, _ = store.add_subscriber("reader9@example.org")
    store.set_subscriber(paused.id, status="paused")  # type: ignore[arg-type]
    monkeypatch.setattr(subscriber_screens, "SUBSCRIBERS_PAGE", 2, raising=False)
    assert "2 of 6 on this page" in client.get("/admin/subscribers").text
    assert walk(client, "/admin/subscribers") == [*READERS, "reader9@example.org"]
    assert walk(client, "/admin/subscribers?status=active") == READERS
    assert walk(client, "/admin/subscribers?q=reader&status=paused") == ["reader9@example.org"]


def test_an_import_preview_looks_up_the_files_addresses_not_the_whole_list(
    console: Console, client: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A five-line file's preview took 2 s at 100,000 subscribers: it read them all to learn
    which of its addresses were in already."""
    store = console.app.store
    store.add_subscriber("gone@example.org")
    store.unsubscribe(email="gone@example.org")
    store.add_subscriber("here@example.org")

    def whole_list(*args: object, **kwargs: object) -> None:
        raise AssertionError("the preview read every subscriber")

    monkeypatch.setattr(store, "subscribers", whole_list)
    page = client.get("/admin/import")
    text = "email\nnew@example.org\ngone@example.org\nhere@example.org\n"
    preview = client.post(
        "/admin/import", data={"csrf": csrf(page), "text": text, "action": "preview"}
    )
    assert preview.status_code == 200
    fates = re.findall(
        r"<td>([^<]+@example\.org)</td>.*?<td class=\"[^\"]+\">([^<]+)</td>", preview.text
    )
    assert fates == [
        ("new@example.org", "new"),
        ("gone@example.org", "not re-added: unsubscribed earlier"),
        ("here@example.org", "already subscribed"),
    ]


def test_the_export_writes_everyone_the_filters_find_in_the_import_s_columns(
    console: Console, client: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    from digest.subscribers import parse_csv
    from digest.web.admin import subscriber_screens

    store = console.app.store
    for email in READERS:
        store.add_subscriber(email, name="=HYPERLINK()" if email == READERS[0] else None)
    paused, _ = store.add_subscriber("reader9@example.org", topics=["world"])
    store.set_subscriber(paused.id, status="paused")  # type: ignore[arg-type]
    monkeypatch.setattr(subscriber_screens, "SUBSCRIBERS_PAGE", 2, raising=False)
    monkeypatch.setattr(subscriber_screens, "EXPORT_PART", 2, raising=False)
    listed = client.get("/admin/subscribers", params={"status": "active"}).text
    assert 'href="/admin/subscribers.csv?status=active"' in listed
    export = client.get("/admin/subscribers.csv", params={"status": "active"})
    assert export.status_code == 200 and export.headers["content-type"].startswith("text/csv")
    assert 'filename="subscribers-active.csv"' in export.headers["content-disposition"]
    lines = export.text.splitlines()
    assert lines[0] == "email,name,topics,timezone,locale,status"  # once, however many parts
    assert lines[1] == "reader0@example.org,'=HYPERLINK(),,,,active"  # a formula kept as text
    good, problems = parse_csv(export.text)  # what the import reads back
    assert [s.email for s in good] == READERS and problems == []
    everyone = client.get("/admin/subscribers.csv").text
    assert "reader9@example.org,,world,,,paused" in everyone
    # Unfiltered, the page's first export is the active readers, as `digest subscribers
    # export` writes: an admin moving the list must not mail the people who left.
    unfiltered = client.get("/admin/subscribers").text
    assert re.search(
        r'<a href="/admin/subscribers.csv\?status=active" download>Export the active readers',
        unfiltered,
    )
    assert ">everyone, every status</a>" in unfiltered


def test_a_long_import_preview_puts_the_refused_rows_first_and_sums_up_the_rest(
    console: Console, client: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 15,000-row file's preview listed every accepted row (2.5 MB) before the one
    refused row at its end."""
    from digest.web.admin import subscriber_screens

    console.app.store.add_subscriber("reader1@example.org")
    monkeypatch.setattr(subscriber_screens, "PREVIEW_ROWS", 2, raising=False)
    text = "email\n" + "\n".join(READERS) + "\nnot-an-address\n"
    page = client.get("/admin/import")
    preview = client.post(
        "/admin/import", data={"csrf": csrf(page), "text": text, "action": "preview"}
    ).text
    refused, accepted = preview.index("1 row refused"), preview.index("5 rows accepted")
    assert refused < accepted and "not-an-address" in preview[refused:accepted]
    assert "4 new · 1 already subscribed; the first 2 below." in preview
    listed = re.findall(r"<tr><td>(reader\d@example\.org)</td>", preview)
    assert listed == READERS[:2]
    assert "Import 4 new rows" in preview  # every row is imported, not the ones listed


def test_a_hand_edited_page_address_shows_the_first_page(
    console: Console, client: httpx.Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A digit int() refuses, or a number past any id (which PostgreSQL refuses in the
    query), was a server error."""
    edition = edition_paged_by_two(console, monkeypatch)
    for after in ("²", "9" * 30):
        page = client.get(f"{edition}?after={after}")
        assert page.status_code == 200, after
        assert "2 of 5 rows on this page." in page.text


def test_a_nul_in_the_search_or_the_page_finds_nobody_on_postgresql(
    postgres_database: str,
) -> None:
    """PostgreSQL refuses a NUL in a query's text: a hand-edited ?q= or ?after= with %00
    was a server error there."""
    engine = open_engine(postgres_database)
    upgrade(engine)
    store = Store(engine)
    try:
        add_readers(engine, 3)
        assert store.search_subscribers("reader\x00") == []
        after = store.search_subscribers(after=f"{reader_address(0)}\x00zz")
        assert [s.email for s in after] == [reader_address(1), reader_address(2)]
    finally:
        engine.dispose()


def test_an_export_by_a_topic_in_any_script_is_named_after_it(
    write_config: Callable[..., Path], feed_server: FeedServer, smtp_server: SmtpServer
) -> None:
    """A topic's name went into the download's header as it is, and a header holds Latin-1
    only: the export of the readers of a topic in Greek or Chinese was a server error."""
    config = console_config(write_config, feed_server, smtp_server.port)
    config.write_text(config.read_text().replace('["science"]', '["science", "政治"]'))
    with serving(config, gather=False) as site, site.logged_in() as client:
        site.app.store.add_subscriber("ann@example.org", topics=["政治"])
        export = client.get("/admin/subscribers.csv", params={"topic": "政治"})
    assert export.status_code == 200
    named = export.headers["content-disposition"]
    assert named.startswith('attachment; filename="subscribers-__.csv"')  # every browser
    assert "filename*=UTF-8''subscribers-%E6%94%BF%E6%B2%BB.csv" in named  # RFC 6266's
    assert "ann@example.org,,政治,,,active" in export.text
