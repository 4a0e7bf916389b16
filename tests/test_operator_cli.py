"""What the admin checks before and after a send: `explain` and `preview` show the next
edition as the send will build it; failures are messages and exit codes, not tracebacks."""

from __future__ import annotations

import json
import mailbox
from datetime import timedelta
from pathlib import Path

from babel.dates import get_month_names

from digest.app import App
from digest.config import load_config
from digest.editions import rank_window
from digest.store import utcnow
from tests.conftest import FeedServer, rss, run_cli


def _feed(feed_server: FeedServer) -> str:
    story = {"title": "Harbour strike ends", "guid": "1", "link": "https://wire.test/1"}
    return feed_server.add("/f.xml", rss([story]))


def test_explain_after_a_send_shows_its_story_as_already_sent(write_config, feed_server) -> None:
    config = write_config([("Wire", _feed(feed_server))])
    assert run_cli("--config", str(config), "subscribers", "add", "ana@example.org")[0] == 0
    assert run_cli("--config", str(config), "send", "--gather")[0] == 0

    code, out, _ = run_cli("--config", str(config), "explain", "--json")

    assert code == 0
    [story] = json.loads(out)["stories"]
    explained = story["signals"]["already_sent"]["adds"]
    app = App.open(load_config(config))
    try:  # what the next edition, at tomorrow's slot, does with the same story
        [edition] = app.store.editions()
        ranked = rank_window(app, app.config.digests[0], edition.slot + timedelta(days=1))
        [tomorrow] = ranked.breaking + ranked.latest
    finally:
        app.close()
    penalty = next(s.contribution for s in tomorrow.signals if s.name == "already_sent")
    assert penalty < 0 and explained == round(penalty, 4)


def test_preview_is_the_email_the_send_builds(
    write_config, feed_server: FeedServer, tmp_path: Path
) -> None:
    """The admin's templates, the service's language and the web-view link, as sent."""
    config = write_config([("Wire", _feed(feed_server))])
    text = config.read_text().replace(
        'secret_env = "DIGEST_SECRET"',
        'secret_env = "DIGEST_SECRET"\ntemplates_dir = "mine"\nlocale = "fr"',
    )
    config.write_text(text)
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "digest.txt.j2").write_text(
        "OUR OWN TEXT {{ loc.long_date(local_date) }} {{ edition.web_url }}\n"
        "{% for story in breaking + latest %}* {{ story.lead.title }}\n{% endfor %}"
    )
    assert run_cli("--config", str(config), "gather")[0] == 0
    code, _, err = run_cli("--config", str(config), "preview", "--out", str(tmp_path / "p"))
    assert code == 0, err
    preview = (tmp_path / "p" / "daily.txt").read_text()

    assert run_cli("--config", str(config), "subscribers", "add", "ana@example.org")[0] == 0
    assert run_cli("--config", str(config), "send")[0] == 0
    [message] = mailbox.Maildir(str(tmp_path / "mail"), create=False)
    sent = next(p for p in message.walk() if p.get_content_type() == "text/plain")
    payload = sent.get_payload(decode=True)
    assert isinstance(payload, bytes)
    sent_text = payload.decode()
    first_line = preview.splitlines()[0]
    month = get_month_names("wide", locale="fr")[utcnow().month]
    assert first_line.startswith("OUR OWN TEXT") and month in first_line  # French
    assert "/editions/daily/" in first_line
    assert first_line == sent_text.splitlines()[0]  # the same French date, the same link
