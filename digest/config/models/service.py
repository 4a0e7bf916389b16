"""[service]: who sends the digest, from where, and where its state lives."""

from __future__ import annotations

import ipaddress
import re

from email_validator import EmailNotValidError, validate_email
from pydantic import Field, field_validator
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from digest.config.models.base import _Model, check_env_name, check_timezone
from digest.errors import without_password
from digest.render.i18n import check_locale


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
            except ValueError as exc:
                raise ValueError(
                    f"{entry!r} is not an IP address or CIDR network; write the proxy's "
                    "address as '10.0.0.5', '2001:db8::5' or a network as '10.0.0.0/8'"
                ) from exc
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
        """Parsed here as the store parses it, so a typo fails `digest check`, not a run.
        The URL's password is hidden in the error, which goes into a refused reload's
        record (status, the dashboard) and the daemon's log."""
        try:
            make_url(value)
        except (ArgumentError, ValueError) as exc:  # ValueError: a port that is no number
            raise ValueError(
                f"{without_password(value)!r} is not a database URL; write it as "
                "'sqlite:///digest.db' (three "
                "slashes, then a path relative to this file) or "
                "'postgresql+psycopg://user@host/dbname'"
            ) from exc
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
            raise ValueError(f"{value!r} is not a valid address ({exc})") from exc
        return value
