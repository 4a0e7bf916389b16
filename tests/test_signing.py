"""Message identity: DKIM signatures a receiver can verify, and no header injection."""

from __future__ import annotations

import base64
from pathlib import Path

import dkim
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from digest.app import App
from digest.config import load_config
from tests.conftest import FeedServer, SmtpServer, rss, run_cli


def _config(write_config, feed_server: FeedServer, smtp_server: SmtpServer, extra: str) -> Path:
    url = feed_server.add(
        "/f.xml",
        rss([{"title": "Harbour strike ends", "guid": "1", "link": "https://wire.test/1"}]),
    )
    config = write_config([("Wire", url)], transport="smtp", smtp_port=smtp_server.port)
    config.write_text(config.read_text() + extra)
    return config


def test_every_message_carries_a_dkim_signature_that_verifies(
    write_config, feed_server: FeedServer, smtp_server: SmtpServer, tmp_path: Path
) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    (tmp_path / "dkim.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
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
    for address in ("ana@example.org", "bob@example.org"):
        assert run_cli("--config", str(config), "subscribers", "add", address)[0] == 0
    code, _, err = run_cli("--config", str(config), "send", "--gather")
    assert code == 0, err
    assert len(smtp_server.messages) == 2

    def dns(name: bytes, timeout: int = 5) -> bytes:
        assert name == b"s2026._domainkey.example.com."
        return dns_record

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


def test_a_line_break_in_a_name_fails_that_row_only(
    write_config, feed_server: FeedServer, smtp_server: SmtpServer
) -> None:
    config = _config(write_config, feed_server, smtp_server, "")
    app = App.open(load_config(config))
    try:
        app.store.add_subscriber("mallory@example.org", "Mal\r\nBcc: victim@example.org")
        app.store.add_subscriber("ana@example.org", "Ana")
    finally:
        app.close()
    code, out, err = run_cli("--config", str(config), "send", "--gather")
    assert code == 0
    assert "1 failed" in out and "1 sent" in out
    assert "mallory@example.org: failed: the To header would contain a line break" in err
    assert [m.recipients for m in smtp_server.messages] == [["ana@example.org"]]
    assert b"victim" not in smtp_server.messages[0].data
