"""The ``maildir`` transport: each message becomes a file in a Maildir any mail client opens."""

from __future__ import annotations

import mailbox
import threading
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from pathlib import Path

from digest.config import Config
from digest.deliver.base import Answered, in_threads, register
from digest.errors import DeliveryError
from digest.records import OutgoingMessage, SendResult
from digest.states import SendStatus


class MaildirSender:
    """Writes messages into ``cur/``-less Maildir ``new/``, atomically (tmp/ then rename)."""

    name = "maildir"
    wants_fields = False  # MIME bytes, as they go on the wire

    def __init__(self, path: Path) -> None:
        self.path = path
        self._writer = ThreadPoolExecutor(1, thread_name_prefix="maildir")  # a batch at a time
        try:
            self._box = mailbox.Maildir(str(path), create=True)
        except OSError as exc:
            raise DeliveryError(
                f"cannot create the Maildir {path}: {exc.strerror}",
                "set delivery.maildir.path to a writable folder",
            ) from exc

    async def send_batch(
        self, messages: Sequence[OutgoingMessage], answered: Answered | None = None
    ) -> list[SendResult]:
        """Add each message (to ``answered`` once its file is in place); Maildir files use
        LF line ends, as mail clients expect."""
        stop = threading.Event()  # a cancel: the files written so far, kept; no more
        (outcome,) = await in_threads(
            self._writer, [partial(self._write, messages, answered, stop)], stop
        )
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    def _write(
        self, messages: Sequence[OutgoingMessage], answered: Answered | None, stop: threading.Event
    ) -> list[SendResult]:
        results = []
        for message in messages:
            if stop.is_set():
                break
            try:
                key = self._box.add(message.data.replace(b"\r\n", b"\n"))
            except OSError as exc:
                raise DeliveryError(
                    f"cannot write to the Maildir {self.path}: {exc.strerror}",
                    "check the folder's permissions and free space",
                ) from exc
            results.append(SendResult(message.delivery_id, SendStatus.SENT, f"maildir {key}"))
            if answered is not None:
                answered(message, results[-1])
        return results

    async def aclose(self) -> None:
        """Nothing stays open between writes."""
        self._box.close()
        self._writer.shutdown(wait=False)


@register("maildir")
def _from_config(config: Config) -> MaildirSender:
    return MaildirSender(config.resolve_path(config.delivery.maildir.path))
