"""A config typo on a bad morning: `digest check` and `digest run` name the file, the line,
the key and the fix, a misspelt time zone with the zone it was meant to be."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from digest.config import parse_config, warnings_for
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


@pytest.mark.parametrize(
    ("typed", "fix"),
    [
        ("GMT+1", "for UTC+1 write 'Etc/GMT-1'"),
        ("GMT-5", "for UTC-5 write 'Etc/GMT+5'"),
        ("UTC+2", "for UTC+2 write 'Etc/GMT-2'"),
        ("UTC+05:30", "no IANA zone is a fixed UTC+5:30"),
    ],
)
def test_an_offset_for_a_zone_is_answered_with_the_zone_on_its_own_side_of_utc(
    write_config, typed: str, fix: str
) -> None:
    """'GMT+1' is no zone; IANA's near name 'Etc/GMT+1' is UTC-1 (its Etc names count the
    other way round), so suggesting it would send a Paris digest two hours late, and one
    for 'GMT-5' (New York) ten hours early."""
    config: Path = write_config([])
    text = config.read_text().replace(
        'schedule = "0 7 * * *"', f'schedule = "0 7 * * *"\ntimezone = "{typed}"'
    )
    config.write_text(text)

    code, _, err = run_cli("--config", str(config), "check")

    assert code == 2
    assert f"digests[0].timezone: unknown time zone {typed!r}; {fix}" in err
    wrong = f"Etc/GMT{typed[3:]}"  # the same sign: the other side of UTC
    assert f"did you mean '{wrong}'" not in err

    # A subscriber's zone is checked by the same rule.
    config.write_text(text.replace(f'timezone = "{typed}"\n', ""))
    code, _, err = run_cli(
        "--config", str(config), "subscribers", "add", "ann@example.org", "--timezone", typed
    )
    assert code == 2
    assert fix in err


def test_check_warns_of_a_password_no_login_uses(write_config, monkeypatch) -> None:
    """A password named without a username: no login is made, and a relay that wants one
    answers 530 to every message of the 7 a.m. run."""
    monkeypatch.setenv("SMTP_PASS", "secret")
    config: Path = write_config([("Wire", "http://127.0.0.1:9/f.xml")], transport="smtp")
    text = config.read_text().replace(
        "connections = 2", 'connections = 2\npassword_env = "SMTP_PASS"'
    )
    config.write_text(text)
    line = text.splitlines().index('password_env = "SMTP_PASS"') + 1

    code, _, err = run_cli("--config", str(config), "check")

    assert code == 0  # a warning: a relay on this machine may need no login
    assert (
        f"{config.name}:{line}: delivery.smtp.password_env: is set but delivery.smtp.username "
        "is not: digest never logs in"
    ) in err

    config.write_text(text.replace('password_env = "SMTP_PASS"', 'username = "digest"'))
    code, _, err = run_cli("--config", str(config), "check")
    assert code == 0 and "delivery.smtp.username: is set but delivery.smtp.password_env" in err

    config.write_text(text.replace("connections = 2", 'connections = 2\nusername = "digest"'))
    assert "delivery.smtp" not in run_cli("--config", str(config), "check")[2]


def test_a_sources_header_lost_is_named_whether_its_keys_land_above_or_twice(
    write_config,
) -> None:
    """Commenting out one [[sources]] line puts its keys in the table above: in
    [delivery.maildir] they are unknown keys, in the [[sources]] entry above they are
    keys set twice. Either way the error says which header went missing."""
    config: Path = write_config(
        [("Wire", "http://127.0.0.1:9/a.xml"), ("Desk", "http://127.0.0.1:9/b.xml")]
    )
    text = config.read_text()
    lost = text.rindex("[[sources]]")
    config.write_text(text[:lost] + "# " + text[lost:])  # the second source's header
    line = config.read_text().splitlines().index('name = "Desk"') + 1

    code, _, err = run_cli("--config", str(config), "check")

    assert code == 2
    assert f"{config.name}:{line}: (syntax): not valid TOML: Cannot overwrite a value" in err
    assert "is a [[sources]] or [[digests]] line missing (or commented out)" in err

    first = text.index("[[sources]]")  # the first one's: its keys land in [delivery.maildir]
    config.write_text(text[:first] + "# " + text[first:])
    line = config.read_text().splitlines().index('name = "Wire"') + 1

    code, _, err = run_cli("--config", str(config), "check")

    assert code == 2
    assert (
        f"{config.name}:{line}: delivery.maildir.name: unknown key; `name` is a key of "
        "[[sources]]: is a [[sources]] line missing (or commented out) above it?"
    ) in err


def test_check_warns_of_a_digest_topic_no_source_has(write_config) -> None:
    """A digest takes only the stories of sources with one of its topics: 'wrld' for
    'world' would leave every edition empty, and mail nobody, without a word."""
    source = '\n[[sources]]\nname = "Wire"\nurl = "http://127.0.0.1:9/f.xml"\n'
    config: Path = write_config([], extra=source + 'topics = ["world", "business"]\n')
    base = config.read_text()

    def check(topics: str) -> tuple[int, str, int]:
        text = base.replace('id = "daily"', f'id = "daily"\ntopics = {topics}')
        config.write_text(text)
        code, _, err = run_cli("--config", str(config), "check")
        return code, err, text.splitlines().index(f"topics = {topics}") + 1

    code, err, line = check('["wrld"]')
    assert code == 0  # a warning: the config loads, and the daemon keeps running
    assert (
        f"{config.name}:{line}: digests[0].topics: no source has the topic 'wrld', so its "
        "editions have no stories; did you mean 'world'?"
    ) in err

    code, err, line = check('["world", "sport"]')
    assert code == 0
    assert (
        f"{config.name}:{line}: digests[0].topics: no source has the topic 'sport': it adds "
        "no stories; the sources' topics are: business, world"
    ) in err

    assert "digests[0].topics" not in check('["business"]')[1]


def test_check_warns_of_a_file_source_whose_file_is_not_there(
    write_config: Callable[..., Path], tmp_path: Path
) -> None:
    """A valid config whose every gather would fail on a source: check says so at its line."""
    (tmp_path / "here.xml").write_text("<rss/>")
    config: Path = write_config([("Here", "file:here.xml"), ("Lost", "file:feeds/lost.xml")])
    line = config.read_text().splitlines().index('url = "file:feeds/lost.xml"') + 1

    code, _, err = run_cli("--config", str(config), "check")

    assert code == 0  # a warning: the file may be written before the first gather
    assert (
        f"{config.name}:{line}: sources[1].url: source 'Lost' names "
        f"{tmp_path / 'feeds' / 'lost.xml'}, which does not exist; fix the path"
    ) in err
    assert "here.xml" not in err


def test_the_missing_file_is_one_of_the_configs_own_warnings(
    write_config: Callable[..., Path], tmp_path: Path
) -> None:
    """The rule lives with the config's other readiness warnings, so every face that shows
    them (the command line, the console's Config screen and dashboard) names the file; a
    paused source's file is not looked for."""
    text = write_config([("Lost", "file:lost.xml"), ("Paused", "file:paused.xml")]).read_text()
    config = parse_config(
        text.replace('url = "file:paused.xml"', 'url = "file:paused.xml"\nenabled = false'),
        tmp_path / "digest.toml",
    )

    line = text.splitlines().index('url = "file:lost.xml"') + 1

    said = [str(p) for p in warnings_for(config) if "does not exist" in str(p)]

    assert said == [
        f"{tmp_path / 'digest.toml'}:{line}: sources[0].url: "
        f"source 'Lost' names {tmp_path / 'lost.xml'}, which does not exist; fix the path "
        "(a relative file: path starts at the config file's folder)"
    ]
