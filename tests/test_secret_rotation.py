"""Rotating the signing secret: links already mailed keep working while the old secret is
listed in ``previous_secrets_env``; new links are signed with the new secret only; a link
signed with a secret nobody lists never works."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from digest.app import App
from digest.config import load_config
from digest.links import (
    make_confirm_token,
    make_token,
    read_confirm_token,
    read_token,
    read_verp,
    verp_address,
)
from digest.web import create_app
from tests.conftest import SECRET

NEW = "new-secret-9876543210-zyxwvutsrq"
UNKNOWN = "unknown-secret-0123456789-abcdef"


def test_a_token_signed_with_a_previous_secret_reads_and_new_ones_use_the_current() -> None:
    keys = (NEW, SECRET)  # current first, then the earlier ones
    old = make_token(SECRET, "unsubscribe", "pid-1")

    assert read_token(keys, "unsubscribe", old) == "pid-1"
    assert read_token(keys, "unsubscribe", make_token(UNKNOWN, "unsubscribe", "pid-1")) is None
    assert read_token(keys, "preferences", old) is None  # still bound to its purpose
    assert read_token(NEW, "unsubscribe", old) is None  # once the old secret is dropped
    fresh = make_token(NEW, "unsubscribe", "pid-1")
    assert read_token(NEW, "unsubscribe", fresh) == "pid-1"  # signed with the current one
    assert read_token(SECRET, "unsubscribe", fresh) is None
    assert read_verp(keys, verp_address(SECRET, "b.example.org", "pid-1")) == "pid-1"
    assert read_verp(keys, verp_address(UNKNOWN, "b.example.org", "pid-1")) is None
    confirm = make_confirm_token(SECRET, "pid-1", ["world"])
    found = read_confirm_token(keys, confirm)
    assert found is not None and found.public_id == "pid-1"
    assert read_confirm_token(keys, make_confirm_token(UNKNOWN, "pid-1")) is None


@pytest.mark.asyncio
@pytest.mark.parametrize(
    ("previous", "accepted"),
    [("", False), (SECRET, True), (f"{UNKNOWN} {SECRET}", True), (UNKNOWN, False),
     (f"{UNKNOWN},{SECRET}", True)],
    ids=["no previous", "the old one", "two, space", "another", "two, comma"],
)  # fmt: skip
async def test_after_rotation_a_link_already_mailed_still_opens_its_page(
    write_config: Callable[..., Path],
    monkeypatch: pytest.MonkeyPatch,
    previous: str,
    accepted: bool,
) -> None:
    config = load_config(write_config([("one", "https://one.example.com/feed")]))
    app = App.open(config)
    try:
        reader, _ = app.store.add_subscriber("ann@example.org")
        mailed = make_token(SECRET, "unsubscribe", reader.public_id)  # before the rotation
        monkeypatch.setenv("DIGEST_SECRET", NEW)
        monkeypatch.setenv("DIGEST_PREVIOUS_SECRETS", previous)
        transport = httpx.ASGITransport(app=create_app(app))
        async with httpx.AsyncClient(transport=transport, base_url="https://d.test") as c:
            page = await c.get(f"/unsubscribe/{mailed}")
            assert page.status_code == (200 if accepted else 404)
            fresh = make_token(NEW, "unsubscribe", reader.public_id)
            assert (await c.get(f"/unsubscribe/{fresh}")).status_code == 200
            left = await c.post(f"/unsubscribe/{mailed}", content=b"List-Unsubscribe=One-Click")
            assert left.status_code == (200 if accepted else 404)
        found = app.store.subscriber_by_email("ann@example.org")
        assert found is not None
        assert found.status == ("unsubscribed" if accepted else "active")
    finally:
        app.close()


def test_a_previous_secret_too_short_to_be_one_is_not_accepted(
    write_config: Callable[..., Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = load_config(write_config([("one", "https://one.example.com/feed")]))
    monkeypatch.setenv("DIGEST_PREVIOUS_SECRETS", f"short {UNKNOWN}")
    assert config.secrets() == (SECRET, UNKNOWN)


def test_a_token_is_itsdangerous_own_and_reads_back_whatever_the_public_id() -> None:
    """A send makes its tokens without itsdangerous's per-call machinery: for every id
    digest makes the string is itsdangerous's own (links already mailed, and any reader of
    them, see no change); an odd id still makes a token read_token reads back."""
    import secrets

    from itsdangerous import URLSafeSerializer

    for _ in range(300):
        public_id = secrets.token_urlsafe(12)
        for purpose in ("unsubscribe", "preferences", "bounce", "csrf"):
            expected = URLSafeSerializer(SECRET, salt=f"digest.{purpose}").dumps(public_id)
            assert make_token(SECRET, purpose, public_id) == expected
    for odd in ("a" * 60, "x", "é-ü", "with space", "a.b", "A-_z" * 10):
        token = make_token(SECRET, "unsubscribe", odd)
        assert read_token(SECRET, "unsubscribe", token) == odd
        assert read_token(SECRET, "preferences", token) is None
        assert read_token(UNKNOWN, "unsubscribe", token) is None
