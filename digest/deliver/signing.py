"""DKIM: sign each message's bytes (dkimpy), covering the headers receivers check most.

Signing is per message (its To, Message-ID and unsubscribe link differ), after the
personal bytes are spliced; RFC 8058 asks that both List-Unsubscribe headers be signed.
Each header is signed one time more than it appears (RFC 6376 8.15): a Subject or a
List-Unsubscribe that someone adds above ours breaks the signature.

Both header and body are canonicalised ``relaxed`` (c=relaxed/relaxed): a relay that
refolds a header or changes whitespace at a line's end (common in list software and
gateways) does not break the signature, as it does under ``simple``.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import dkim
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import load_pem_private_key

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

CANONICALIZE = (b"relaxed", b"relaxed")
# RFC 8301 3.2: signers SHOULD use RSA keys of at least 2048 bits (1024 is the floor).
STRONG_KEY_BITS = 2048


def make_signer(config: Config) -> Callable[[bytes], bytes] | None:
    """A function that prepends a DKIM-Signature, or None when DKIM is not configured."""
    settings = config.delivery.dkim
    if not settings.enabled:
        return None
    key = private_key(config)
    domain, selector = str(settings.domain).encode(), str(settings.selector).encode()

    def sign(message: bytes) -> bytes:
        header = dkim.sign(
            message,
            selector,
            domain,
            key,
            canonicalize=CANONICALIZE,
            include_headers=_OVERSIGNED,
            linesep=b"\r\n",
        )
        return header + message

    try:  # a bad key fails now, not on the first message
        sign(b"From: a@example.org\r\nSubject: key check\r\n\r\nbody\r\n")
    except dkim.DKIMException as exc:
        raise DigestError(
            f"the DKIM key cannot sign: {exc}",
            "give delivery.dkim an RSA private key in PEM (PKCS#1 or PKCS#8), 2048 bits",
        ) from exc
    return sign


def key_bits(key: bytes) -> int | None:
    """The size in bits of an RSA private key in PEM, or None when it is not one that
    cryptography reads (make_signer says what is wrong with such a key)."""
    try:
        loaded = load_pem_private_key(key, password=None)
    except (ValueError, TypeError):
        return None
    return loaded.key_size if isinstance(loaded, rsa.RSAPrivateKey) else None


def private_key(config: Config) -> bytes:
    """The PEM private key [delivery.dkim] names, from its file or environment variable."""
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
            ) from exc
    raise DigestError(
        "delivery.dkim has no key", "set private_key_file or private_key_env under [delivery.dkim]"
    )
