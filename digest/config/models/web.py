"""[webhooks] and [admin]: what `digest serve` accepts and its console."""

from __future__ import annotations

from pydantic import Field, field_validator

from digest.config.models.base import _Model, check_env_name


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
