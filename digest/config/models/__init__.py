"""Typed config models: every setting declared once, with its default and one line of help.

The ``description`` of each field is the help text shown in ``config.example.toml`` and in
error hints; a test keeps the example config and these models in step.

One module per table or group of tables (``service``, ``gather`` with ``retention`` and
``sources``, ``digests``, ``rank``, ``delivery``, ``transports``, ``schedule`` with
``worker``, ``web``), ``config`` for the whole file and ``base`` for the strict base model
and the checks several tables share.
Import them from here. A function elsewhere that takes a setting defaults to
``default(Model, "field")``, never to the number written out again.
"""

from digest.config.models.base import (
    NO_SOURCE_HAS,
    check_env_name,
    check_timezone,
    default,
    no_source_has,
    offset_meant,
    region_places,
    secret_hint,
    stranded,
    unknown_topics,
    zone_named,
    zones_meant,
)
from digest.config.models.config import Config
from digest.config.models.delivery import DeliveryConfig, DkimConfig, RateConfig
from digest.config.models.digests import DigestConfig
from digest.config.models.gather import GatherConfig, RetentionConfig, SourceConfig, file_path
from digest.config.models.rank import RankConfig
from digest.config.models.schedule import ScheduleConfig, WorkerConfig
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
    "NO_SOURCE_HAS",
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
    "ScheduleConfig",
    "SendGridConfig",
    "ServiceConfig",
    "SesConfig",
    "SmtpConfig",
    "SourceConfig",
    "WebhooksConfig",
    "WorkerConfig",
    "check_env_name",
    "check_timezone",
    "default",
    "file_path",
    "no_source_has",
    "offset_meant",
    "region_places",
    "secret_hint",
    "stranded",
    "unknown_topics",
    "zone_named",
    "zones_meant",
]
