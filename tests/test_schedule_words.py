"""The sign-up page's words for when a digest is sent: the schedules people write for a
newsletter, and nothing guessed for the others."""

from __future__ import annotations

import pytest

from digest.config.models import DigestConfig
from digest.web.schedule_words import when_sent


@pytest.mark.parametrize(
    ("schedule", "zone", "local", "words"),
    [
        ("0 7 * * *", None, False, "every day at 07:00 (Europe/London)"),
        ("30 6 * * 1-5", "Europe/Paris", False, "every weekday at 06:30 (Europe/Paris)"),
        ("0 18 * * 0", None, False, "every Sunday at 18:00 (Europe/London)"),
        (
            "0 8 * * mon,thu",
            None,
            True,
            "every Monday and Thursday at 08:00 in your time zone (Europe/London until you "
            "choose yours)",
        ),
        (
            "0 8 * * 7,1,3",
            None,
            False,
            "every Monday, Wednesday and Sunday at 08:00 (Europe/London)",
        ),
        ("0 7,19 * * *", None, False, ""),  # twice a day: not guessed at
        ("*/30 * * * *", None, False, ""),
        ("0 7 1 * *", None, False, ""),
    ],
)
def test_schedules_in_words(schedule: str, zone: str | None, local: bool, words: str) -> None:
    digest = DigestConfig(id="d", title="D", schedule=schedule, timezone=zone, local_time=local)
    assert when_sent(digest, zone or "Europe/London") == words  # as Config.digest_timezone
