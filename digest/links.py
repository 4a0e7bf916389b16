"""Personal links: opaque signed tokens that name a subscriber and cannot be forged.

The token carries only the subscriber's random ``public_id`` (never the address), signed with
HMAC-SHA256 by itsdangerous under a per-purpose salt, so an unsubscribe token cannot be
replayed as a preferences token; verification is constant-time.
"""

from __future__ import annotations

from typing import Literal

from itsdangerous import BadSignature, URLSafeSerializer

from digest.records import Recipient

Purpose = Literal["unsubscribe", "preferences"]


def make_token(secret: str, purpose: Purpose, public_id: str) -> str:
    """The token for one subscriber and one purpose."""
    return URLSafeSerializer(secret, salt=f"digest.{purpose}").dumps(public_id)


def read_token(secret: str, purpose: Purpose, token: str) -> str | None:
    """The ``public_id`` inside a genuine token, or None for a forged or mangled one."""
    try:
        value = URLSafeSerializer(secret, salt=f"digest.{purpose}").loads(token)
    except BadSignature:
        return None
    return value if isinstance(value, str) else None


def personal_links(
    secret: str,
    base_url: str,
    mailto: str,
    subscriber_id: int,
    public_id: str,
    email: str,
    name: str | None,
) -> Recipient:
    """The recipient record with their unsubscribe (https and mailto) and preferences links."""
    unsubscribe = make_token(secret, "unsubscribe", public_id)
    return Recipient(
        subscriber_id=subscriber_id,
        email=email,
        name=name,
        unsubscribe_url=f"{base_url}/unsubscribe/{unsubscribe}",
        unsubscribe_mailto=f"mailto:{mailto}?subject=unsubscribe%20{unsubscribe}",
        preferences_url=f"{base_url}/preferences/{make_token(secret, 'preferences', public_id)}",
    )
