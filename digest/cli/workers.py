"""`digest worker`: a long-lived sender, any number of them on one PostgreSQL database."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

import click

from digest.cli._common import Context, pass_context, run_async

log = logging.getLogger("digest.worker")


@click.command()
@click.option("--once", is_flag=True, help="one pass over the editions with work, then exit")
@pass_context
def worker(ctx: Context, once: bool) -> None:
    """Send queued deliveries of every edition until stopped: claim a batch, send it,
    record it, repeat; idle, wait for new rows. SIGTERM or SIGINT: the batch on the wire
    finishes, nothing more is claimed; a second one stops at once (its rows come back
    when their lease runs out)."""
    from digest.worker import run_worker

    app = ctx.app()
    app.config.secret()  # fail before any work when the signing secret is missing
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        if stop.is_set():
            log.warning("received %s again; stopping now", name)
            raise KeyboardInterrupt
        log.warning("received %s; finishing the batch on the wire, then exiting", name)
        stop.set()

    if threading.current_thread() is threading.main_thread():
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, on_signal)
    stats = run_async(run_worker(app, stop, rounds=1 if once else None))
    click.echo(f"worker {stats.worker_id}: {stats.sent} sent, {stats.settled} rows recorded")


COMMANDS = [worker]
