"""Each of the daemon's jobs in a process of its own, so the daemon stays the size it started.

A job's peak (a send ranks thousands of articles, renders and inlines every variant, holds
the SMTP sessions' messages) lands in whichever process runs it. Run in the daemon, that
peak never quite goes back: Python's small-object allocator keeps a 1 MiB arena for as long
as one block in it lives, and blocks that outlive a job (a cache entry, a pooled
connection's state) pin a few arenas after every job. A 90-minute soak grew 17.8 MB an hour
that way with ``malloc_trim`` after every job (issue 22, bench/README.md). A forked child
starts as a copy of the daemon, runs one job and exits, and the system takes back all it
took: the daemon's own heap never sees a job's peak.

What the child does it does through the database (job runs, editions, deliveries, the
limits' counts), as the jobs already do for ``digest status`` and for other machines, so
nothing the daemon needs is left in the child. Stopping still works from the daemon: the
child ignores the terminal's and the service manager's signals (it must not die between
handing a batch to the server and recording it) and asks, before each batch, a byte the
daemon sets when its own ``stop`` says so (a second SIGTERM, a lost lead) or whether the
daemon is gone. The child's log lines go to the daemon through a pipe and out through the
daemon's own handlers, in order, so the log reads as one program's whatever runs a job.
Where there is no ``fork`` (Windows) or ``[schedule] fork_jobs = false``,
jobs run in the daemon's thread and hand back what they freed (``memory.release_memory``).
"""

from __future__ import annotations

import logging
import mmap
import os
import pickle
import select
import signal
import struct
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from digest.app import App
from digest.clock import utc_time
from digest.job_names import digest_of
from digest.schedule.memory import release_memory

log = logging.getLogger("digest.schedule")

Stop = Callable[[], bool]
Job = Callable[[Stop], object]
WAIT_SECONDS = 0.1  # how often the daemon looks at its child and its own stop
_INHERITED: list[object] = []  # the daemon's connection pools, never closed by a child


def can_fork() -> bool:
    return hasattr(os, "fork")


@dataclass
class JobRunner:
    """How the daemon runs a scheduled job: ``run(name, job)`` with the daemon's ``stop``.

    ``forked``: in a child process (the default where the system can fork), else in the
    daemon's own thread."""

    app: App
    stop: Stop | None = None
    forked: bool = True

    def run(self, name: str, job: Job) -> None:
        if not (self.forked and can_fork()):
            try:
                job(self.stop or _never)
            finally:
                release_memory()
            return
        self._fork(name, job)

    def _fork(self, name: str, job: Job) -> None:
        stopping = mmap.mmap(-1, 1)  # shared with the child: 1 = stop after this batch
        started = self.app.clock.now()
        daemon = os.getpid()
        logs, log_pipe = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child's side ends in os._exit
            os.close(logs)
            _log_to(log_pipe)
            os._exit(
                _child(self.app, name, job, lambda: stopping[0] == 1 or os.getppid() != daemon)
            )
        os.close(log_pipe)
        try:
            status = self._wait(pid, stopping, _LogReader(logs))
        finally:
            stopping.close()
            os.close(logs)
        if status != 0:
            _report(self.app, name, started, status)

    def _wait(self, pid: int, stopping: mmap.mmap, logs: _LogReader) -> int:
        """The child's wait status, passing the daemon's stop on and its log lines out
        while it runs."""
        while True:
            logs.pass_on(WAIT_SECONDS)
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                logs.pass_on(None)  # what it wrote last
                return status
            if self.stop is not None and stopping[0] == 0 and self.stop():
                stopping[0] = 1


def _child(app: App, name: str, job: Job, stop: Stop) -> int:
    """Run ``job`` in the forked child; its exit code."""
    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, signal.SIG_IGN)  # the daemon decides, and tells ``stop``
    code = 1
    try:
        # The daemon's pooled connections are its own: a child opens its own and never
        # closes (or lets the collector close) one it inherited (SQLAlchemy: "Using
        # Connection Pools with Multiprocessing or os.fork()").
        _INHERITED.append(app.engine.pool)
        app.engine.dispose(close=False)
        job(stop)
        code = 0
    except BaseException:
        log.exception("%s failed: a bug in digest or an unreadable database", name)
    finally:
        try:
            app.engine.dispose()  # the child's own connections, closed properly
        except Exception:
            log.debug("closing the job's connections failed", exc_info=True)
        for handler in logging.getLogger().handlers:
            handler.flush()
    return code


class _PipeHandler(logging.Handler):
    """The child's one log handler: each record, formatted as far as it can be (the
    message with its arguments, the traceback as text), pickled down the pipe."""

    def __init__(self, fd: int) -> None:
        super().__init__()
        self.fd = fd

    def emit(self, record: logging.LogRecord) -> None:
        try:
            fields = dict(record.__dict__)
            fields["msg"], fields["args"] = record.getMessage(), None
            if record.exc_info:
                fields["exc_text"] = logging.Formatter().formatException(record.exc_info)
            fields["exc_info"] = None
            data = pickle.dumps(fields)
            os.write(self.fd, struct.pack("!I", len(data)) + data)
        except Exception:
            self.handleError(record)


def _log_to(fd: int) -> None:
    """Send every record the child logs down the pipe, and nowhere else (the daemon's
    handlers write it)."""
    handler = _PipeHandler(fd)
    root = logging.getLogger()
    root.handlers = [handler]
    for logger in logging.Logger.manager.loggerDict.values():
        if isinstance(logger, logging.Logger) and logger.handlers:
            logger.handlers = [handler] if not logger.propagate else []


class _LogReader:
    """The daemon's end of a child's log pipe: each record handed to the logger it was
    logged on, so the daemon's handlers (and levels of handlers) decide where it goes."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.buffer = b""

    def pass_on(self, timeout: float | None) -> None:
        """Read what the child wrote (waiting up to ``timeout``; None: read to its end)."""
        while select.select([self.fd], [], [], timeout if timeout is not None else 0)[0]:
            chunk = os.read(self.fd, 65536)
            if not chunk:
                break
            self.buffer += chunk
            self._emit()
            if timeout is not None:
                break

    def _emit(self) -> None:
        while len(self.buffer) >= 4:
            (size,) = struct.unpack("!I", self.buffer[:4])
            if len(self.buffer) < 4 + size:
                return
            fields, self.buffer = pickle.loads(self.buffer[4 : 4 + size]), self.buffer[4 + size :]
            record = logging.makeLogRecord(fields)
            logging.getLogger(record.name).handle(record)


def _report(app: App, name: str, started: datetime, status: int) -> None:
    """A child that died (killed, out of memory) or failed outside the job's own
    recording: say so in the log and in ``digest status``."""
    if os.WIFSIGNALED(status):
        signum = os.WTERMSIG(status)
        cause = f"was killed by {signal.Signals(signum).name}"
        if signum == signal.SIGKILL:
            cause += " (out of memory? see the system log: journalctl -k | grep -i oom)"
    else:
        cause = f"exited with code {os.WEXITSTATUS(status)} (its traceback is logged above)"
    summary = f"the job's process {cause}" + _in_flight(app, name)
    log.error("%s: %s", name, summary)
    try:
        app.store.record_job(name, started, False, summary)
    except Exception:
        log.exception("%s: could not record its failure for `digest status`", name)


def _in_flight(app: App, name: str) -> str:
    """For a sending job that died, what becomes of the batch it had on the wire: what the
    server took before the death is recorded now from the batch's progress file (the
    replay the next send would do first), the rest goes out again when its lease runs
    out; only a message whose reply was on its way at the kill (one per SMTP session at
    most) may reach its reader twice. "" when nothing was in flight."""
    if digest_of(name) is None:
        return ""
    try:
        recorded = app.store.replay_journal()
        queue = app.store.queue_summary()
    except Exception:  # the database may be why the job died: the death is the news
        return ""
    took = "1 delivery" if recorded == 1 else f"{recorded} deliveries"
    kept = (
        f"; {took} the server took before the kill {'was' if recorded == 1 else 'were'} "
        "recorded from the batch's progress file (not sent again)"
        if recorded
        else ""
    )
    n = queue.in_flight
    if not n or queue.back_at is None:
        return kept
    rows = "1 delivery was" if n == 1 else f"{n} deliveries were"
    its = "its" if n == 1 else "their"
    return (
        f"{kept}; {rows} in flight: sent again when {its} lease runs out at "
        f"{utc_time(queue.back_at, seconds=True)}; only a message on the wire at the kill "
        "(one per SMTP session at most) may reach its reader twice"
    )


def _never() -> bool:
    return False
