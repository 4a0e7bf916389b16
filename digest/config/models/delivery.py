"""[delivery] with [delivery.rate] and [delivery.dkim]: how messages leave digest."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator

from digest.config.models.base import _Model, check_env_name
from digest.config.models.transports import (
    MaildirConfig,
    MailgunConfig,
    PostmarkConfig,
    ResendConfig,
    SendGridConfig,
    SesConfig,
    SmtpConfig,
)


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
    record_retry_seconds: float = Field(
        default=60.0,
        ge=0,
        le=3600,
        description="how long the record of a batch the server took is retried when the "
        "database fails, its results kept in unrecorded_file meanwhile (at most a third "
        "of lease_seconds)",
    )
    unrecorded_file: str = Field(
        default="unrecorded-sends.jsonl",
        description="results of sent batches the database could not record, kept until the "
        "next send records them (and beside it, in <file>.progress/, what the server took of "
        "each batch on the wire, for a sender killed mid-batch); relative to this file",
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
