"""Results the mail server gave for a batch that the database failed to record, kept in a
small local file until it can: the journal of unrecorded sends.

A batch the server took is still 'sending' in the database until its record is written;
if that write fails (a lock held past the timeout, a full disk, a dropped connection), the
rows' lease runs out and the next run would take them back and mail everyone in the batch
again. So the results go to this journal (one JSON line a batch, fsynced; kept at the
first failure by ``deliver.recording``, taken out again if a retry records them), and the
store records them from it before it takes back any row (``replay_journal`` in
``store.journal_replay``, called by ``reclaim_expired`` and ``expire_unfinished``): a row
the server took is recorded as it went, never sent again from this machine.

Rows another sender took back before the journal was replayed (a worker on another
machine, whose journal this is not) may have gone out twice; the replay names them.
The file lives beside the config on the sending machine (``delivery.unrecorded_file``);
recorded entries are taken out of it, not the file removed (a process waiting on its lock
keeps a handle on the same file); lines that are no entry go to ``<file>.rejected``.
`digest status` names what it holds, `digest check` the rejected lines.

Beside it, ``<file>.progress/`` keeps the progress of each batch on the wire, one small
file a claim (``store.journal_progress``): a sender killed mid-batch leaves there what the
server answered, and the same replay records it.

This module is the file; ``store.journal_replay`` records it in the database.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
import time
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from digest.errors import StoreError
from digest.states import DeliveryStatus
from digest.unrecorded import holds_entries, progress_folder, rejected_file

log = logging.getLogger("digest.store")


Result = tuple[int, str, str, str | None]  # delivery id, status, detail, Message-ID


@dataclass(frozen=True)
class JournalEntry:
    """One sent batch's results, as the claim would have recorded them."""

    at: datetime  # when the server answered (a sent row's sent_at)
    edition_id: int
    token: str  # the claim's: its rows are recorded only if still its (or back to pending)
    results: Sequence[Result]
    retry_at: Mapping[int, datetime] = field(default_factory=dict)
    reason: str = ""  # the database's error
    # Rows the server refused as a hard bounce (stored as failed): their subscribers are
    # suppressed when the entry is recorded, as the record of the batch would have. Only
    # entries kept by earlier versions have any: a run now records its bounces as doubted
    # and suppresses at its end (``deliver.doubts.weigh_refusals``).
    bounced: Sequence[int] = ()

    def to_line(self) -> str:
        """The entry as one JSON line."""
        return json.dumps(
            {
                "at": self.at.isoformat(),
                "edition": self.edition_id,
                "token": self.token,
                "results": [list(r) for r in self.results],
                "retry_at": {str(k): v.isoformat() for k, v in self.retry_at.items()},
                "reason": self.reason,
                "bounced": list(self.bounced),
            }
        )

    @classmethod
    def from_line(cls, line: str) -> JournalEntry:
        """An entry from its JSON line; ValueError (or KeyError, TypeError) when it is not one."""
        data = json.loads(line)
        return cls(
            datetime.fromisoformat(data["at"]),
            int(data["edition"]),
            str(data["token"]),
            [(int(i), str(DeliveryStatus(s)), str(d), _text(m)) for i, s, d, m in data["results"]],
            {int(k): datetime.fromisoformat(v) for k, v in data["retry_at"].items()},
            str(data.get("reason", "")),
            tuple(int(i) for i in data.get("bounced", [])),
        )


class SendJournal:
    """The journal file: entries appended under a lock, fsynced, read back and taken out
    once recorded. Every error on the file is a StoreError that says how to fix it."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @property
    def rejected(self) -> Path:
        """Where lines that are no entry (a write cut short) are moved, once, for the admin."""
        return rejected_file(self.path)

    @property
    def progress(self) -> Path:
        """Where each batch on the wire keeps its progress (``store.journal_progress``)."""
        return progress_folder(self.path)

    def keep(self, entry: JournalEntry) -> None:
        """Append ``entry`` and fsync it.

        A line cut short by a process killed mid-write is ended first (its own line, found
        unreadable), or the entry written after it would join it and be lost with it. The
        line goes out in one write on an append-only descriptor."""
        line = (entry.to_line() + "\n").encode("utf-8")
        with self._locked(os.O_RDWR | os.O_APPEND | os.O_CREAT, "write") as fd:
            if _torn_end(fd):
                line = b"\n" + line
            os.write(fd, line)
            os.fsync(fd)

    def waiting(self) -> bool:
        """Whether the journal holds anything (a stat: called before every reclaim)."""
        try:
            return holds_entries(self.path)
        except OSError as exc:
            raise _unusable(self.path, "read", exc) from exc

    def read(self) -> tuple[list[JournalEntry], list[str]]:
        """The entries it holds, and its lines that are none (a torn write), unlocked: for
        `digest status`."""
        if not self.waiting():
            return [], []
        try:
            return _parse(self.path.read_text(encoding="utf-8", errors="replace").splitlines())
        except OSError as exc:
            raise _unusable(self.path, "read", exc) from exc

    def snapshot(self) -> tuple[list[JournalEntry], list[str]]:
        """``read`` under the lock (no entry half written): what a replay records, the
        file unlocked meanwhile."""
        with self._locked(os.O_RDWR, "read") as fd:
            return _parse(_lines(fd))

    def void(self, token: str) -> None:
        """Take out the entry of the claim ``token`` (its batch is recorded)."""
        self.drop({token}, [])

    def drop(self, tokens: Collection[str], unreadable: Collection[str]) -> None:
        """Take out the entries of the claims ``tokens`` (recorded) and the lines
        ``unreadable``, which go to ``rejected`` first; what was kept meanwhile stays."""
        with self._locked(os.O_RDWR, "rewrite") as fd:
            lines = _lines(fd)
            moved = [line for line in lines if line in unreadable]
            kept = [line for line in lines if line not in unreadable and _token(line) not in tokens]
            if moved:
                self._reject(moved)
            if len(kept) < len(lines):
                _rewrite(fd, kept)

    def _reject(self, lines: list[str]) -> None:
        try:
            fd = os.open(self.rejected, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, "".join(line + "\n" for line in lines).encode("utf-8"))
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise _unusable(self.rejected, "write", exc) from exc

    @contextmanager
    def _locked(self, flags: int, doing: str) -> Iterator[int]:
        """The file open with ``flags`` under its lock (one writer or replayer on this
        machine), waited for LOCK_WAIT seconds at most."""
        try:
            if flags & os.O_CREAT:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, flags, 0o644)
        except OSError as exc:
            raise _unusable(self.path, doing, exc) from exc
        try:
            _lock(fd, self.path)
            try:
                yield fd
            except OSError as exc:
                raise _unusable(self.path, doing, exc) from exc
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


LOCK_WAIT = 30.0  # seconds; a journal's lock is held for one read or write of the file


def _lock(fd: int, path: Path) -> None:
    deadline = time.monotonic() + LOCK_WAIT
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() > deadline:
                raise StoreError(
                    f"{path} stayed locked by another process for {LOCK_WAIT:.0f} s",
                    f"see which process holds it (`fuser {path}`); a digest process stuck "
                    "on a full or hung disk is the likely one",
                ) from None  # the BlockingIOError says only "would block"
            time.sleep(0.05)


def _unusable(path: Path, doing: str, exc: OSError) -> StoreError:
    """An error on the journal's file, with the likely fix."""
    return StoreError(
        f"cannot {doing} the journal of unrecorded sends {path}: {exc.strerror or exc}",
        "the user digest runs as must be able to write the file and its folder: a file "
        "made by `sudo digest send` belongs to root (`chown` it back), or set "
        "delivery.unrecorded_file to a writable place",
    )


def _lines(fd: int) -> list[str]:
    return _read_all(fd).decode("utf-8", errors="replace").splitlines()


def _torn_end(fd: int) -> bool:
    """Whether the file's last line has no end (a write cut short)."""
    size = os.fstat(fd).st_size
    return size > 0 and os.pread(fd, 1, size - 1) != b"\n"


def _rewrite(fd: int, lines: list[str]) -> None:
    """The file's lines replaced by ``lines`` (in place: a process waiting on the lock holds
    the same file), fsynced."""
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, "".join(line + "\n" for line in lines).encode("utf-8"))
    os.fsync(fd)


def _token(line: str) -> str | None:
    """The claim token of an entry's line (None: not an entry)."""
    try:
        return JournalEntry.from_line(line).token
    except (ValueError, KeyError, TypeError):
        return None


def _read_all(fd: int) -> bytes:
    os.lseek(fd, 0, os.SEEK_SET)
    chunks = []
    while chunk := os.read(fd, 1 << 16):
        chunks.append(chunk)
    return b"".join(chunks)


def _text(value: object) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise TypeError(f"not a Message-ID: {value!r}")


def _parse(lines: list[str]) -> tuple[list[JournalEntry], list[str]]:
    entries: list[JournalEntry] = []
    unreadable: list[str] = []
    for line in lines:
        if not line.strip():
            continue
        try:
            entries.append(JournalEntry.from_line(line))
        except (ValueError, KeyError, TypeError):
            unreadable.append(line)
    return entries, unreadable


# Delivery ids a message names before it stops (" ..."): enough to look a few up.
_IDS_SHOWN = 50


def shown_ids(ids: Sequence[int]) -> str:
    """``ids`` as a log or error names them: the first 50, then " ..." when there are more."""
    return ", ".join(map(str, ids[:_IDS_SHOWN])) + (" ..." if len(ids) > _IDS_SHOWN else "")
