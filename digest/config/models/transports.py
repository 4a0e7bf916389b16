"""[delivery.smtp], [delivery.maildir] and the HTTP API providers' tables."""

from __future__ import annotations

import ipaddress
from typing import Literal

from pydantic import Field, ValidationInfo, field_validator

from digest.config.models.base import _Model, check_env_name


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
