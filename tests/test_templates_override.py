"""Admin templates: a folder named in the config overrides the built-in ones, file by file."""

from __future__ import annotations

import mailbox
from pathlib import Path

from tests.conftest import FeedServer, rss, run_cli


def _config(write_config, feed_server: FeedServer, tmp_path: Path) -> Path:
    url = feed_server.add(
        "/f.xml",
        rss([{"title": "Harbour strike ends", "guid": "1", "link": "https://wire.test/1"}]),
    )
    config = write_config([("Wire", url)])
    text = config.read_text().replace(
        'secret_env = "DIGEST_SECRET"',
        'secret_env = "DIGEST_SECRET"\ntemplates_dir = "mytemplates"',
    )
    config.write_text(text)
    (tmp_path / "mytemplates").mkdir()
    return config


def test_check_reports_a_broken_admin_template_with_file_and_line(
    write_config, feed_server: FeedServer, tmp_path: Path
) -> None:
    config = _config(write_config, feed_server, tmp_path)
    broken = tmp_path / "mytemplates" / "digest.txt.j2"
    broken.write_text("Hello\n{% for story in breaking %}\nno endfor\n")
    code, _, err = run_cli("--config", str(config), "check")
    assert code == 2
    assert f"{broken}:" in err and "syntax error" in err and "Traceback" not in err
    # Nothing is sent with a broken template either.
    assert run_cli("--config", str(config), "subscribers", "add", "ana@example.org")[0] == 0
    code, _, err = run_cli("--config", str(config), "send", "--gather")
    assert code == 2 and f"{broken}:" in err
    assert not (tmp_path / "mail").exists() or not list((tmp_path / "mail" / "new").iterdir())


def test_a_good_override_replaces_only_its_own_file(
    write_config, feed_server: FeedServer, tmp_path: Path
) -> None:
    config = _config(write_config, feed_server, tmp_path)
    (tmp_path / "mytemplates" / "digest.txt.j2").write_text(
        "OUR OWN TEXT\n{% for story in breaking + latest %}* {{ story.lead.title }}\n{% endfor %}"
        "Leave: {{ unsubscribe_url }}\n"
    )
    assert run_cli("--config", str(config), "check")[0] == 0
    assert run_cli("--config", str(config), "subscribers", "add", "ana@example.org")[0] == 0
    code, _, err = run_cli("--config", str(config), "send", "--gather")
    assert code == 0, err
    box = mailbox.Maildir(str(tmp_path / "mail"), create=False)
    (message,) = [box.get_message(key) for key in box.iterkeys()]
    parts = {
        p.get_content_type(): p.get_payload(decode=True).decode()  # type: ignore[union-attr]
        for p in message.walk()
        if not p.is_multipart()
    }
    assert parts["text/plain"].startswith("OUR OWN TEXT\n* Harbour strike ends")
    assert "Leave: https://digest.test/unsubscribe/" in parts["text/plain"]
    assert "Harbour strike ends" in parts["text/html"]  # the built-in HTML template still serves
