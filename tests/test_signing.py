"""Message identity: DKIM signatures a receiver can verify, and no header injection."""

from __future__ import annotations

import base64
import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from digest.app import App
from digest.config import load_config
from digest.deliver.signing import make_signer
from digest.errors import DigestError
from digest.render.headers import make_message_id
from digest.store import Delivery, Subscriber
from digest.web.mailer import send_confirmation
from tests.conftest import FeedServer, SmtpServer, config_text, rss, run_cli
from tests.test_render import _personalised, _template, recipient

# <digest.EDITION.DELIVERY.RANDOM@domain>: 16 random bytes, URL-safe base64.
MESSAGE_ID = re.compile(r"<digest\.(\d+)\.(\d+)\.([A-Za-z0-9_-]{22})@example\.com>")


def _config(write_config, feed_server: FeedServer, smtp_server: SmtpServer, extra: str) -> Path:
    url = feed_server.add(
        "/f.xml",
        rss([{"title": "Harbour strike ends", "guid": "1", "link": "https://wire.test/1"}]),
    )
    config = write_config([("Wire", url)], transport="smtp", smtp_port=smtp_server.port)
    config.write_text(config.read_text() + extra)
    return config


Dns = Callable[..., bytes]


def _new_key(tmp_path: Path, bits: int = 2048) -> rsa.RSAPrivateKey:
    """A new RSA key, written to dkim.pem in ``tmp_path``."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    (tmp_path / "dkim.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return key


def _signing(
    write_config, feed_server: FeedServer, smtp_server: SmtpServer, tmp_path: Path
) -> tuple[Path, Dns]:
    """A config that signs with a new RSA key, and the DNS lookup that publishes it."""
    key = _new_key(tmp_path)
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    dns_record = b"v=DKIM1; k=rsa; p=" + base64.b64encode(public)
    config = _config(
        write_config,
        feed_server,
        smtp_server,
        """
[delivery.dkim]
domain = "example.com"
selector = "s2026"
private_key_file = "dkim.pem"
""",
    )

    def dns(name: bytes, timeout: int = 5) -> bytes:
        assert name == b"s2026._domainkey.example.com."
        return dns_record

    return config, dns


def test_every_message_carries_a_dkim_signature_that_verifies(
    write_config, feed_server: FeedServer, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    config, dns = _signing(write_config, feed_server, smtp_server, tmp_path)
    for address in ("ana@example.org", "bob@example.org"):
        assert run_cli("--config", str(config), "subscribers", "add", address)[0] == 0
    code, _, err = run_cli("--config", str(config), "send", "--gather")
    assert code == 0, err
    assert len(smtp_server.messages) == 2

    for received in smtp_server.messages:
        assert received.data.startswith(b"DKIM-Signature:")
        assert dkim.verify(received.data, dnsfunc=dns)
        signature = received.message()["DKIM-Signature"]
        signed = {h.strip().lower() for h in signature.split("h=")[1].split(";")[0].split(":")}
        assert {"list-unsubscribe", "list-unsubscribe-post", "from", "to"} <= signed
        # A receiver spots any change to a signed header.
        assert not dkim.verify(
            received.data.replace(b"Subject: Daily", b"Subject: Dialy"), dnsfunc=dns
        )
        # Nor does it survive a Subject or unsubscribe link put above ours, where clients
        # read them (each header is signed once more than it appears).
        forged = b"Subject: Your account is locked\r\nList-Unsubscribe: <https://evil.test/>\r\n"
        assert not dkim.verify(forged + received.data, dnsfunc=dns)


def test_the_signature_survives_a_relay_that_changes_whitespace(
    write_config, feed_server: FeedServer, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    """c=relaxed/relaxed: a gateway that pads a header or a body line's end with spaces
    leaves the signature valid (under simple, the default body canonicalisation, it broke)."""
    config, dns = _signing(write_config, feed_server, smtp_server, tmp_path)
    assert run_cli("--config", str(config), "subscribers", "add", "ana@example.org")[0] == 0
    assert run_cli("--config", str(config), "send", "--gather")[0] == 0
    [received] = smtp_server.messages
    signature = received.message()["DKIM-Signature"]
    assert "c=relaxed/relaxed;" in "".join(signature.split())
    assert dkim.verify(received.data, dnsfunc=dns)

    head, _, body = received.data.partition(b"\r\n\r\n")
    relayed = head.replace(b"\r\nSubject: ", b"\r\nSubject:   ") + b"\r\n\r\n"
    relayed += body.replace(b"\r\n", b"  \r\n")  # trailing spaces on every body line
    assert relayed != received.data
    assert dkim.verify(relayed, dnsfunc=dns)


def _check(write_config, tmp_path: Path, sender: str, domain: str, bits: int = 2048) -> str:
    """What `digest check` warns about a config that signs as ``domain`` From ``sender``."""
    _new_key(tmp_path, bits)
    config = write_config([("Wire", "https://wire.test/f.xml")])
    text = config.read_text().replace("news@example.com", sender)
    config.write_text(
        text
        + f'\n[delivery.dkim]\ndomain = "{domain}"\nselector = "s1"\n'
        + 'private_key_file = "dkim.pem"\n'
    )
    code, out, err = run_cli("--config", str(config), "check")
    assert code == 0 and ": ok" in out, err
    return err


# (From address, DKIM d=, aligned?) under DMARC's relaxed alignment: one registrable domain.
ALIGNMENT = [
    ("news@mail.example.org", "example.org", True),
    ("news@example.org", "mail.example.org", True),
    ("news@example.org", "EXAMPLE.org", True),
    ("news@a.example.co.uk", "b.example.co.uk", True),
    ("news@example.org", "other.net", False),
    ("news@example.org", "example.net", False),
    # Two organisations under one public suffix: co.uk is not a registrable domain.
    ("news@one.co.uk", "two.co.uk", False),
]


@pytest.mark.parametrize(("sender", "domain", "aligned"), ALIGNMENT)
def test_check_warns_when_the_dkim_domain_does_not_align_with_from(
    write_config, tmp_path: Path, sender: str, domain: str, aligned: bool
) -> None:
    err = _check(write_config, tmp_path, sender, domain)
    if aligned:
        assert "warning" not in err, err
        return
    assert err.count("warning: ") == 1, err
    assert "delivery.dkim.domain: " in err
    assert f"d={domain} does not align with the From domain {sender.split('@')[1]}" in err
    assert "DMARC" in err and "sign as " in err


@pytest.mark.parametrize(("bits", "weak"), [(1024, True), (2048, False), (3072, False)])
def test_check_warns_about_a_dkim_key_under_2048_bits(
    write_config, tmp_path: Path, bits: int, weak: bool
) -> None:
    err = _check(write_config, tmp_path, "news@example.com", "example.com", bits)
    if not weak:
        assert "warning" not in err, err
        return
    assert err.count("warning: ") == 1, err
    assert "delivery.dkim.private_key_file: the DKIM key is 1024 bits" in err
    assert "openssl genrsa" in err


def test_two_databases_never_give_their_first_message_one_message_id(
    secret: str, feed_server: FeedServer, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    """A staging database numbers its first edition and delivery as production's does:
    the Message-ID still differs (else Gmail hides the second as a repeat), and it is
    the one stored on the delivery row, which bounces are matched against."""
    url = feed_server.add("/f.xml", rss([{"title": "Harbour strike ends", "guid": "1"}]))
    sent: list[str] = []
    for name in ("production", "staging"):
        (tmp_path / name).mkdir()
        config = tmp_path / name / "digest.toml"
        config.write_text(
            config_text([("Wire", url)], transport="smtp", smtp_port=smtp_server.port)
        )
        assert run_cli("--config", str(config), "subscribers", "add", "ana@example.org")[0] == 0
        assert run_cli("--config", str(config), "send", "--gather")[0] == 0
        message_id = smtp_server.messages[-1].message()["Message-ID"]
        [(delivery, _)] = _rows(config)  # each database's first edition and delivery
        assert delivery.message_id == message_id
        sent.append(message_id)

    first, second = (MESSAGE_ID.fullmatch(m) for m in sent)
    assert first and second, sent
    assert first.group(1, 2) == second.group(1, 2) == ("1", "1")  # the readable part
    assert first.group(3) != second.group(3)


def test_a_deferred_delivery_is_sent_again_under_its_first_message_id(
    write_config, feed_server: FeedServer, smtp_server: SmtpServer
) -> None:
    """The id stored on the row at the 451 is the one the reader gets at the retry, so a
    report quoting either matches the row."""
    config = _config(write_config, feed_server, smtp_server, "")
    assert run_cli("--config", str(config), "subscribers", "add", "later@example.org")[0] == 0
    assert run_cli("--config", str(config), "send", "--gather")[0] == 0
    assert smtp_server.messages == []
    [(deferred, _)] = _rows(config)
    assert deferred.status == "deferred" and deferred.message_id

    smtp_server.handler.defer_later = False
    code, _, err = run_cli("--config", str(config), "retry", "1")
    assert code == 0, err
    [received] = smtp_server.messages
    assert received.message()["Message-ID"] == deferred.message_id
    [(sent, _)] = _rows(config)
    assert sent.status == "sent" and sent.message_id == deferred.message_id


def _rows(config: Path) -> list[tuple[Delivery, Subscriber]]:
    app = App.open(load_config(config))
    try:
        return app.store.deliveries(1)
    finally:
        app.close()


def test_message_ids_are_not_sequential_and_each_delivery_keeps_its_own() -> None:
    """Knowing one's own Message-ID tells nothing of the next recipient's (a forged bounce
    that quotes it could otherwise get that subscriber suppressed); a delivery sent again
    (after a crash) has the same id, so a client shows one copy."""
    template = _template()
    ana, bob = recipient("Ana"), replace(recipient("Bob"), unsubscribe_url="https://u.test/b")
    ids = [template.personalise(ana, n)[0] for n in range(1, 51)]
    found = [MESSAGE_ID.fullmatch(i) for i in ids]
    assert all(found), ids
    assert len({m.group(3) for m in found if m}) == 50
    assert [int(m.group(2)) for m in found if m] == list(range(1, 51))  # still readable
    assert template.personalise(ana, 7)[0] == ids[6] == template.message_id(ana, 7)
    assert template.personalise(bob, 7)[0] != ids[6]


# As written, not as the email package reads it back (it turns GMT into +0000).
DATE = re.compile(rb"\r\nDate: \w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d \+0000\r\n")


def test_the_date_header_is_utc_with_a_numeric_zone() -> None:
    """RFC 5322 3.3: ``+0000``; ``GMT`` is the obsolete zone name."""
    _, data = _personalised()
    assert DATE.search(data), data[:300]


async def test_the_confirmation_email_is_signed_too(
    write_config, feed_server: FeedServer, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    config, dns = _signing(write_config, feed_server, smtp_server, tmp_path)
    app = App.open(load_config(config))
    try:
        await send_confirmation(app, "new@example.org", "https://digest.test/confirm/t")
    finally:
        app.close()
    [received] = smtp_server.messages
    assert b"/confirm/t" in received.data and dkim.verify(received.data, dnsfunc=dns)
    assert DATE.search(received.data)
    message = received.message()
    assert re.fullmatch(r"<digest\.confirm\.[A-Za-z0-9_-]{22}@example\.com>", message["Message-ID"])


def test_a_key_that_cannot_sign_is_refused_with_what_works(
    write_config, feed_server: FeedServer, tmp_path: Path
) -> None:
    (tmp_path / "dkim.pem").write_bytes(
        ed25519.Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    config = write_config([("Wire", feed_server.add("/f.xml", rss([])))])
    config.write_text(
        config.read_text()
        + '\n[delivery.dkim]\ndomain = "example.com"\nselector = "s1"\n'
        + 'private_key_file = "dkim.pem"\n'
    )
    with pytest.raises(DigestError) as refused:
        make_signer(load_config(config))
    assert "RSA private key in PEM" in refused.value.hint


def test_a_line_break_in_a_stored_name_is_left_out_not_injected(
    write_config, feed_server: FeedServer, smtp_server: SmtpServer
) -> None:
    # A name stored before the door refused control characters: the reader gets the
    # digest without the name (#14 point 11), and no header is ever injected.
    config = _config(write_config, feed_server, smtp_server, "")
    app = App.open(load_config(config))
    try:
        app.store.add_subscriber("mallory@example.org", "Mal\r\nBcc: victim@example.org")
        app.store.add_subscriber("ana@example.org", "Ana")
    finally:
        app.close()
    code, out, _ = run_cli("--config", str(config), "send", "--gather")
    assert code == 0
    assert "2 sent" in out
    assert sorted(m.recipients[0] for m in smtp_server.messages) == [
        "ana@example.org",
        "mallory@example.org",
    ]
    assert all(b"victim" not in m.data for m in smtp_server.messages)


def test_a_message_id_hashes_the_delivery_the_editions_key_and_the_unsubscribe_link() -> None:
    """The id's UNIQUE part is the hash of ``readable \\n [edition key \\n] unsubscribe
    link``: an edition built before editions had a key keeps the ids it had."""
    ana = recipient("Ana")
    keyless = _template()
    keyed = replace(keyless, message_key="k3y")
    readable = f"{keyless.message_id_prefix}.7"
    assert keyless.message_id(ana, 7) == make_message_id(
        readable, keyless.domain, f"{readable}\n{ana.unsubscribe_url}"
    )
    assert keyed.message_id(ana, 7) == make_message_id(
        readable, keyless.domain, f"{readable}\nk3y\n{ana.unsubscribe_url}"
    )
