"""`digest serve` says at start when ``service.base_url`` is not where readers can reach it:
every link mailed (confirmation, preferences, unsubscribe) starts with it, and the demo's
digest.example.org sent a sign-up's confirmation link nowhere, without a word."""

from __future__ import annotations

from pathlib import Path

import pytest
import uvicorn

from digest.web.server import base_url_warning
from tests.conftest import FeedServer, free_port, rss, run_cli


@pytest.mark.parametrize(
    ("base_url", "host", "warned"),
    [
        ("https://digest.example.org", "127.0.0.1", "an example domain"),
        ("https://example.com/news", "127.0.0.1", "an example domain"),
        ("https://news.EXAMPLE.net.", "0.0.0.0", "an example domain"),
        ("https://digest.example", "127.0.0.1", "an example domain"),
        ("https://digest.test", "127.0.0.1", "an example domain"),
        ("http://localhost:8080", "0.0.0.0", "this machine's own name, while serving other"),
        ("http://127.0.0.1:8080", "192.0.2.10", "this machine's own name"),
        ("http://[::1]:8080", "::", "this machine's own name"),
        # Trying it on one's own machine: localhost is right there.
        ("http://localhost:8080", "127.0.0.1", ""),
        ("http://127.0.0.1:8080", "localhost", ""),
        # Real names, and names that only contain the words.
        ("https://news.example-media.com", "0.0.0.0", ""),
        ("https://digest.testing.org", "0.0.0.0", ""),
        ("https://examples.org", "0.0.0.0", ""),
        ("https://news.acme.org", "0.0.0.0", ""),
    ],
)
def test_a_base_url_no_reader_can_reach_is_named(base_url: str, host: str, warned: str) -> None:
    warning = base_url_warning(base_url, host)
    if not warned:
        assert warning == ""
        return
    assert warning.startswith(f"service.base_url is {base_url}, {warned}")
    assert warning.endswith(
        "set [service] base_url to the https address readers reach this server at"
    )


def _serve(config: Path, monkeypatch: pytest.MonkeyPatch, *args: str) -> tuple[int, str, str]:
    """`digest serve` as typed, up to the server's start (which returns at once here)."""
    started: list[uvicorn.Config] = []
    monkeypatch.setattr(uvicorn.Server, "run", lambda self, *a, **k: started.append(self.config))
    result = run_cli("--config", str(config), "serve", "--port", str(free_port()), *args)
    assert len(started) == 1, result
    return result


def test_serve_warns_at_start_of_the_demos_placeholder_address(
    write_config, feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config([("Wire", feed_server.add("/f.xml", rss([])))])
    text = config.read_text()
    config.write_text(text.replace("https://digest.test", "https://digest.example.org"))
    code, out, err = _serve(config, monkeypatch)
    assert code == 0 and "serving Test Desk" in out
    lines = [line for line in err.splitlines() if "base_url" in line]
    assert lines == [
        "warning: service.base_url is https://digest.example.org, an example domain, which no "
        "reader can reach: the confirmation, preferences and unsubscribe links mailed start "
        "with it; set [service] base_url to the https address readers reach this server at"
    ]

    config.write_text(text.replace("https://digest.test", "https://news.acme.org"))
    code, _, err = _serve(config, monkeypatch, "--host", "0.0.0.0")
    assert code == 0 and "base_url" not in err
