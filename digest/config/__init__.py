"""The config stage: one TOML file, parsed into typed, validated models."""

from digest.config._readiness import warnings_for
from digest.config.loader import (
    config_fingerprint,
    config_path,
    lenient_setting,
    load_config,
    parse_config,
    reload_config,
)
from digest.config.models import (
    Config,
    DeliveryConfig,
    DigestConfig,
    GatherConfig,
    MaildirConfig,
    RankConfig,
    ServiceConfig,
    SmtpConfig,
    SourceConfig,
)

__all__ = [
    "Config",
    "DeliveryConfig",
    "DigestConfig",
    "GatherConfig",
    "MaildirConfig",
    "RankConfig",
    "ServiceConfig",
    "SmtpConfig",
    "SourceConfig",
    "config_fingerprint",
    "config_path",
    "lenient_setting",
    "load_config",
    "parse_config",
    "reload_config",
    "warnings_for",
]
