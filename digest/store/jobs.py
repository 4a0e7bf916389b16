"""The daemon's job runs: the last result of each job, for `digest status` and the admin.

A mixin of ``Store``; all SQL stays in ``store/``.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import col, select

from digest.store.base import StoreBase
from digest.store.tables import JobRun

# The most of a job's summary kept: a longer one is cut at its end (``record_job``); a
# ``whole`` part after it is never cut.
SUMMARY_CHARS = 2000


class JobQueries(StoreBase):
    """The job-run queries (``Store`` inherits them)."""

    def record_job(
        self, job: str, started_at: datetime, ok: bool, summary: str, whole: str = ""
    ) -> None:
        """Keep the last result of a daemon job (one row per job, replaced each run): its
        ``summary`` cut to ``SUMMARY_CHARS`` (an error's many problems), then ``whole``,
        kept whole: the part read back by a program (a ``reload`` record's next runs and
        config fingerprint), which cut would name some digests and not the rest, or lose
        the fingerprint `digest status` compares with the file's (with ~45 digests)."""
        if len(summary) > SUMMARY_CHARS:
            summary = summary[: SUMMARY_CHARS - 1] + "…"
        with self.session() as s:
            row = s.get(JobRun, job) or JobRun(
                job=job, started_at=started_at, finished_at=self.clock.now(), ok=ok, summary=""
            )
            row.started_at, row.finished_at, row.ok, row.summary = (
                started_at,
                self.clock.now(),
                ok,
                summary + whole,
            )
            s.add(row)
            s.commit()

    def forget_job(self, job: str) -> None:
        """Drop a job's last result: what it said holds no more (a standby's refused reload,
        its host's scheduler started again on a file it read whole)."""
        with self.session() as s:
            row = s.get(JobRun, job)
            if row is not None:
                s.delete(row)
                s.commit()

    def job_runs(self) -> list[JobRun]:
        """The last result of every daemon job, by name."""
        with self.session() as s:
            return list(s.exec(select(JobRun).order_by(col(JobRun.job))))
