"""DKIM: sign each message's bytes (dkimpy), covering the headers receivers check most.

Signing is per message (its To, Message-ID and unsubscribe link differ), after the
personal bytes are spliced; RFC 8058 asks that both List-Unsubscribe headers be signed.
Each header is signed one time more than it appears (RFC 6376 8.15): a Subject or a
List-Unsubscribe that someone adds above ours breaks the signature.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import dkim

from digest.config import Config
from digest.errors import DigestError

SIGNED_HEADERS = [
    b"from",
    b"to",
    b"subject",
    b"date",
    b"message-id",
    b"reply-to",
    b"mime-version",
    b"content-type",
    b"list-id",
    b"list-unsubscribe",
    b"list-unsubscribe-post",
    b"feedback-id",
]


# Listed twice: the second names the absence of another copy (each appears once at most).
_OVERSIGNED = SIGNED_HEADERS + SIGNED_HEADERS


def make_signer(config: Config) -> Callable[[bytes], bytes] | None:
    """A function that prepends a DKIM-Signature, or None when DKIM is not configured."""
    settings = config.delivery.dkim
    if not settings.enabled:
        return None
    key = _private_key(config)
    domain, selector = str(settings.domain).encode(), str(settings.selector).encode()

    def sign(message: bytes) -> bytes:
        header = dkim.sign(
            message, selector, domain, key, include_headers=_OVERSIGNED, linesep=b"\r\n"
        )
        return header + message

    try:  # a bad key fails now, not on the first message
        sign(b"From: a@example.org\r\nSubject: key check\r\n\r\nbody\r\n")
    except dkim.DKIMException as exc:
        raise DigestError(
            f"the DKIM key cannot sign: {exc}",
            "give delivery.dkim an RSA private key in PEM (PKCS#1 or PKCS#8), 2048 bits",
        ) from None
    return sign


def _private_key(config: Config) -> bytes:
    settings = config.delivery.dkim
    if settings.private_key_env:
        value = os.environ.get(settings.private_key_env)
        if not value:
            raise DigestError(
                f"the DKIM key variable ${settings.private_key_env} is not set",
                "export it in the service's environment, or use private_key_file",
            )
        return value.encode()
    if settings.private_key_file:
        path = config.resolve_path(settings.private_key_file)
        try:
            return path.read_bytes()
        except OSError as exc:
            raise DigestError(
                f"cannot read the DKIM key {path}: {exc.strerror}",
                "check delivery.dkim.private_key_file",
            ) from None
    raise DigestError(
        "delivery.dkim has no key", "set private_key_file or private_key_env under [delivery.dkim]"
    )
