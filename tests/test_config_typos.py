"""A config typo on a bad morning: `digest check` and `digest run` name the file, the line,
the key and the fix, a misspelt time zone with the zone it was meant to be."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import run_cli


@pytest.mark.parametrize(
    ("typed", "meant"),
    [
        ("US/Eastrn", "US/Eastern"),
        ("Europe/Londn", "Europe/London"),
        ("Asia/Kolkatta", "Asia/Kolkata"),
    ],
)
def test_a_misspelt_time_zone_is_answered_with_the_zone_meant(
    write_config, typed: str, meant: str
) -> None:
    config: Path = write_config([])
    text = config.read_text().replace(
        'schedule = "0 7 * * *"', f'schedule = "0 7 * * *"\ntimezone = "{typed}"'
    )
    config.write_text(text)
    line = text.splitlines().index(f'timezone = "{typed}"') + 1

    for command in (["check"], ["run", "--once"]):
        code, _, err = run_cli("--config", str(config), *command)

        assert code == 2
        assert (
            f"{config.name}:{line}: digests[0].timezone: unknown time zone {typed!r}; "
            f"did you mean {meant!r}"
        ) in err
