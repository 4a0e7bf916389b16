"""The embedded default: `digest demo` fills a Maildir that a real mail client opens."""

from __future__ import annotations

import email
import email.policy
import json
import mailbox
import math
import re
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import run_cli


@pytest.fixture
def demo_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("DIGEST_SECRET", raising=False)
    folder = tmp_path / "demo"
    code, out, err = run_cli("demo", "--dir", str(folder))
    assert code == 0, err
    assert f"The digest landed in the Maildir {folder / 'mail'}" in out
    assert "Storm Isolde" in out  # the digest itself is shown
    return folder


def _messages(folder: Path) -> list[email.message.EmailMessage]:
    box = mailbox.Maildir(str(folder / "mail"), create=False)
    return [
        email.message_from_bytes(box.get_bytes(key), policy=email.policy.default)
        for key in box.iterkeys()
    ]


def test_demo_delivers_one_digest_per_sample_subscriber(demo_dir: Path) -> None:
    messages = _messages(demo_dir)
    assert sorted(m["To"] for m in messages) == [
        "Ada <ada@example.org>",
        "Grace <grace@example.org>",
        "Linus <linus@example.net>",
    ]
    for message in messages:
        # The lead headline cut at a word within 60 characters; no date (the inbox shows it).
        assert message["Subject"] == "Morning Briefing: Storm Isolde makes landfall, leaving…"
        html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
        text = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        # The story three outlets carry leads, with its other sources listed.
        assert "Storm Isolde" in message["Subject"]
        assert "3 sources" in text
        # The sample feed's hostile summary is defused.
        assert "onerror" not in html and "<script" not in html and "evil.example" not in html
        assert "https://metrogazette.example/isolde-coast-power" in text
    assert (demo_dir / "preview" / "digest.html").is_file()
    assert (demo_dir / ".secret").stat().st_mode & 0o777 == 0o600


def test_the_demo_shows_its_stories_pictures_offline(demo_dir: Path) -> None:
    """The quick start shows the layout with pictures: the sample feeds give most stories
    one (in their shapes: 2:1, 16:9, 4:3, square), the browser preview shows the demo's own
    drawings from its folder, and the emails carry the made-up outlets' addresses, sized."""
    preview = demo_dir / "preview" / "digest.html"
    shown = re.findall(r'<img\b[^>]*\bsrc="([^"]+)"', preview.read_text(encoding="utf-8"))
    assert len(shown) >= 6
    for src in shown:
        assert src.startswith("pictures/") and src.endswith(".svg"), src
        drawing = (preview.parent / src).read_text(encoding="utf-8")
        assert drawing.startswith("<svg") and 'role="img"' in drawing
    html = _messages(demo_dir)[0].get_body(("html",)).get_content()  # type: ignore[union-attr]
    images = re.findall(r"<img\b[^>]*>", html)
    assert len(images) == len(shown)
    assert all('src="https://' in image for image in images)
    # The lead's picture is 2:1 in its feed (1200x600): so in the email, not a 16:9 box.
    assert 'src="https://harbourwire.example/pictures/storm-isolde-landfall.svg"' in images[0]
    assert 'width="584" height="292"' in images[0]
    assert 'alt="Waves over the harbour wall at Port Calder at dawn"' in images[0]


def test_running_the_demo_again_sends_nothing_twice(demo_dir: Path) -> None:
    code, out, _ = run_cli("demo", "--dir", str(demo_dir))
    assert code == 0
    assert "nothing to send" in out
    assert len(_messages(demo_dir)) == 3


@pytest.mark.skipif(
    not (shutil.which("neomutt") and shutil.which("tmux")),
    reason="neomutt and tmux are installed by scripts/test",
)
@pytest.mark.slow
def test_a_real_mail_client_shows_the_digest(demo_dir: Path, tmp_path: Path) -> None:
    mail = demo_dir / "mail"
    session = f"digest-test-{time.monotonic_ns()}"
    command = (
        f"neomutt -n -F /dev/null -e 'set folder={mail} spoolfile={mail} "
        f"mbox_type=Maildir sort=date' -e 'ignore *' -e 'unignore from subject' -f {mail}"
    )
    env_home = tmp_path / "home"
    env_home.mkdir()
    subprocess.run(
        [
            "tmux",
            "new-session",
            "-d",
            "-s",
            session,
            "-x",
            "160",
            "-y",
            "50",
            f"HOME={env_home} TERM=xterm-256color {command}",
        ],
        check=True,
    )
    try:
        index = _wait_for_screen(session, "Morning Briefing")
        assert index.count("Morning Briefing") >= 3, index  # one line per message
        subprocess.run(["tmux", "send-keys", "-t", session, "Enter"], check=True)
        body = _wait_for_screen(session, "BREAKING")
        assert "Storm Isolde" in body and "3 sources" in body
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], check=False)


def _wait_for_screen(session: str, needle: str, timeout: float = 15.0) -> str:
    deadline = time.monotonic() + timeout
    screen = ""
    while time.monotonic() < deadline:
        screen = subprocess.run(
            ["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True
        ).stdout
        if needle in screen:
            return screen
        time.sleep(0.2)
    raise AssertionError(f"{needle!r} never appeared on the screen:\n{screen}")


def test_explain_after_the_demo_prints_no_negative_zero(demo_dir: Path) -> None:
    """After the demo's edition went out, its stories' rerun votes change nothing: explain
    says 0.00, not the "-0.00" float rounding left (a difference of vote sums)."""
    code, out, err = run_cli("--config", str(demo_dir / "digest.toml"), "explain", "--json")
    assert code == 0, err
    for story in json.loads(out)["stories"]:
        for name, signal in story["signals"].items():
            for number in (signal["value"], signal["adds"]):
                assert number != 0 or math.copysign(1.0, number) > 0, (name, story["headline"])
