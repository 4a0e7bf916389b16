"""`digest status` while the config file is invalid: the daemon runs on the config it read
last, and the admin who just broke the file needs its state most. What the database holds
(editions, the queue, the processes, each job's last run, the daemon's ``reload`` record
with a refused one) is reported as ever; the next runs are the ones the daemon's last
``reload`` record names, since the file cannot say them.
"""

from __future__ import annotations

from digest.config.models import ScheduleConfig, WorkerConfig
from digest.errors import ConfigError
from digest.job_names import RELOAD
from digest.reports import StatusReport, store_edition_status, store_outbox_document
from digest.reports.daemon_runs import next_runs_from, recorded_next_runs
from digest.store import Store
from digest.store.lock import daemon_holder

# Each role's heartbeat interval, which the file would set: the models' defaults.
_EVERY = {
    "worker": WorkerConfig.model_fields["heartbeat_seconds"].default,
    "scheduler": ScheduleConfig.model_fields["leader_check_seconds"].default,
}


def status_without_config(store: Store, error: ConfigError) -> StatusReport:
    """The service's state from ``store`` alone, ``error`` saying why the config was not
    read; next runs as the running daemon's last ``reload`` record names them (none when
    no daemon runs: cron's runs read the file, and fail while it is invalid)."""
    jobs = {run.job: run for run in store.job_runs()}
    daemon = daemon_holder(store.engine)
    return StatusReport(
        editions=[store_edition_status(store, e) for e in store.editions(limit=20)],
        next_runs=recorded_next_runs(jobs.get(RELOAD)) if daemon else [],
        jobs=jobs,
        daemon=daemon,
        outbox=store_outbox_document(store, _EVERY),
        config_error=error,
        next_runs_from=next_runs_from(jobs.get(RELOAD), daemon),  # the file's: none
    )
