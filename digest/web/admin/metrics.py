"""``/metrics``: the service's figures in Prometheus text format, read from the database at
each scrape (a custom collector: digest's state lives in its tables, and the daemon, the
CLI and the web app are separate processes, so no in-process counter would see it all).

Served when the request carries ``Authorization: Bearer TOKEN`` (the value of the variable
``admin.metrics_token_env`` names), or, with no token configured, only to this machine.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
from collections.abc import Awaitable, Callable, Iterator

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from digest.app import App
from digest.reports import next_runs
from digest.sources.health import SourceCondition
from digest.states import QUEUED_DELIVERY_STATES
from digest.store.tables import DELIVERY_STATES
from digest.web.admin.reports import source_lines


class DigestCollector(Collector):
    """Every figure, from one pass over the database."""

    def __init__(self, app: App) -> None:
        self.app = app

    def collect(self) -> Iterator[Metric]:
        yield from self._deliveries()
        yield from self._sources()
        yield from self._jobs()
        people = GaugeMetricFamily("digest_subscribers", "Subscribers by status", labels=["status"])
        for status, count in sorted(self.app.store.subscriber_counts().items()):
            people.add_metric([status], count)
        yield people

    def _deliveries(self) -> Iterator[Metric]:
        """The outbox: rows by outcome, the queue, its oldest row, each digest's last send."""
        store, now = self.app.store, self.app.clock.now()
        totals = store.delivery_totals()
        messages = CounterMetricFamily(
            "digest_messages",
            "Delivery rows by outcome, over every edition stored (rate() of sent is the send rate)",
            labels=["outcome"],
        )
        for state in DELIVERY_STATES:
            messages.add_metric([state], totals.get(state, 0))
        yield messages
        queue = GaugeMetricFamily(
            "digest_queue_depth",
            "Delivery rows still waiting to go (pending, sending, deferred, paused)",
        )
        queue.add_metric([], sum(totals.get(s, 0) for s in QUEUED_DELIVERY_STATES))
        yield queue
        oldest = store.oldest_queued()
        age = GaugeMetricFamily(
            "digest_oldest_queued_age_seconds",
            "Age of the longest-waiting unsent delivery row (0: none)",
        )
        age.add_metric([], (now - oldest).total_seconds() if oldest else 0.0)
        yield age
        last = GaugeMetricFamily(
            "digest_last_edition_sent_timestamp_seconds",
            "When each digest last sent a message (Unix time)",
            labels=["digest"],
        )
        sent = store.last_sent_by_digest()
        for digest in self.app.config.digests:
            if digest.id in sent:
                last.add_metric([digest.id], sent[digest.id].timestamp())
        yield last
        missed = GaugeMetricFamily(
            "digest_slot_missed",
            "1 when the digest's latest slot passed over five minutes ago with no edition "
            "(its send failed before building one), as `digest status` says MISSED",
            labels=["digest"],
        )
        for run in next_runs(self.app, now):
            missed.add_metric([run.digest_id], 1.0 if run.missed else 0.0)
        yield missed

    def _sources(self) -> Iterator[Metric]:
        """The sources' health and failures in a row."""
        health = GaugeMetricFamily(
            "digest_sources",
            "Sources by health, as `digest sources` says it (ok, failing, waiting, gone, new, "
            "off: disabled or no longer in the config)",
            labels=["health"],
        )
        lines = source_lines(self.app)
        for state in SourceCondition:
            health.add_metric(
                [state.value], sum(1 for line in lines if line.health.condition is state)
            )
        yield health
        failures = GaugeMetricFamily(
            "digest_source_consecutive_failures",
            "Failed fetches in a row, per source fetched (not off)",
            labels=["source"],
        )
        # An off source's failures are old: an alert on them would fire for a source that
        # nobody fetches any more.
        for line in lines:
            if line.health.condition is not SourceCondition.OFF:
                failures.add_metric([line.row.name], line.row.consecutive_failures)
        yield failures

    def _jobs(self) -> Iterator[Metric]:
        """Each daemon job's last run."""
        jobs = self.app.store.job_runs()
        duration = GaugeMetricFamily(
            "digest_job_duration_seconds",
            "How long each daemon job's last run took (gather, send:DIGEST, retry)",
            labels=["job"],
        )
        ok = GaugeMetricFamily(
            "digest_job_ok", "1 when the job's last run succeeded", labels=["job"]
        )
        finished = GaugeMetricFamily(
            "digest_job_finished_timestamp_seconds",
            "When the job last finished (Unix time)",
            labels=["job"],
        )
        for run in jobs:
            duration.add_metric([run.job], (run.finished_at - run.started_at).total_seconds())
            ok.add_metric([run.job], 1.0 if run.ok else 0.0)
            finished.add_metric([run.job], run.finished_at.timestamp())
        yield duration
        yield ok
        yield finished


def metrics_endpoint(app: App) -> Callable[[Request], Awaitable[Response]]:
    """The /metrics route's handler over this app."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(DigestCollector(app))

    async def metrics(request: Request) -> Response:
        token = os.environ.get(app.config.admin.metrics_token_env, "")
        if token:
            given = request.headers.get("authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
                return PlainTextResponse(
                    "401: send Authorization: Bearer <the token in $"
                    f"{app.config.admin.metrics_token_env}>\n",
                    401,
                    headers={"WWW-Authenticate": "Bearer"},
                )
        elif not _local(request):
            return PlainTextResponse(
                "403: /metrics answers only this machine unless "
                f"${app.config.admin.metrics_token_env} holds a token for Prometheus to send\n",
                403,
            )
        body = await run_in_threadpool(generate_latest, registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return metrics


def _local(request: Request) -> bool:
    """The request came from this machine (after a trusted proxy's X-Forwarded-For, so a
    request the proxy relays from the internet is not local)."""
    host = request.client.host if request.client else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
