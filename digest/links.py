"""Personal links: opaque signed tokens that name a subscriber and cannot be forged.

The token carries only the subscriber's random ``public_id`` (never the address), signed with
HMAC-SHA256 by itsdangerous under a per-purpose salt, so an unsubscribe token cannot be
replayed as a preferences token; verification is constant-time.

Tokens are signed with the current secret only; reading accepts it or any earlier secret
the admin still lists (``Keys``), so rotating the secret does not break links already mailed.
"""

from __future__ import annotations

import base64
import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, Literal

from itsdangerous import BadSignature, TimestampSigner, URLSafeSerializer, URLSafeTimedSerializer

from digest.records import Recipient

Purpose = Literal["unsubscribe", "preferences", "csrf", "bounce"]
CONFIRM_MAX_AGE = 2 * 24 * 3600  # a confirmation link works for two days
# What a token is read with: the current secret, or it and then earlier ones still accepted.
Keys = str | Sequence[str]


def _keys(secret: Keys) -> list[str]:
    """The secrets as itsdangerous takes them: oldest first, so it signs with the last."""
    return [secret] if isinstance(secret, str) else list(reversed(secret))


# A public_id whose JSON form is itself in quotes (``secrets.token_urlsafe``'s alphabet):
# its token is made directly, never compressed.
_PLAIN_ID = re.compile(r"[A-Za-z0-9_-]{1,40}")


def make_token(secret: str, purpose: Purpose, public_id: str) -> str:
    """The token for one subscriber and one purpose.

    The string itsdangerous's ``URLSafeSerializer(secret, salt).dumps(public_id)`` makes
    for every public_id digest makes (random ``token_urlsafe``, which never compresses); a
    repetitive one itsdangerous would have compressed comes out uncompressed, and
    ``read_token`` reads both forms. A send makes two or three tokens a message: through
    itsdangerous (a serializer built, the JSON compressed on trial, the key derived each
    time, 15 us) that was a sixth of a send's CPU; here the key is derived once per secret
    and purpose (2.6 us)."""
    if not _PLAIN_ID.fullmatch(public_id):
        return URLSafeSerializer(secret, salt=f"digest.{purpose}").dumps(public_id)
    payload = base64.urlsafe_b64encode(b'"' + public_id.encode("ascii") + b'"').rstrip(b"=")
    mac = hmac.digest(_signing_key(secret, purpose), payload, "sha1")
    return (payload + b"." + base64.urlsafe_b64encode(mac).rstrip(b"=")).decode("ascii")


@lru_cache(maxsize=64)
def _signing_key(secret: str, purpose: Purpose) -> bytes:
    """itsdangerous's key for the secret and the purpose's salt (its own derivation)."""
    return URLSafeSerializer(secret, salt=f"digest.{purpose}").make_signer().derive_key()


def read_token(secret: Keys, purpose: Purpose, token: str) -> str | None:
    """The ``public_id`` inside a genuine token, or None for a forged or mangled one."""
    try:
        value = URLSafeSerializer(_keys(secret), salt=f"digest.{purpose}").loads(token)
    except BadSignature:
        return None
    return value if isinstance(value, str) else None


def verp_address(secret: str, domain: str, public_id: str) -> str:
    """``bounce+TOKEN@domain``: the envelope sender that names the subscriber a bounce is for."""
    return f"bounce+{make_token(secret, 'bounce', public_id)}@{domain}"


def read_verp(secret: Keys, address: str) -> str | None:
    """The ``public_id`` in a genuine VERP address, else None."""
    local = address.strip().strip("<>").partition("@")[0]
    if not local.startswith("bounce+"):
        return None
    return read_token(secret, "bounce", local.removeprefix("bounce+"))


def personal_links(
    secret: str,
    base_url: str,
    mailto: str,
    subscriber_id: int,
    public_id: str,
    email: str,
    name: str | None,
    verp_domain: str | None = None,
) -> Recipient:
    """The recipient record with their unsubscribe (https and mailto) and preferences links,
    and, with ``verp_domain``, their own envelope sender for bounces."""
    unsubscribe = make_token(secret, "unsubscribe", public_id)
    return Recipient(
        bounce_address=verp_address(secret, verp_domain, public_id) if verp_domain else None,
        subscriber_id=subscriber_id,
        email=email,
        name=name,
        unsubscribe_url=f"{base_url}/unsubscribe/{unsubscribe}",
        unsubscribe_mailto=f"mailto:{mailto}?subject=unsubscribe%20{unsubscribe}",
        preferences_url=f"{base_url}/preferences/{make_token(secret, 'preferences', public_id)}",
    )


@dataclass(frozen=True)
class Confirmation:
    """What a genuine confirmation link says."""

    public_id: str
    requested_at: datetime  # when the link was made (to the second)
    topics: tuple[str, ...] | None  # chosen on the sign-up form; None: a link without them


def _dated(now: datetime | None) -> dict[str, Any]:
    """itsdangerous dates and ages tokens by ``time.time()``; with ``now`` (the app's clock)
    by that instead, so a link's date compares with what the store stamped."""
    if now is None:
        return {}
    stamp = int(now.timestamp())

    class _At(TimestampSigner):
        def get_timestamp(self) -> int:
            return stamp

    return {"signer": _At}


def make_confirm_token(
    secret: str, public_id: str, topics: Sequence[str] = (), now: datetime | None = None
) -> str:
    """A confirmation link's token: signed like the others, and dated (``now``, else the
    system clock), so it expires.

    It carries the topics chosen on the form, so someone signing up again gets the
    topics they chose this time, applied only when they confirm.
    """
    serializer = URLSafeTimedSerializer(secret, salt="digest.confirm", **_dated(now))
    return serializer.dumps([public_id, list(topics)])


def read_confirm_token(
    secret: Keys, token: str, max_age: int | None = CONFIRM_MAX_AGE, now: datetime | None = None
) -> Confirmation | None:
    """The confirmation in a genuine token unexpired at ``now`` (else the system clock's);
    with ``max_age`` None, whatever its age (what an expired link was for, so its reader
    can be offered a fresh one)."""
    serializer = URLSafeTimedSerializer(_keys(secret), salt="digest.confirm", **_dated(now))
    try:
        value, made = serializer.loads(token, max_age=max_age, return_timestamp=True)
    except BadSignature:  # also SignatureExpired, its subclass
        return None
    if isinstance(value, str):  # a link made before tokens carried topics
        return Confirmation(value, made, None)
    match value:
        case [str(public_id), list(topics)] if all(isinstance(t, str) for t in topics):
            return Confirmation(public_id, made, tuple(topics))
    return None
