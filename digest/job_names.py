"""The names jobs are recorded under (``send daily``, ``retry daily``, ``send daily
(manual)``): built by the jobs (``digest.jobs``) and read back by the reports of them
(``digest.reports``), so one module knows the format. A leaf: reading a job's name
should not load the pipeline that runs it.
"""

from __future__ import annotations

from typing import Literal, get_args

_MANUAL = " (manual)"  # what ``manual`` adds to a job's name
SendingVerb = Literal["send", "retry"]  # the jobs that send one digest (``sending``)
# The daemon reading its config, at start and on SIGHUP: a refused reload is recorded, so
# `digest status`, the console and `digest_job_ok{job="reload"}` show it, not one log line.
RELOAD = "reload"
# How a taken config's ``reload`` record ends: "; config " and the fingerprint of the text
# read (``config.config_fingerprint``), which `digest status` compares with the file's.
RELOAD_FINGERPRINT = "; config "


def sending(verb: SendingVerb, digest_id: str) -> str:
    """The name a job that sends one digest is recorded under: ``send daily`` (its slot's
    run), ``retry daily`` (its rows due between slots); ``digest_of`` reads it back."""
    return f"{verb} {digest_id}"


def manual(job: str) -> str:
    """The name a job run by hand is recorded under: ``send daily (manual)``. A row of its
    own, so the daemon's last result stays in view (and in `digest_job_ok`) beside it."""
    return f"{job}{_MANUAL}"


def digest_of(job: str) -> str | None:
    """The digest a sending job (``sending``, or its ``manual`` run) is of: ``send daily
    (manual)`` and ``retry daily`` are of ``daily``; None for the gathering."""
    verb, _, rest = job.removesuffix(_MANUAL).partition(" ")
    return rest if verb in get_args(SendingVerb) and rest else None
