"""The progress of a batch on the wire: one line per message the transport has an answer
for, so a sender killed mid-batch (kill -9, the OOM killer) leaves the trace of what the
server already took.

Without it, a killed sender's rows stay 'sending' until their lease runs out and the next
run sends the whole batch again, the messages the server had accepted included. So each
batch, from the moment it goes out until its record, has a small file of its own in the
folder ``<journal>.progress`` beside the journal of unrecorded sends (named by the claim's
token), and each answer is appended to it as it comes (``os.write``, no fsync: a killed
process loses nothing the kernel has; only a machine crash can, and then the batch goes out
again as before). The sender holds a lock on the file while it lives: the kernel lets go of
it when the process dies, and a file nobody locks is a dead sender's. The record of the
batch removes the file (an unlink: the progress costs a small write a message and two
system calls a batch). ``store.journal_replay`` records the rows of a dead sender's files
before any row is taken back, so only the rows the server never answered go out again.

Written: a message accepted (sent) or refused for good (failed: a fate-unknown one too,
which must not go out again on its own). Not written: a deferral or a hard bounce, which
the next run tries again (a bounce suppresses its reader only when the run's record judges
the relay believable, ``deliver.recording.believed_bounces``).
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from json.encoder import encode_basestring_ascii as _quoted  # a JSON string, quoted
from pathlib import Path

from digest.clock import Clock
from digest.records import OutgoingMessage, SendResult
from digest.states import SendStatus

log = logging.getLogger("digest.store")

SUFFIX = ".jsonl"
_UNWRITABLE: set[Path] = set()  # folders this process could not keep a progress file in
_UNREPLAYABLE: set[tuple[Path, str]] = set()  # (folder or file, "read"/"remove") said once
_KEPT = frozenset({SendStatus.SENT, SendStatus.FAILED})  # final: see the module's doc


@dataclass(frozen=True)
class Answer:
    """One message's answer, as its progress line says it."""

    at: datetime  # when the answer came (a sent row's sent_at): "at" plus "after" seconds
    edition_id: int
    token: str
    delivery_id: int
    status: str  # sent or failed
    detail: str
    message_id: str | None

    @classmethod
    def from_line(cls, line: str) -> Answer:
        """An answer from its line; ValueError (or KeyError, TypeError) when it is none."""
        data = json.loads(line)
        status = SendStatus(data["status"])
        if status not in _KEPT:
            raise ValueError(f"not a final status: {status}")
        message_id = data["message_id"]
        if message_id is not None and not isinstance(message_id, str):
            raise TypeError(f"not a Message-ID: {message_id!r}")
        return cls(
            datetime.fromisoformat(data["at"]) + timedelta(seconds=float(data["after"])),
            int(data["edition"]),
            str(data["token"]),
            int(data["delivery"]),
            str(status),
            str(data["detail"]),
            message_id,
        )


class ProgressFile:
    """One batch's progress file, open and locked by its sender from the batch going out
    to its record. Writing it never stops a send: a failure is logged once and the rest of
    the batch goes on without (as before the progress existed)."""

    def __init__(self, path: Path, fd: int, edition_id: int, token: str, clock: Clock) -> None:
        self.path = path
        self._fd: int | None = fd
        # Every line starts the same: the claim, and the time its file was made; each says
        # its own time as seconds after that, on the clock's monotonic count (a datetime
        # formatted per message was a third of the line's cost).
        began = clock.now().isoformat()
        self._head = f'{{"edition": {edition_id}, "token": "{token}", "at": "{began}", '
        self._clock, self._began = clock, clock.monotonic()
        # The transport's threads write; a thread left running after a cancel must not
        # write to a descriptor closed (or, worse, its number reused) meanwhile.
        self._lock = threading.Lock()
        self._writing = True  # until a write fails (a full disk)

    @classmethod
    def open(cls, folder: Path, token: str, edition_id: int, clock: Clock) -> ProgressFile | None:
        """The file for the claim ``token``, made and locked; None (logged) when it cannot
        be: the batch then goes out without it."""
        path = folder / f"{token}{SUFFIX}"
        try:
            folder.mkdir(parents=True, exist_ok=True)
            while True:
                fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                try:
                    fcntl.flock(fd, fcntl.LOCK_EX)  # new: only a replay can hold it, a moment
                    if _same_file(fd, path):
                        return cls(path, fd, edition_id, token, clock)
                except BaseException:
                    os.close(fd)
                    raise
                os.close(fd)  # a replay took it for a dead one's, before the lock: again
        except OSError as exc:
            if folder not in _UNWRITABLE:  # said once a process: every batch would say it
                _UNWRITABLE.add(folder)
                log.warning(
                    "%s: cannot keep the progress of a batch (%s); if this sender is killed "
                    "mid-batch, the messages the server took go out again. The user digest "
                    "runs as must be able to write that folder",
                    path,
                    exc.strerror or exc,
                )
            return None

    def answered(self, message: OutgoingMessage, result: SendResult) -> None:
        """One line for ``result``, if it is final (see the module's doc)."""
        if result.status not in _KEPT:
            return
        after = self._clock.monotonic() - self._began
        line = (
            f'{self._head}"after": {after:.6f}, "delivery": {message.delivery_id}, '
            f'"status": "{result.status}", "message_id": {_quoted(message.message_id)}, '
            f'"detail": {_quoted(result.detail)}}}\n'
        ).encode()
        with self._lock:
            if self._fd is None or not self._writing:
                return
            try:
                os.write(self._fd, line)
            except OSError as exc:
                log.warning(
                    "%s: cannot write the progress of a batch (%s); if this sender is "
                    "killed mid-batch, the messages the server took go out again",
                    self.path,
                    exc.strerror or exc,
                )
                # No more lines, but the file stays open (locked) until the record: a file
                # let go of is a dead sender's, which a replay records under the live claim.
                self._writing = False

    def recorded(self) -> None:
        """The batch is recorded: the file goes (the lock with it)."""
        with self._lock:
            if self._fd is None:
                return
            try:
                self.path.unlink(missing_ok=True)
            except OSError as exc:  # harmless: a replay finds its rows recorded already
                log.warning("%s: cannot remove a recorded batch's progress (%s)", self.path, exc)
            self._close()

    def close(self) -> None:
        """The batch leaves without its record (an error, a cancel): the file stays for the
        next replay, which records what it says unless the record did."""
        with self._lock:
            self._close()

    def _close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)  # (the lock goes with it)


@dataclass
class Trace:
    """A dead sender's progress file, locked by the replay: its answers, and its lines
    that are none (the last one cut short by the kill is expected, not among them)."""

    path: Path
    answers: list[Answer]
    unreadable: list[str]
    torn: bool  # its last line was cut short (the write the kill interrupted)


@contextmanager
def dead_senders(folder: Path) -> Iterator[list[Trace]]:
    """The progress files in ``folder`` nobody holds (their sender is dead), each locked
    until the block ends; ``done`` removes one. Files of senders alive are left alone."""
    try:
        names = sorted(p for p in folder.iterdir() if p.name.endswith(SUFFIX))
    except (FileNotFoundError, NotADirectoryError):  # no batch ever went out from here
        names = []
    except OSError as exc:  # made by another user (a `sudo digest send`): the send goes on
        _cannot_replay(folder, str(exc.strerror or exc), "read")
        names = []
    if names and not os.access(folder, os.W_OK | os.X_OK):
        # A file recorded but left would be recorded again at each replay: over a row
        # `digest retry` queued again since, say. Not read, its rows go out again.
        _cannot_replay(folder, "not writable by this user", "read")
        names = []
    with ExitStack() as stack:
        traces = []
        for path in names:
            fd = _locked(path)
            if fd is None:
                continue
            stack.callback(os.close, fd)
            traces.append(_trace(path, fd))
        yield traces


def done(trace: Trace) -> None:
    """``trace`` is recorded: its file goes (under the replay's lock, still held)."""
    try:
        trace.path.unlink(missing_ok=True)
    except OSError as exc:  # (a folder this user cannot write is not read: dead_senders)
        _cannot_replay(trace.path, str(exc.strerror or exc), "remove")


def _locked(path: Path) -> int | None:
    """``path`` open and locked, or None: its sender lives (or it is gone meanwhile)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:  # recorded and removed meanwhile
        return None
    except OSError as exc:
        _cannot_replay(path, str(exc.strerror or exc), "read")
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    if not _same_file(fd, path):  # removed by a replay, maybe made again: not this one
        os.close(fd)
        return None
    return fd


def _trace(path: Path, fd: int) -> Trace:
    chunks = []
    while chunk := os.read(fd, 1 << 16):
        chunks.append(chunk)
    text = b"".join(chunks).decode("utf-8", errors="replace")
    lines = text.split("\n")
    torn = lines.pop() != ""  # the text after the last newline: a line the kill cut short
    answers: list[Answer] = []
    unreadable: list[str] = []
    for line in lines:
        if not line.strip():
            continue
        try:
            answers.append(Answer.from_line(line))
        except (ValueError, KeyError, TypeError):
            unreadable.append(line)
    return Trace(path, answers, unreadable, torn)


def _cannot_replay(path: Path, why: str, what: str) -> None:
    """A progress folder or file this user cannot ``what`` (made by another user, say a
    `sudo digest send`): said once a process, and the send goes on without it."""
    if (path, what) in _UNREPLAYABLE:
        return
    _UNREPLAYABLE.add((path, what))
    log.warning(
        "%s: cannot %s a stopped sender's progress (%s): %s. The user digest runs as must "
        "own that folder and its files (chown them to it)",
        path,
        what,
        why,
        "its deliveries go out again when their lease runs out"
        if what == "read"
        else "its deliveries are recorded, but it is read again at each replay",
    )


def _same_file(fd: int, path: Path) -> bool:
    """Whether ``path`` still names the file open as ``fd`` (a replay removes a dead
    sender's file under its lock: a descriptor opened before that is of no file)."""
    try:
        return os.path.samestat(os.fstat(fd), os.stat(path))
    except FileNotFoundError:
        return False
