"""The whole config file: its tables, and the lookups every command makes on it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import Field, PrivateAttr

from digest.config._lines import Path as KeyPath
from digest.config._lines import dotted, line_of
from digest.config.models.base import _Model, secret_hint
from digest.config.models.delivery import DeliveryConfig
from digest.config.models.digests import DigestConfig
from digest.config.models.gather import GatherConfig, RetentionConfig, SourceConfig
from digest.config.models.rank import RankConfig
from digest.config.models.schedule import ScheduleConfig, WorkerConfig
from digest.config.models.service import ServiceConfig
from digest.config.models.web import AdminConfig, WebhooksConfig
from digest.errors import ConfigProblem


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
    schedule: ScheduleConfig = Field(
        default_factory=ScheduleConfig, description="the scheduler (`digest run`)"
    )
    worker: WorkerConfig = Field(default_factory=WorkerConfig, description="`digest worker`")
    webhooks: WebhooksConfig = Field(
        default_factory=WebhooksConfig, description="provider webhooks"
    )
    admin: AdminConfig = Field(default_factory=AdminConfig, description="the admin console")
    base_dir: Path = Field(default=Path("."), exclude=True, description="folder of the file")
    # Where the file's keys sit, so a problem found after loading (a secret not exported, a
    # missing folder) names its line too. parse_config passes them as validation context.
    _file: str = PrivateAttr(default="")
    _key_lines: dict[KeyPath, int] = PrivateAttr(default_factory=dict)
    # Keys of the file that an earlier version read and that change nothing now, and why.
    _ignored_keys: dict[KeyPath, str] = PrivateAttr(default_factory=dict)
    # The file's text as read, in a few hex digits (``loader.config_fingerprint``)
    _fingerprint: str = PrivateAttr(default="")

    def model_post_init(self, context: Any, /) -> None:
        """Keep the file name and key lines parse_config passed, if it passed them."""
        if isinstance(context, dict):
            self._file = str(context.get("file", ""))
            self._key_lines = dict(context.get("key_lines", {}))
            self._ignored_keys = dict(context.get("ignored_keys", {}))
            self._fingerprint = str(context.get("fingerprint", ""))

    @property
    def file(self) -> str:
        """The file this config was read from, as named when loading ("" if made in code)."""
        return self._file

    @property
    def fingerprint(self) -> str:
        """The text this config was read from, hashed ("" if made in code): whether a
        running daemon runs what the file says now, whatever its time stamp says."""
        return self._fingerprint

    @property
    def ignored_keys(self) -> dict[KeyPath, str]:
        """Keys the file sets that no longer have any effect (accepted, not read), and why."""
        return dict(self._ignored_keys)

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

    def digest_timezone(self, digest: DigestConfig) -> str:
        """The digest's own time zone, else the service's: the zone its schedule is read
        in and its editions are dated by (for a local-time digest, a reader's default)."""
        return digest.timezone or self.service.timezone

    def topics(self) -> list[str]:
        """The topics the configured sources declare, sorted: the only ones a story can
        carry, so the only ones a reader or a digest may choose. A disabled source's count
        too: a reader who chose its topic keeps the choice while it is off."""
        return sorted({topic for source in self.sources for topic in source.topics})

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
