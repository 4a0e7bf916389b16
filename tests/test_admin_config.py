"""The Config screen: the file as written with its secrets redacted, `digest check`'s
errors and warnings with their lines, and Reload, which keeps the running config when the
file is invalid (as the daemon's SIGHUP does) and is used at once when it is valid."""

from __future__ import annotations

import html
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from digest.web.admin.config_screen import REDACTED, redact
from tests.admin_site import Console, console_config, serving
from tests.conftest import SECRET, FeedServer, Route, SmtpServer, csrf, run_cli

TOKEN = "metrics-token-d41d8cd98f"


@pytest.fixture
def config(
    write_config: Callable[..., Path],
    feed_server: FeedServer,
    smtp_server: SmtpServer,
    monkeypatch: pytest.MonkeyPatch,
) -> Path:
    monkeypatch.setenv("DIGEST_METRICS_TOKEN", TOKEN)
    monkeypatch.setenv("DIGEST_PREVIOUS_SECRETS", "short")  # `digest check` warns of it
    path = console_config(write_config, feed_server, smtp_server.port)
    path.write_text(path.read_text() + '\n[admin]\nmetrics_token_env = "DIGEST_METRICS_TOKEN"\n')
    return path


@pytest.fixture
def site(config: Path) -> Iterator[Console]:
    with serving(config, gather=False) as running:
        yield running


@pytest.fixture
def client(site: Console) -> Iterator[httpx.Client]:
    with site.logged_in() as c:
        yield c


def _line_of(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


def test_the_screen_shows_the_file_and_its_warnings_and_never_a_secret(
    config: Path, client: httpx.Client
) -> None:
    page = client.get("/admin/config")
    assert page.status_code == 200
    text = html.unescape(page.text)
    assert str(config) in text
    assert 'name = "World Wire"' in text and 'metrics_token_env = "DIGEST_METRICS_TOKEN"' in text
    line = _line_of(config, "[service]")  # the key is not written: its table's line
    assert f"{config}:{line}: service.previous_secrets_env: $DIGEST_PREVIOUS_SECRETS" in text
    assert "ok (2 sources (2 enabled), 1 digests, delivery by smtp)" in text
    assert TOKEN not in text and SECRET not in text


def test_the_screen_warns_of_a_file_source_whose_file_is_not_there(
    config: Path, client: httpx.Client
) -> None:
    """`digest check` says so; the console's check of the same file says it too."""
    config.write_text(config.read_text() + '\n[[sources]]\nname = "Lost"\nurl = "file:lost.xml"\n')
    line = _line_of(config, 'url = "file:lost.xml"')

    text = html.unescape(client.get("/admin/config").text)

    assert (
        f"{config}:{line}: sources[2].url: source 'Lost' names {config.parent / 'lost.xml'}, "
        "which does not exist; fix the path"
    ) in text


def test_a_pasted_secret_is_redacted_from_the_file_and_from_its_error(
    config: Path, client: httpx.Client
) -> None:
    pasted = "Hunter2 pasted!"
    text = config.read_text().replace(
        'metrics_token_env = "DIGEST_METRICS_TOKEN"', f'metrics_token_env = "{pasted}"'
    )
    config.write_text(text)
    page = html.unescape(client.get("/admin/config").text)
    line = _line_of(config, "metrics_token_env")
    assert f"{config}:{line}: admin.metrics_token_env:" in page  # the error, placed
    assert pasted not in page and REDACTED in page


def test_redaction_of_literal_secrets_and_url_passwords() -> None:
    text = (
        '[service]\ndatabase_url = "postgresql://digest:pa55word@db/digest"\n'
        'secret_env = "DIGEST_SECRET"\n'
        "[delivery.smtp]\npassword = 'plain-text-pw'  # not a key digest reads\n"
        '[delivery.dkim]\nprivate_key_file = "keys/dkim.pem"\n'
        'private_key_env = """-----BEGIN KEY-----\nMIIEvQIBADANBg\n-----END KEY-----"""\n'
    )
    shown, scrub = redact(text)
    for secret in ("pa55word", "plain-text-pw", "MIIEvQIBADANBg"):
        assert secret not in shown
        assert scrub(f"bad value {secret!r}") == f"bad value '{REDACTED}'"
    assert "postgresql://digest:" in shown and 'secret_env = "DIGEST_SECRET"' in shown
    assert 'private_key_file = "keys/dkim.pem"' in shown  # a path is no secret


def test_a_broken_file_is_not_reloaded_and_its_error_is_shown_with_its_line(
    config: Path, site: Console, client: httpx.Client
) -> None:
    running = site.app.config
    config.write_text(config.read_text().replace("breaking_items = 3", "breaking_items = -3"))
    page = client.get("/admin/config")
    answer = client.post("/admin/config/reload", data={"csrf": csrf(page)})
    assert answer.status_code == 400
    text = html.unescape(answer.text)
    assert "The file was not reloaded: the running config is kept." in text
    assert f"{config}:{_line_of(config, 'breaking_items')}: digests[0].breaking_items:" in text
    assert site.app.config is running


def test_a_valid_change_is_used_at_once_and_a_new_database_is_refused(
    config: Path, site: Console, client: httpx.Client
) -> None:
    params = {"digest": "daily"}
    assert "Daily Test" in client.get("/admin/preview", params=params).text
    config.write_text(config.read_text().replace('title = "Daily Test"', 'title = "Morning Brief"'))
    page = client.get("/admin/config")
    assert "The file changed after the running config was read" in page.text
    assert client.post("/admin/config/reload", data={}).status_code == 403  # no CSRF field
    assert "Daily Test" in client.get("/admin/preview", params=params).text
    done = client.post("/admin/config/reload", data={"csrf": csrf(page)})
    assert done.status_code == 303 and done.headers["location"].startswith("/admin/config?")
    assert "Reloaded: 2 sources, 1 digests" in client.get(done.headers["location"]).text
    preview = client.get("/admin/preview", params=params).text
    assert "Morning Brief" in preview and "Daily Test" not in preview
    assert "Morning Brief" in client.get("/admin/preview/email.html", params=params).text

    config.write_text(config.read_text().replace("sqlite:///digest.db", "sqlite:///other.db"))
    refused = client.post("/admin/config/reload", data={"csrf": csrf(page)})
    assert refused.status_code == 400 and "restart to change the database" in refused.text
    assert site.app.config.service.database_url == "sqlite:///digest.db"


HOLDER = """
import fcntl, os, signal, sys, time
lock, marker = sys.argv[1:]
handle = open(lock, "a+")
fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
handle.truncate(0)
handle.write(str(os.getpid()))
handle.flush()
signal.signal(signal.SIGHUP, lambda *_: (open(marker, "w").write("hup"), sys.exit(0)))
print("ready", flush=True)
time.sleep(60)
"""


@pytest.mark.slow
def test_the_daemon_on_this_machine_is_signalled_to_reload(
    config: Path, client: httpx.Client
) -> None:
    marker = config.parent / "hup"
    assert "No daemon runs on this database now" in client.get("/admin/config").text
    holder = subprocess.Popen(  # holds the daemon's lock as `digest run --daemon` does
        [sys.executable, "-c", HOLDER, str(config.parent / "digest.db.daemon.lock"), str(marker)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ready"
        page = client.get("/admin/config")
        assert f"pid {holder.pid}" in page.text and f"kill -HUP {holder.pid}" in page.text
        answer = client.post("/admin/config/signal", data={"csrf": csrf(page)})
        assert answer.status_code == 200 and "was told to reload" in answer.text
        holder.wait(timeout=10)
        deadline = time.monotonic() + 5
        while not marker.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marker.read_text() == "hup"
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()


def test_the_config_check_warns_of_a_failing_source_as_digest_check_does(
    write_config: Callable[..., Path], feed_server: FeedServer, smtp_server: SmtpServer
) -> None:
    """The screen's "digest check" said ok where the command warned of a source failing."""
    path = console_config(write_config, feed_server, smtp_server.port)
    feed_server.routes["/science.xml"] = Route(b"down", status=500)
    with serving(path) as site, site.logged_in() as client:
        page = html.unescape(client.get("/admin/config").text)
        code, _, err = run_cli("--config", str(path), "check")
    assert code == 0
    said = [line for line in err.splitlines() if "Science Daily" in line]
    assert said and said[0].startswith("warning: source 'Science Daily': FAIL")
    assert said[0].removeprefix("warning: ") in page
