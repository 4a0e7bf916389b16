"""A `digest send` interrupted mid-batch (Ctrl-C, SIGINT) mails no reader twice: the SMTP
sessions finish the message they have on the wire and stop, and what the server takes
meanwhile is kept in the batch's progress file for the next send to record.

A real `digest send` subprocess against a real aiosmtpd server that takes its time over
each message and counts what it gets per recipient; real SQLite.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from digest.app import App
from digest.clock import SystemClock
from digest.config import load_config
from digest.deliver.maildir import MaildirSender
from digest.records import OutgoingMessage, SendResult
from digest.store.journal_progress import ProgressFile
from tests.conftest import ROOT, FeedServer, free_port
from tests.store_queries import add_readers, reader_address
from tests.test_kill_progress import _config


class Slow:
    """Accepts every message after ``seconds``, counting it per recipient."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.received: Counter[str] = Counter()

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        await asyncio.sleep(self.seconds)
        self.received.update(str(r) for r in envelope.rcpt_tos)
        return "250 2.0.0 Queued"


@pytest.mark.slow  # two `digest send` processes
def test_a_send_interrupted_mid_batch_mails_nobody_twice(
    write_config, feed_server: FeedServer
) -> None:
    """SIGINT with the second batch of 20 half out: the interrupted send exits, the next
    send (after the lease) records what the first one's server took and sends the rest,
    each reader's edition once."""
    readers = 100
    handler = Slow(0.05)
    controller = Controller(handler, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        config = _config(write_config, feed_server, controller.port, None)
        app = App.open(load_config(config))
        try:
            add_readers(app.engine, readers)
        finally:
            app.close()
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        command = [sys.executable, "-m", "digest", "--config", str(config), "send", "--gather"]
        process = subprocess.Popen(
            command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        deadline = time.monotonic() + 60
        while sum(handler.received.values()) < 30:
            assert process.poll() is None, process.communicate()[0]
            assert time.monotonic() < deadline, "the send never got to its second batch"
            time.sleep(0.005)
        process.send_signal(signal.SIGINT)
        out = process.communicate(timeout=60)[0]
        assert process.returncode != 0, out  # interrupted, not finished
        first = sum(handler.received.values())
        assert first < readers, out
        time.sleep(1.2)  # its lease runs out

        done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
        counts = [handler.received[reader_address(i)] for i in range(readers)]
        assert counts == [1] * readers, (first, Counter(counts), out)
    finally:
        controller.stop()


def test_a_maildir_batch_cancelled_writes_no_file_its_progress_lacks(tmp_path: Path) -> None:
    """A cancel mid-batch: the writer stops after its file, the cancel waits for it, and
    every file written has its line in the progress (closed right after, as the dispatcher
    does); a thread left writing made files whose lines came after the close."""
    folder = tmp_path / "progress"
    progress = ProgressFile.open(folder, "b" * 32, 1, SystemClock())
    assert progress is not None
    sender = MaildirSender(tmp_path / "mail")
    messages = [
        OutgoingMessage(i, "news@x.test", f"r{i}@x.test", f"<m{i}@x>", b"Subject: s\r\n\r\nb\r\n")
        for i in range(1, 201)
    ]

    def answered(message: OutgoingMessage, result: SendResult) -> None:
        progress.answered(message, result)
        time.sleep(0.005)  # a slow disk

    async def cancelled() -> None:
        going = asyncio.create_task(sender.send_batch(messages, answered))
        await asyncio.sleep(0.1)
        going.cancel()
        with pytest.raises(asyncio.CancelledError):
            await going
        progress.close()  # the batch leaves unrecorded (``Batch.unrecorded``)
        await asyncio.sleep(0.3)  # a thread still writing would write on meanwhile
        await sender.aclose()

    asyncio.run(cancelled())
    files = len(list((tmp_path / "mail" / "new").iterdir()))
    lines = (folder / ("b" * 32 + ".jsonl")).read_bytes().count(b"\n")
    assert 0 < files < len(messages)
    assert files == lines
