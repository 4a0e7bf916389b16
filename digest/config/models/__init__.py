"""Typed config models: every setting declared once, with its default and one line of help.

The ``description`` of each field is the help text shown in ``config.example.toml`` and in
error hints; a test keeps the example config and these models in step.
"""

from digest.config.models.base import check_env_name, check_timezone, default, secret_hint
from digest.config.models.config import Config
from digest.config.models.delivery import DeliveryConfig, DkimConfig, RateConfig
from digest.config.models.digests import DigestConfig
from digest.config.models.gather import GatherConfig, RetentionConfig, SourceConfig
from digest.config.models.rank import RankConfig
from digest.config.models.service import ServiceConfig
from digest.config.models.transports import (
    MaildirConfig,
    MailgunConfig,
    PostmarkConfig,
    ResendConfig,
    SendGridConfig,
    SesConfig,
    SmtpConfig,
)
from digest.config.models.web import AdminConfig, WebhooksConfig

__all__ = [
    "AdminConfig",
    "Config",
    "DeliveryConfig",
    "DigestConfig",
    "DkimConfig",
    "GatherConfig",
    "MaildirConfig",
    "MailgunConfig",
    "PostmarkConfig",
    "RankConfig",
    "RateConfig",
    "ResendConfig",
    "RetentionConfig",
    "SendGridConfig",
    "ServiceConfig",
    "SesConfig",
    "SmtpConfig",
    "SourceConfig",
    "WebhooksConfig",
    "check_env_name",
    "check_timezone",
    "default",
    "secret_hint",
]
