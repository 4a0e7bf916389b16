"""Typed config models: every setting declared once, with its default and one line of help.

The ``description`` of each field is the help text shown in ``config.example.toml`` and in
error hints; a test keeps the example config and these models in step.
"""

from __future__ import annotations

import ipaddress
import os
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from email_validator import EmailNotValidError, validate_email
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationInfo, field_validator
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from digest.config._lines import Path as KeyPath
from digest.config._lines import dotted, line_of
from digest.errors import ConfigProblem
from digest.render.i18n import check_locale
from digest.schedule.slots import next_slot, trigger

_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_DIGEST_ID = re.compile(r"^[a-z0-9][a-z0-9_-]*$")


class _Model(BaseModel):
    """Base: unknown keys and wrong types are errors, never silently read as something else.

    A typo must not fall back to a default, and strict types keep ``weight = true`` from
    loading as 1.0, ``enabled = "no"`` as false and ``port = "587"`` as 587. Strict still
    takes a whole number where a number is asked (``weight = 2``).
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def check_timezone(value: str) -> str:
    """Accept an IANA time zone name such as ``Europe/London``."""
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {value!r}; use an IANA name such as 'Europe/London' or 'UTC'"
        ) from None
    return value


def secret_hint(env: str) -> str:
    """How to set the signing secret: made once and kept, since every link mailed is signed
    with it (a command that makes a new one on each start would break them all)."""
    return (
        "make one once with python3 -c 'import secrets; print(secrets.token_urlsafe(32))' "
        f"and set {env} to that value where digest runs (its systemd EnvironmentFile, say), "
        "the same on every start: a new secret breaks every link already mailed (the README "
        "says how to rotate one)"
    )


def check_env_name(value: str) -> str:
    """Accept the name of an environment variable (the secret itself never sits in the file)."""
    if not _ENV_NAME.match(value):
        raise ValueError(
            f"{value!r} is not an environment variable name; name the variable that holds "
            "the secret (such as 'DIGEST_SECRET'), never the secret itself"
        )
    return value


class ServiceConfig(_Model):
    """Who sends the digest, from where, and where its state lives."""

    name: str = Field(min_length=1, description="the newsletter's name, shown in every email")
    base_url: str = Field(
        description="public https address of this service; unsubscribe and web links start here"
    )
    timezone: str = Field(default="UTC", description="default IANA time zone")
    locale: str = Field(
        default="en", description="default language of the email (en, fr, de, es, ...)"
    )
    database_url: str = Field(
        default="sqlite:///digest.db",
        description="SQLAlchemy URL; a relative SQLite path is relative to this file",
    )
    sender: str = Field(description="From address, optionally with a name: 'Name <addr@host>'")
    reply_to: str | None = Field(default=None, description="optional Reply-To address")
    postal_address: str = Field(
        default="", description="the sender's postal address, printed in the footer"
    )
    unsubscribe_mailto: str | None = Field(
        default=None,
        description="address for mailto unsubscribes; defaults to unsubscribe@ the sender's domain",
    )
    templates_dir: str | None = Field(
        default=None,
        description="folder of email templates overriding the built-in ones; relative to this file",
    )
    trusted_proxies: list[str] = Field(
        default_factory=lambda: ["127.0.0.1", "::1"],
        description="addresses or CIDR networks of the reverse proxies in front of `digest "
        "serve`; only their X-Forwarded-For and X-Forwarded-Proto are believed",
    )
    max_body_bytes: int = Field(
        default=1_048_576,
        ge=1024,
        description="largest request body `digest serve` reads (forms, webhooks); larger is 413",
    )
    secret_env: str = Field(
        default="DIGEST_SECRET",
        description="environment variable holding the secret that signs subscriber links",
    )
    previous_secrets_env: str = Field(
        default="DIGEST_PREVIOUS_SECRETS",
        description=(
            "environment variable holding earlier signing secrets (space-separated), still "
            "accepted on links already mailed while a secret is rotated; unset: none"
        ),
    )

    @field_validator("trusted_proxies")
    @classmethod
    def _proxies(cls, value: list[str]) -> list[str]:
        """Parsed here, and written back in the form uvicorn's check reads: it would take a
        typo (or '10.0.0.5/8', host bits set) as a host name that never matches."""
        parsed = []
        for entry in value:
            try:
                network = ipaddress.ip_network(entry.strip(), strict=False)
            except ValueError:
                raise ValueError(
                    f"{entry!r} is not an IP address or CIDR network; write the proxy's "
                    "address as '10.0.0.5', '2001:db8::5' or a network as '10.0.0.0/8'"
                ) from None
            one = network.num_addresses == 1 and "/" not in entry
            parsed.append(str(network.network_address) if one else str(network))
        return parsed

    @field_validator("locale")
    @classmethod
    def _locale(cls, value: str) -> str:
        return check_locale(value)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        return check_timezone(value)

    @field_validator("secret_env", "previous_secrets_env")
    @classmethod
    def _env(cls, value: str) -> str:
        return check_env_name(value)

    @field_validator("database_url")
    @classmethod
    def _database_url(cls, value: str) -> str:
        """Parsed here as the store parses it, so a typo fails `digest check`, not a run."""
        try:
            make_url(value)
        except ArgumentError:
            raise ValueError(
                f"{value!r} is not a database URL; write it as 'sqlite:///digest.db' (three "
                "slashes, then a path relative to this file) or "
                "'postgresql+psycopg://user@host/dbname'"
            ) from None
        return value

    @field_validator("base_url")
    @classmethod
    def _base_url(cls, value: str) -> str:
        if not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(
                f"{value!r} is not an http(s) address; write it as 'https://host/path'"
            )
        return value.rstrip("/")

    @field_validator("sender", "reply_to", "unsubscribe_mailto")
    @classmethod
    def _address(cls, value: str | None) -> str | None:
        if value is None:
            return None
        from email.utils import parseaddr

        _, addr = parseaddr(value)
        try:
            validate_email(addr, check_deliverability=False)
        except EmailNotValidError as exc:
            raise ValueError(f"{value!r} is not a valid address ({exc})") from None
        return value


class GatherConfig(_Model):
    """How sources are fetched."""

    interval_minutes: int = Field(
        default=30, ge=1, le=1440, description="how often `digest run` gathers, in minutes"
    )
    timeout_seconds: float = Field(
        default=20.0,
        gt=0,
        le=300,
        description="the time one source may take, its redirects and article pages included",
    )
    concurrency: int = Field(default=32, ge=1, le=512, description="requests in flight at once")
    per_host_concurrency: int = Field(
        default=2, ge=1, le=32, description="requests in flight at once to one host"
    )
    per_host_delay_seconds: float = Field(
        default=0.5, ge=0, le=60, description="politeness pause between requests to one host"
    )
    max_body_mb: float = Field(
        default=10.0,
        gt=0,
        le=500,
        description="a response larger than this (decompressed) is cut off",
    )
    max_redirects: int = Field(default=5, ge=0, le=20, description="redirects followed per request")
    backoff_max_hours: float = Field(
        default=24.0, gt=0, le=24 * 14, description="longest pause for a source failing repeatedly"
    )
    max_items_per_source: int = Field(
        default=200, ge=1, description="items read from one feed per fetch, newest first"
    )
    summary_chars: int = Field(
        default=250,
        ge=80,
        le=1000,
        description="a story's summary in the email: its lead sentences, at most this long",
    )
    retention_days: int = Field(
        default=30,
        ge=1,
        description="articles their source has not listed for this many days are pruned",
    )


class RetentionConfig(_Model):
    """How long sent editions and their per-reader delivery rows are kept (articles:
    gather.retention_days). Pruned by every gather and by `digest db prune`."""

    editions_days: int = Field(
        default=365,
        ge=1,
        description="editions older than this many days leave the archive and web view, "
        "with their delivery rows (a digest's newest edition always stays)",
    )
    deliveries_days: int = Field(
        default=90,
        ge=2,
        description="the per-reader delivery rows of editions older than this many days are "
        "deleted (the edition stays); bounces quoting their Message-IDs are not matched then",
    )


class SourceConfig(_Model):
    """One news source: a feed, a news sitemap, or a news site's own listing page."""

    name: str = Field(min_length=1, description="a unique, human name for the source")
    kind: Literal["feed", "sitemap", "page"] = Field(
        default="feed",
        description="'feed' (RSS, Atom, JSON Feed), 'sitemap' (a news sitemap) or 'page' "
        "(a listing page such as 'Latest Updates'; each linked article page is read)",
    )
    url: str = Field(description="the source's http(s) address, or file: path for a local file")
    links: str | None = Field(
        default=None,
        description="kind 'page': CSS selector of the article links; found automatically if unset",
    )
    breaking: str | None = Field(
        default=None,
        description="kind 'page': CSS selector of the page's breaking-news links or section",
    )
    max_articles: int = Field(
        default=30, ge=1, le=500, description="kind 'page': article pages read per fetch, at most"
    )
    weight: float = Field(default=1.0, ge=0, le=10, description="how much this source counts")
    topics: list[str] = Field(default_factory=list, description="topics its articles belong to")
    enabled: bool = Field(default=True, description="set to false to pause the source")

    @field_validator("url")
    @classmethod
    def _url(cls, value: str) -> str:
        if not re.match(r"^(https?://[^/\s]+|file:)", value):
            raise ValueError(
                f"{value!r} is not a feed address; use an http(s) URL such as "
                "'https://example.org/feed.xml' (or 'file:path' for a local file)"
            )
        return value


class DigestConfig(_Model):
    """One digest: what goes in it and when it is sent."""

    id: str = Field(description="short identifier used on the command line, such as 'morning'")
    title: str = Field(min_length=1, description="the email's title, shown in the subject line")
    schedule: str = Field(
        default="0 7 * * *", description="cron expression (minute hour day month weekday)"
    )
    timezone: str | None = Field(
        default=None, description="IANA time zone of the schedule; defaults to service.timezone"
    )
    breaking_items: int = Field(default=5, ge=0, le=50, description="at most this many breaking")
    latest_items: int = Field(default=20, ge=0, le=200, description="at most this many latest")
    lookback_hours: float = Field(
        default=24, gt=0, le=24 * 31, description="articles published in this window count"
    )
    topics: list[str] = Field(
        default_factory=list, description="only sources with one of these topics; empty means all"
    )
    local_time: bool = Field(
        default=False,
        description="send at the schedule's time in each subscriber's own time zone "
        "(run every quarter hour, for zones such as +5:30 and +5:45), each run's zones "
        "getting an edition built from the news of that moment",
    )
    latest_group_by: Literal["topic", "source"] = Field(
        default="topic",
        description="group 'Latest' by the lead's first topic ('topic') or its source ('source')",
    )
    send_empty: bool = Field(
        default=False,
        description="send an edition with no stories (a 'nothing new' email); off: no email "
        "goes to anyone whose edition would be empty, and the run says why",
    )

    @field_validator("id")
    @classmethod
    def _id(cls, value: str) -> str:
        if not _DIGEST_ID.match(value):
            raise ValueError(
                f"{value!r} is not a valid id; use lower-case letters, digits, '-' and '_'"
            )
        return value

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str | None) -> str | None:
        return None if value is None else check_timezone(value)

    @field_validator("schedule")
    @classmethod
    def _cron(cls, value: str) -> str:
        fields = "minute hour day month weekday"
        try:
            trigger(value, "UTC")
        except ValueError as exc:
            fix = (
                f"write five fields ({fields}), such as '0 7 * * *' for 07:00 every day"
                if len(value.split()) != 5
                else "minute is 0-59, hour 0-23, day 1-31, month 1-12, weekday 0-7 (0 and 7 "
                "= Sunday); each may be *, a list 1,3, a range 1-5 or a step */2"
            )
            raise ValueError(f"{value!r} is not a cron expression ({exc}); {fix}") from None
        if next_slot(value, "UTC", datetime.now(UTC)) is None:
            raise ValueError(f"{value!r} never fires (no month has that day); check day and month")
        return value


class RankConfig(_Model):
    """The weights of the breaking score: each signal's contribution is shown by the ranker."""

    half_life_hours: float = Field(default=6.0, gt=0, description="freshness halves every N hours")
    recency_weight: float = Field(default=1.0, ge=0, description="weight of freshness (0..1)")
    source_weight: float = Field(default=0.5, ge=0, description="weight of the best source weight")
    coverage_weight: float = Field(
        default=1.0,
        ge=0,
        description="weight of the other sources carrying the story (each source's weight, "
        "one vote per source)",
    )
    velocity_weight: float = Field(
        default=0.25, ge=0, description="weight per source (its vote) that joined the story lately"
    )
    velocity_hours: float = Field(
        default=3.0, gt=0, description="a source joined lately: its first article is this recent"
    )
    cue_weight: float = Field(
        default=0.5, ge=0, description="bonus for 'breaking', 'live', 'developing' in a title"
    )
    sent_penalty: float = Field(
        default=2.0,
        ge=0,
        description="subtracted from a story an earlier edition sent, unless a new source joined",
    )
    sent_lookback_editions: int = Field(
        default=3, ge=0, le=100, description="how many earlier editions the penalty looks at"
    )
    overlap_discount: float = Field(
        default=1.0,
        ge=0,
        description="sources that usually carry the same stories share their coverage "
        "vote; 0: every source a full vote",
    )
    breaking_min_sources: int = Field(
        default=2, ge=1, description="a story needs this many sources to be 'Breaking'"
    )
    breaking_min_score: float = Field(
        default=2.0, description="and a score of at least this to be 'Breaking'"
    )
    story_similarity: float = Field(
        default=0.25,
        gt=0,
        le=1,
        description="cosine similarity of an article's headline and URL words to a story's "
        "that makes it join the story",
    )
    merge_similarity: float = Field(
        default=0.3, gt=0, le=1, description="cosine similarity at which two stories become one"
    )
    story_gap_hours: float = Field(
        default=12.0,
        gt=0,
        description="a story goes quiet: an article published this many hours from all of "
        "its articles starts a new story, which the sent penalty knows as a follow-up",
    )
    story_memory_hours: float = Field(
        default=48.0,
        gt=0,
        description="stories are remembered this many hours back: a follow-up of one, or "
        "one an earlier edition sent, is recognised within it",
    )


class SmtpConfig(_Model):
    """An SMTP relay."""

    host: str = Field(default="localhost", description="SMTP server host name")
    port: int = Field(default=587, ge=1, le=65535, description="587 STARTTLS, 465 TLS, 25 plain")
    security: Literal["starttls", "tls", "none"] = Field(
        default="starttls", description="'starttls', 'tls' (implicit) or 'none'"
    )
    username: str | None = Field(default=None, description="login name, if the server needs one")
    password_env: str | None = Field(
        default=None, description="environment variable holding the SMTP password"
    )
    verify_certificate: bool = Field(default=True, description="check the server's certificate")
    timeout_seconds: float = Field(default=30.0, gt=0, description="per-command SMTP timeout")
    connections: int = Field(default=4, ge=1, le=64, description="connections used in parallel")

    @field_validator("password_env")
    @classmethod
    def _env(cls, value: str | None) -> str | None:
        return None if value is None else check_env_name(value)

    @field_validator("username")
    @classmethod
    def _not_in_clear(cls, value: str | None, info: ValidationInfo) -> str | None:
        """A login over a connection without TLS sends the password in clear: only to a
        relay on this machine."""
        host, security = info.data.get("host", "localhost"), info.data.get("security")
        if value is not None and security == "none" and not _loopback(host):
            raise ValueError(
                f'security = "none" would send the password to {host} in clear; use '
                '"starttls" (port 587) or "tls" (port 465), or log in only to a relay on '
                "this machine (localhost)"
            )
        return value


def _loopback(host: str) -> bool:
    """Whether ``host`` names this machine (localhost, 127.0.0.0/8, ::1)."""
    if host.lower() in ("localhost", "localhost."):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class MaildirConfig(_Model):
    """A local Maildir folder; any mail client opens it."""

    path: str = Field(default="mail", description="Maildir folder; relative to this file")


class _ApiConfig(_Model):
    """What every HTTP API provider needs: its key's env var, its address, patience."""

    api_key_env: str = Field(description="environment variable holding the API key")
    base_url: str = Field(description="the API's address (change it only for a test server)")
    timeout_seconds: float = Field(default=30.0, gt=0, description="per-request HTTP timeout")
    max_retries: int = Field(
        default=3,
        ge=0,
        le=10,
        description="retries of a batch after a 429 or a request that never reached the API; "
        "a lost answer is retried only with an idempotency key (Resend)",
    )

    @field_validator("api_key_env")
    @classmethod
    def _env(cls, value: str) -> str:
        return check_env_name(value)


class ResendConfig(_ApiConfig):
    """Resend: POST /emails/batch, 100 messages a call."""

    api_key_env: str = Field(
        default="RESEND_API_KEY", description="environment variable holding the API key"
    )
    base_url: str = Field(default="https://api.resend.com", description="the API's address")


class PostmarkConfig(_ApiConfig):
    """Postmark: POST /email/batch, 500 messages a call."""

    api_key_env: str = Field(
        default="POSTMARK_SERVER_TOKEN", description="environment variable holding the server token"
    )
    base_url: str = Field(default="https://api.postmarkapp.com", description="the API's address")
    message_stream: str = Field(default="broadcast", description="the server's message stream")


class SendGridConfig(_ApiConfig):
    """SendGrid: POST /v3/mail/send, 1,000 personalizations a call."""

    api_key_env: str = Field(
        default="SENDGRID_API_KEY", description="environment variable holding the API key"
    )
    base_url: str = Field(default="https://api.sendgrid.com", description="the API's address")


class MailgunConfig(_ApiConfig):
    """Mailgun: POST /v3/{domain}/messages, 1,000 recipients a call."""

    api_key_env: str = Field(
        default="MAILGUN_API_KEY", description="environment variable holding the API key"
    )
    base_url: str = Field(default="https://api.mailgun.net", description="the API's address")
    domain: str = Field(
        default="", description="the Mailgun sending domain, such as mg.example.org"
    )


class SesConfig(_Model):
    """Amazon SES v2: SendBulkEmail, 50 destinations a call, SigV4-signed."""

    region: str = Field(default="us-east-1", description="the AWS region of the SES account")
    access_key_id_env: str = Field(
        default="AWS_ACCESS_KEY_ID", description="environment variable holding the access key id"
    )
    secret_access_key_env: str = Field(
        default="AWS_SECRET_ACCESS_KEY",
        description="environment variable holding the secret access key",
    )
    session_token_env: str | None = Field(
        default=None, description="environment variable holding a session token, if any"
    )
    base_url: str = Field(
        default="", description="the API's address; empty means email.REGION.amazonaws.com"
    )
    configuration_set: str | None = Field(
        default=None, description="SES configuration set for event publishing"
    )
    timeout_seconds: float = Field(default=30.0, gt=0, description="per-request HTTP timeout")
    max_retries: int = Field(
        default=3,
        ge=0,
        le=10,
        description="retries of a batch after a 429 or a request that never reached the API; "
        "a lost answer is retried only with an idempotency key (Resend)",
    )

    @field_validator("access_key_id_env", "secret_access_key_env", "session_token_env")
    @classmethod
    def _env(cls, value: str | None) -> str | None:
        return None if value is None else check_env_name(value)


class RateConfig(_Model):
    """Sending limits as token buckets; each one unset means no limit of that kind."""

    per_second: int | None = Field(default=None, ge=1, description="messages a second, at most")
    per_minute: int | None = Field(default=None, ge=1, description="messages a minute, at most")
    per_hour: int | None = Field(default=None, ge=1, description="messages an hour, at most")
    per_day: int | None = Field(default=None, ge=1, description="messages a day, at most")


class DkimConfig(_Model):
    """DKIM signing of every message (dkimpy), both unsubscribe headers included.

    Off until ``domain`` and ``selector`` are set (leave them out when the relay signs).
    """

    domain: str | None = Field(default=None, description="the signing domain (d=)")
    selector: str | None = Field(default=None, description="the DNS selector (s=) of the key")
    private_key_file: str | None = Field(
        default=None, description="PEM private key file; relative to this file"
    )
    private_key_env: str | None = Field(
        default=None, description="or: environment variable holding the PEM private key"
    )

    @field_validator("private_key_env")
    @classmethod
    def _env(cls, value: str | None) -> str | None:
        return None if value is None else check_env_name(value)

    @property
    def enabled(self) -> bool:
        """True once a domain and a selector are set."""
        return bool(self.domain and self.selector)


class DeliveryConfig(_Model):
    """How messages leave digest."""

    transport: Literal["smtp", "maildir", "resend", "postmark", "sendgrid", "mailgun", "ses"] = (
        Field(default="maildir", description="'smtp', 'maildir', or an HTTP API provider's name")
    )
    lease_seconds: float = Field(
        default=300.0,
        gt=0,
        le=86400,
        description="a claimed batch not finished within this time (a crash) is sent again",
    )
    batch_size: int = Field(
        default=200, ge=1, le=10000, description="deliveries claimed and sent per batch"
    )
    error_budget: float = Field(
        default=0.2,
        gt=0,
        le=1,
        description="pause the edition when more than this share of a run's messages is refused",
    )
    error_budget_minimum: int = Field(
        default=50, ge=1, description="messages tried before the error budget is judged"
    )
    retry_base_seconds: float = Field(
        default=300.0,
        ge=0,
        description="a deferred (4xx) message waits this long, doubling each time (with jitter); "
        "0: tried again at every chance (each minute under the daemon)",
    )
    retry_max_hours: float = Field(
        default=6.0, gt=0, description="the longest wait between two tries of a deferred message"
    )
    verp_domain: str | None = Field(
        default=None,
        description="envelope sender bounce+TOKEN@ this domain, so each bounce names its "
        "subscriber; deliver that domain's mail to a mailbox `digest bounces process` reads",
    )
    rate: RateConfig = Field(default_factory=RateConfig, description="sending limits")
    dkim: DkimConfig = Field(default_factory=DkimConfig, description="DKIM signing")
    smtp: SmtpConfig = Field(default_factory=SmtpConfig, description="settings of 'smtp'")
    maildir: MaildirConfig = Field(default_factory=MaildirConfig, description="of 'maildir'")
    resend: ResendConfig = Field(default_factory=ResendConfig, description="of 'resend'")
    postmark: PostmarkConfig = Field(default_factory=PostmarkConfig, description="of 'postmark'")
    sendgrid: SendGridConfig = Field(default_factory=SendGridConfig, description="of 'sendgrid'")
    mailgun: MailgunConfig = Field(default_factory=MailgunConfig, description="of 'mailgun'")
    ses: SesConfig = Field(default_factory=SesConfig, description="settings of 'ses'")


class WebhooksConfig(_Model):
    """Provider webhooks (bounces, complaints) served by `digest serve` at /webhooks/NAME.

    Each provider is accepted only when its verification secret is configured, by naming
    the environment variable that holds it.
    """

    sendgrid_public_key_env: str | None = Field(
        default=None, description="variable holding SendGrid's Event Webhook verification key"
    )
    mailgun_signing_key_env: str | None = Field(
        default=None, description="variable holding Mailgun's HTTP webhook signing key"
    )
    postmark_credentials_env: str | None = Field(
        default=None, description="variable holding 'user:password' of the Postmark webhook URL"
    )
    resend_secret_env: str | None = Field(
        default=None, description="variable holding Resend's webhook signing secret (whsec_...)"
    )
    ses_topic_arn: str | None = Field(
        default=None, description="the SNS topic ARN whose SES notifications are accepted"
    )

    @field_validator(
        "sendgrid_public_key_env",
        "mailgun_signing_key_env",
        "postmark_credentials_env",
        "resend_secret_env",
    )
    @classmethod
    def _env(cls, value: str | None) -> str | None:
        return None if value is None else check_env_name(value)


class AdminConfig(_Model):
    """The admin console under /admin of `digest serve`, and its /metrics."""

    session_hours: float = Field(
        default=12,
        gt=0,
        le=720,
        description="how long an admin stays logged in without logging in again",
    )
    max_failed_logins: int = Field(
        default=10, ge=1, description="wrong passwords in a row that lock an account for a while"
    )
    lockout_minutes: float = Field(
        default=15,
        gt=0,
        description="how long an account stays locked after too many wrong passwords",
    )
    metrics_token_env: str = Field(
        default="DIGEST_METRICS_TOKEN",
        description="variable holding the bearer token /metrics asks for; unset: /metrics "
        "answers only requests from this machine (127.0.0.1, ::1)",
    )

    @field_validator("metrics_token_env")
    @classmethod
    def _env(cls, value: str) -> str:
        return check_env_name(value)


class Config(_Model):
    """The whole config file."""

    service: ServiceConfig = Field(description="the service")
    gather: GatherConfig = Field(default_factory=GatherConfig, description="gathering")
    retention: RetentionConfig = Field(
        default_factory=RetentionConfig, description="how long editions and deliveries stay"
    )
    rank: RankConfig = Field(default_factory=RankConfig, description="ranking")
    sources: list[SourceConfig] = Field(min_length=1, description="the news sources")
    digests: list[DigestConfig] = Field(min_length=1, description="the digests")
    delivery: DeliveryConfig = Field(default_factory=DeliveryConfig, description="delivery")
    webhooks: WebhooksConfig = Field(
        default_factory=WebhooksConfig, description="provider webhooks"
    )
    admin: AdminConfig = Field(default_factory=AdminConfig, description="the admin console")
    base_dir: Path = Field(default=Path("."), exclude=True, description="folder of the file")
    # Where the file's keys sit, so a problem found after loading (a secret not exported, a
    # missing folder) names its line too. parse_config passes them as validation context.
    _file: str = PrivateAttr(default="")
    _key_lines: dict[KeyPath, int] = PrivateAttr(default_factory=dict)

    def model_post_init(self, context: Any, /) -> None:
        """Keep the file name and key lines parse_config passed, if it passed them."""
        if isinstance(context, dict):
            self._file = str(context.get("file", ""))
            self._key_lines = dict(context.get("key_lines", {}))

    def problem(self, path: KeyPath, what: str, fix: str = "") -> ConfigProblem:
        """A problem with the key at ``path``, placed at its line (or its table's) in the file."""
        line = line_of(self._key_lines, path) if self._key_lines else 0
        return ConfigProblem(self._file, line, dotted(path), what, fix)

    def digest(self, digest_id: str | None) -> DigestConfig:
        """The digest with this id, or the first one when no id is given."""
        if digest_id is None:
            return self.digests[0]
        for d in self.digests:
            if d.id == digest_id:
                return d
        known = ", ".join(d.id for d in self.digests)
        from digest.errors import UsageError

        raise UsageError(f"no digest with id {digest_id!r}", f"the config defines: {known}")

    def secret(self) -> str:
        """The signing secret from the environment variable the config names."""
        value = os.environ.get(self.service.secret_env, "")
        if len(value) < 16:
            from digest.errors import DigestError

            raise DigestError(
                f"the signing secret ${self.service.secret_env} is "
                + ("not set" if not value else "shorter than 16 characters"),
                secret_hint(self.service.secret_env),
            )
        return value

    def secrets(self) -> tuple[str, ...]:
        """The signing secret and then the earlier ones still accepted on links already
        mailed: verify with these, sign with ``secret()`` alone. An earlier one shorter than
        16 characters is left out (`digest check` warns): a short key could be guessed."""
        return (self.secret(), *(s for s in self.previous_secrets() if len(s) >= 16))

    def previous_secrets(self) -> list[str]:
        """The values in ``previous_secrets_env``, separated by spaces (or commas)."""
        return os.environ.get(self.service.previous_secrets_env, "").replace(",", " ").split()

    def smtp_password(self) -> str | None:
        """The SMTP password from its environment variable, if one is named."""
        env = self.delivery.smtp.password_env
        if env is None:
            return None
        value = os.environ.get(env)
        if value is None:
            from digest.errors import DigestError

            raise DigestError(
                f"the SMTP password variable ${env} is not set",
                f"export {env}=... in the service's environment, or remove password_env",
            )
        return value

    def unsubscribe_mailto(self) -> str:
        """Where mailto unsubscribes go: the configured address or unsubscribe@sender-domain."""
        from email.utils import parseaddr

        if self.service.unsubscribe_mailto:
            return parseaddr(self.service.unsubscribe_mailto)[1]
        return "unsubscribe@" + parseaddr(self.service.sender)[1].rpartition("@")[2]

    def templates_dir(self) -> Path | None:
        """The admin's template folder, if the config names one."""
        folder = self.service.templates_dir
        return None if folder is None else self.resolve_path(folder)

    def resolve_path(self, path: str) -> Path:
        """A path from the config, relative paths taken from the config file's folder."""
        p = Path(path).expanduser()
        return p if p.is_absolute() else self.base_dir / p
