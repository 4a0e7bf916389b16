"""A progress folder the sending user cannot read or clear (made by another user: a
`sudo digest send` once, root's umask 077) costs the progress, never the send: the replay
before any row is taken back warns and goes on.

The replay runs in a real `python` process as another user (nobody, when the tests run as
root; else this user against a folder it took its own rights from), on a real SQLite file.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from digest.clock import ManualClock
from digest.deliver.dispatch import DispatchSettings, dispatch
from digest.deliver.maildir import MaildirSender
from digest.render import MessageTemplate
from digest.store import SendJournal, Store, open_engine, upgrade
from digest.store.journal_progress import dead_senders
from tests.conftest import ROOT
from tests.store_queries import add_readers
from tests.test_kill_progress import LEASE, NOW, _answer, _claimed, _edition, _progress, _rows
from tests.test_scale_out import _recipient, _Template

NOBODY = 65534
_REPLAY = """
import logging, sys
from datetime import datetime
from pathlib import Path
from digest.clock import ManualClock
from digest.deliver.dispatch import DispatchSettings, dispatch
from digest.deliver.maildir import MaildirSender
from digest.render import MessageTemplate
from digest.store import SendJournal, Store, open_engine
logging.basicConfig(level=logging.WARNING, stream=sys.stdout, format="%(message)s")
url, journal, now, edition = sys.argv[1:]
clock = ManualClock(datetime.fromisoformat(now))
store = Store(open_engine(url), clock, SendJournal(Path(journal)))
print("taken back", store.reclaim_expired(int(edition)))
print("taken back", store.reclaim_expired(int(edition)))
"""


@pytest.fixture
def shared() -> Iterator[Path]:
    """A folder another user can work in (pytest's own are this user's alone)."""
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        folder.chmod(0o777)
        yield folder
        for path in folder.rglob("*"):  # a folder the test made unreadable, cleared
            if path.is_dir():
                path.chmod(0o755)
        if folder.is_dir():
            folder.chmod(0o755)


def _replay_as_another_user(url: str, journal: Path, edition_id: int) -> str:
    """The replay's log and counts, from a process that does not own the progress."""
    user: list[str] = []
    if os.geteuid() == 0:  # as nobody (setpriv: the interpreter lies under root's home)
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv: no other user to be")
        user = ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups"]
        probe = [*user, sys.executable, "-c", "import digest"]
        if subprocess.run(probe, cwd=ROOT, capture_output=True, timeout=60).returncode != 0:
            # A checkout in a folder only root may enter (mktemp -d makes 0700 ones):
            # nobody cannot run this interpreter or read digest, whatever the progress.
            pytest.skip("the user nobody cannot import digest from this checkout")
    later = NOW + timedelta(seconds=2 * LEASE)
    replay = [sys.executable, "-c", _REPLAY, url, str(journal), str(later), str(edition_id)]
    done = subprocess.run(
        user + replay, cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.slow  # a replay in a process of another user
@pytest.mark.parametrize(
    "mode",
    [0o000, 0o555],
    ids=["folder-unreadable", "folder-unwritable"],
)
def test_a_progress_folder_the_sender_cannot_use_is_warned_and_the_send_goes_on(
    shared: Path, mode: int
) -> None:
    """The dead sender's rows come back whole (as before the progress existed), said
    once: a folder it can read but not clear is not read either (a file recorded but left
    would be recorded again at each replay, over a row `digest retry` queued again)."""
    url = f"sqlite:///{shared / 'digest.db'}"
    engine = open_engine(url)
    upgrade(engine)
    journal = shared / "unrecorded.jsonl"
    store = Store(engine, ManualClock(NOW), SendJournal(journal))
    try:
        edition_id, token, (a, _, _) = _claimed(store)
        progress = _progress(store, edition_id, token)
        _answer(progress, a)
        progress.close()  # the sender is killed
        for path in shared.glob("digest.db*"):
            path.chmod(0o666)
        folder = journal.with_name(journal.name + ".progress")
        folder.chmod(mode)

        said = _replay_as_another_user(url, journal, edition_id)

        assert said.count("taken back") == 2
        assert said.splitlines()[-2:] == ["taken back 3", "taken back 0"], said
        assert said.count("stopped sender's progress") == 1, said
        assert {row[0] for row in _rows(store, edition_id).values()} == {"pending"}
    finally:
        engine.dispose()


def test_a_send_that_cannot_keep_progress_warns_once_and_sends_all(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The progress folder's place taken by a file (as a folder this user cannot write,
    which root cannot be shown): every batch goes out and is recorded, said once."""
    engine = open_engine(f"sqlite:///{tmp_path / 'digest.db'}")
    upgrade(engine)
    journal = tmp_path / "unrecorded.jsonl"
    journal.with_name(journal.name + ".progress").write_text("not a folder\n")
    store = Store(engine, ManualClock(NOW), SendJournal(journal))
    try:
        add_readers(engine, 25)
        template: MessageTemplate = _Template()  # type: ignore[assignment]
        edition_id = _edition(store, NOW)
        with caplog.at_level(logging.WARNING, logger="digest.store"):
            report = asyncio.run(
                dispatch(
                    store,
                    MaildirSender(tmp_path / "mail"),
                    lambda s: template,
                    _recipient,
                    edition_id,
                    DispatchSettings(batch_size=10),
                )
            )
        assert report.counts["sent"] == 25
        assert store.delivery_counts(edition_id) == {"sent": 25}
        said = [r.getMessage() for r in caplog.records]
        assert sum("cannot keep the progress of a batch" in line for line in said) == 1
    finally:
        engine.dispose()


_FULL_DISK = """
import resource, signal, sys, time
from pathlib import Path
from digest.clock import SystemClock
from digest.records import OutgoingMessage, SendResult
from digest.states import SendStatus
from digest.store.journal_progress import ProgressFile
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails (EFBIG)
progress = ProgressFile.open(Path(sys.argv[1]), "a" * 32, 1, SystemClock())
assert progress is not None
resource.setrlimit(resource.RLIMIT_FSIZE, (300, 300))  # the disk fills up mid-batch
for i in range(1, 6):
    message = OutgoingMessage(i, "news@x.test", "r@x.test", f"<m{i}@x>", b"")
    progress.answered(message, SendResult(i, SendStatus.SENT, "250 queued"))
print("answered", flush=True)
time.sleep(60)  # the rest of the batch on the wire: alive, its record to come
"""


@pytest.mark.slow  # a sender in a process of its own
def test_a_sender_that_cannot_write_its_progress_still_holds_it(tmp_path: Path) -> None:
    """Its disk full mid-batch, a live sender stops writing its progress but keeps the
    file's lock until its record: another process's replay leaves it alone (else it took
    the live batch's rows for a dead one's and recorded them under it)."""
    folder = tmp_path / "unrecorded.jsonl.progress"
    sender = subprocess.Popen(
        [sys.executable, "-c", _FULL_DISK, str(folder)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert sender.stdout is not None
        assert sender.stdout.readline() == "answered\n", sender.stderr
        assert [p.name for p in folder.iterdir()] == ["a" * 32 + ".jsonl"]
        with dead_senders(folder) as traces:
            assert traces == []  # alive: not a dead sender's
    finally:
        sender.kill()
        _, said = sender.communicate()
    assert "cannot write the progress of a batch" in said
    with dead_senders(folder) as traces:  # dead now: its answers before the disk filled
        assert [len(t.answers) for t in traces] == [1]
