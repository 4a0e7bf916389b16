"""/metrics read by Prometheus's own parser, its figures matching the database after a send;
served to this machine, or to whoever holds the token, and to nobody else."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlmodel import Session, func, select

from digest.app import run
from digest.pipeline import run_digest
from digest.store import Delivery
from tests.admin_site import Console, console_config
from tests.conftest import FeedServer, SmtpServer, run_cli


@pytest.fixture
def site(console: Console) -> Console:
    return console


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_match_the_database_after_a_send(site: Console, smtp_server: SmtpServer) -> None:
    store = site.app.store
    for address in ("a@example.org", "b@example.org", "bounce@example.org", "later@example.org"):
        store.add_subscriber(address)
    report = run(run_digest(site.app))
    assert report.delivery is not None and report.delivery.counts.get("sent") == 2
    with Session(site.app.engine) as s:
        by_state = dict(
            s.exec(select(Delivery.status, func.count()).group_by(Delivery.status)).all()
        )
        last_sent = s.exec(select(func.max(Delivery.sent_at))).one()
    assert last_sent is not None
    with site.client() as client:
        response = client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain; version=")
    samples = _samples(response.text)
    for state in ("sent", "failed", "deferred", "pending"):
        assert samples[("digest_messages_total", (("outcome", state),))] == by_state.get(state, 0)
    assert by_state["sent"] == 2 and by_state["failed"] == 1 and by_state["deferred"] == 1
    assert samples[("digest_queue_depth", ())] == 1  # the deferred one waits
    assert samples[("digest_oldest_queued_age_seconds", ())] >= 0
    assert samples[("digest_last_edition_sent_timestamp_seconds", (("digest", "daily"),))] == (
        pytest.approx(last_sent.timestamp())
    )
    assert samples[("digest_subscribers", (("status", "active"),))] == 3
    assert samples[("digest_subscribers", (("status", "bounced"),))] == 1
    assert samples[("digest_sources", (("health", "ok"),))] == 2


def test_metrics_need_the_token_when_one_is_set(
    site: Console, monkeypatch: pytest.MonkeyPatch
) -> None:
    with site.client() as client:
        # From this machine, no token configured: served.
        assert client.get("/metrics").status_code == 200
        # From elsewhere (through the trusted proxy on 127.0.0.1): refused.
        far = client.get("/metrics", headers={"X-Forwarded-For": "203.0.113.9"})
        assert far.status_code == 403 and "DIGEST_METRICS_TOKEN" in far.text
        monkeypatch.setenv("DIGEST_METRICS_TOKEN", "scrape-token-0123456789")
        assert client.get("/metrics").status_code == 401
        wrong = {"Authorization": "Bearer nope"}
        assert client.get("/metrics", headers=wrong).status_code == 401
        good = {"Authorization": "Bearer scrape-token-0123456789", "X-Forwarded-For": "203.0.113.9"}
        assert client.get("/metrics", headers=good).status_code == 200


def test_admins_are_added_listed_and_removed_from_the_cli(
    write_config: Callable[..., Path], feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    import io
    import sys

    config = str(console_config(write_config, feed_server, 25))

    def add(email: str, password: str) -> tuple[int, str, str]:
        monkeypatch.setattr(sys, "stdin", io.StringIO(password + "\n"))
        return run_cli("--config", config, "admins", "add", email, "--password-stdin")

    code, out, _ = add("Chief@Example.org", "a long enough password")
    assert code == 0 and "added admin chief@example.org" in out
    code, _, err = add("other@example.org", "short")
    assert code == 2 and "at least 12" in err
    code, _, err = add("chief@example.org", "another long password")
    assert code != 0 and "is an admin already" in err
    code, out, _ = run_cli("--config", config, "admins", "list")
    assert code == 0 and "chief@example.org" in out and "1 admin" in out
    code, out, _ = run_cli("--config", config, "admins", "remove", "chief@example.org")
    assert code == 0 and "removed" in out
    code, _, err = run_cli("--config", config, "admins", "remove", "chief@example.org")
    assert code != 0 and "is not an admin" in err
