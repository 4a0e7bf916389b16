"""Nothing to say, nothing sent: an edition without stories mails nobody, and a subscriber
whose topics match none of an edition's stories is skipped, each with a line saying why.
``send_empty = true`` sends the "nothing new" email instead."""

from __future__ import annotations

from pathlib import Path

from digest.app import App
from digest.config import load_config
from tests.conftest import FeedServer, rss, run_cli
from tests.test_local_time import _received as _inbox


def _service(write_config, feed_server: FeedServer, items: list[dict[str, str]], extra: str = ""):
    url = feed_server.add("/w.xml", rss(items))
    lab = feed_server.add("/s.xml", rss([]))  # a science source with nothing new
    config = write_config([("World Desk", url), ("Lab Notes", lab)])
    text = config.read_text().replace(f'url = "{url}"', f'url = "{url}"\ntopics = ["world"]')
    text = text.replace(f'url = "{lab}"', f'url = "{lab}"\ntopics = ["science"]')
    config.write_text(text.replace("lookback_hours = 48", f"lookback_hours = 48\n{extra}"))
    return config


def _science_and_world_readers(write_config, feed_server: FeedServer) -> Path:
    """A world-news source with one story, a science source with none, one reader of
    science and one of world news."""
    story = {"title": "Ceasefire talks resume", "guid": "w1", "link": "https://w.test/1"}
    config = _service(write_config, feed_server, [story])
    cli = ["--config", str(config), "subscribers", "add"]
    assert run_cli(*cli, "sci@example.org", "--topic", "science")[0] == 0
    assert run_cli(*cli, "world@example.org", "--topic", "world")[0] == 0
    return config


def test_an_edition_without_stories_mails_nobody_and_says_why(
    write_config, feed_server: FeedServer, tmp_path: Path
) -> None:
    config = _service(write_config, feed_server, [])
    assert run_cli("--config", str(config), "subscribers", "add", "ann@example.org")[0] == 0

    code, out, _ = run_cli("--config", str(config), "send", "--gather")

    assert code == 0
    assert "0 stories" in out and "nothing sent: edition 1 has no stories" in out
    assert "see `digest sources`" in out
    assert _inbox(tmp_path) == {}


def test_send_empty_sends_the_nothing_new_email(
    write_config, feed_server: FeedServer, tmp_path: Path
) -> None:
    config = _service(write_config, feed_server, [], extra="send_empty = true")
    assert run_cli("--config", str(config), "subscribers", "add", "ann@example.org")[0] == 0

    assert run_cli("--config", str(config), "send", "--gather")[0] == 0

    assert list(_inbox(tmp_path)) == ["ann@example.org"]


def test_a_reader_whose_topics_match_nothing_is_skipped_and_the_row_says_why(
    write_config, feed_server: FeedServer, tmp_path: Path
) -> None:
    config = _science_and_world_readers(write_config, feed_server)

    code, out, _ = run_cli("--config", str(config), "send", "--gather")

    assert code == 0 and "1 sent, 1 skipped" in out
    assert list(_inbox(tmp_path)) == ["world@example.org"]
    app = App.open(load_config(config))
    try:
        rows = {s.email: d for d, s in app.store.deliveries(1)}
    finally:
        app.close()
    assert rows["sci@example.org"].status == "skipped"
    assert "no story of this edition is in their topics (science)" in (
        rows["sci@example.org"].error or ""
    )
    # Skipped is final: a second run sends nobody anything.
    assert "nothing to send" in run_cli("--config", str(config), "send")[1]
    assert list(_inbox(tmp_path)) == ["world@example.org"]


def test_status_counts_an_edition_with_skipped_rows_as_done(
    write_config, feed_server: FeedServer
) -> None:
    import json

    config = _science_and_world_readers(write_config, feed_server)
    assert run_cli("--config", str(config), "send", "--gather")[0] == 0

    code, out, _ = run_cli("--config", str(config), "status", "--json")

    assert code == 0
    [edition] = json.loads(out)["editions"]
    assert edition["progress"] == 1.0


def test_send_and_status_give_each_skip_its_reason_grouped(
    write_config, feed_server: FeedServer
) -> None:
    """Every count comes with its reasons (issue 20, point 1): "1 skipped" alone sends the
    admin to the database."""
    import json

    config = _science_and_world_readers(write_config, feed_server)
    add = ["--config", str(config), "subscribers", "add"]
    assert run_cli(*add, "sci2@example.org", "--topic", "science")[0] == 0

    code, out, _ = run_cli("--config", str(config), "send", "--gather")

    assert code == 0 and "1 sent, 2 skipped" in out
    reason = "no story of this edition is in their topics (science)"
    assert f"  skipped 2: {reason}\n" in out

    code, out, _ = run_cli("--config", str(config), "status", "--json")
    assert code == 0
    [edition] = json.loads(out)["editions"]
    assert edition["reasons"] == {"skipped": {reason: 2}}
    code, out, _ = run_cli("--config", str(config), "status")
    assert f"edition 1: skipped 2: {reason}" in out
