"""The totals per refusal reason group refusals by the server's words, cut cleanly."""

from __future__ import annotations

import pytest

from digest.deliver.report import refusal_reason


@pytest.mark.parametrize(
    ("detail", "reason"),
    [
        (
            "550 5.1.1 <ana@example.org>: Recipient address rejected: User unknown",
            "550 5.1.1 Recipient address rejected: User",
        ),
        (
            "connection lost twice (421 4.3.2 Service shutting down; then timed out)",
            "connection lost twice",
        ),
        (
            "452 4.5.3 (too many recipients) try later please",
            "452 4.5.3 (too many recipients) try",
        ),
        ("", "no reason given"),
    ],
)
def test_a_reason_is_the_first_words_without_a_bracket_left_open(detail: str, reason: str) -> None:
    assert refusal_reason(detail) == reason
