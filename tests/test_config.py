"""The config stage: `digest check`, `digest init`, secrets, relative paths, and the example.

Every mistake in a config is reported at once as ``file:line: key.path: what; fix``, with
exit code 2 and no traceback; config.example.toml documents every field the models declare.
"""

from __future__ import annotations

import json
import re
import tomllib
import typing
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from digest.config import Config, load_config, parse_config, warnings_for
from digest.config._lines import key_lines
from digest.config.models.base import default
from digest.config.models.digests import DigestConfig
from digest.errors import ConfigError, DigestError
from digest.store.engine import resolve_url
from tests.conftest import ROOT, SECRET, run_cli

EXAMPLE = ROOT / "config.example.toml"

# A small valid config; each case below changes one line of it.
BASE = """\
[service]
name = "Test Desk"
base_url = "https://digest.example.com"
timezone = "UTC"
sender = "Test Desk <news@example.com>"

[[sources]]
name = "one"
url = "https://one.example.com/feed"

[[sources]]
name = "two"
url = "https://two.example.com/feed"
weight = 1.0

[[digests]]
id = "daily"
title = "Daily"
schedule = "0 7 * * *"

[delivery.smtp]
port = 587
"""


def edit(text: str, old: str, new: str) -> str:
    assert text.count(old) == 1, f"{old!r} must occur once in the config"
    return text.replace(old, new)


def line_of(text: str, marker: str) -> int:
    """1-based number of the one line containing ``marker``."""
    found = [n for n, line in enumerate(text.splitlines(), start=1) if marker in line]
    assert len(found) == 1, f"{marker!r} is on lines {found}"
    return found[0]


def check(path: Path) -> tuple[int, str, str]:
    return run_cli("--config", str(path), "check")


# (case id, line to replace, replacement, key path, words in the message, line marker)
MISTAKES = [
    (
        "a key an earlier version read",
        "[delivery.smtp]",
        "[rank]\nsimilarity = 0.5\n\n[delivery.smtp]",
        "rank.similarity",
        "no longer read; it was headline word overlap",
        "similarity = 0.5",
    ),
    (
        "misspelt key",
        'timezone = "UTC"',
        'time_zone = "UTC"',
        "service.time_zone",
        "unknown key; did you mean 'timezone'?",
        "time_zone",
    ),
    (
        "wrong type",
        "weight = 1.0",
        'weight = "heavy"',
        "sources[1].weight",
        "(got 'heavy'); write a number",
        '"heavy"',
    ),
    (
        "a boolean where a number is asked",
        "weight = 1.0",
        "weight = true",
        "sources[1].weight",
        "valid number (got True); write a number",
        "weight = true",
    ),
    (
        "a string where a boolean is asked",
        "weight = 1.0",
        'enabled = "no"',
        "sources[1].enabled",
        "valid boolean (got 'no'); write true or false",
        'enabled = "no"',
    ),
    (
        "a string where a whole number is asked",
        "port = 587",
        'port = "587"',
        "delivery.smtp.port",
        "valid integer (got '587'); write a whole number",
        '"587"',
    ),
    (
        "bad cron expression",
        'schedule = "0 7 * * *"',
        'schedule = "0 25 * * *"',
        "digests[0].schedule",
        "is not a cron expression",
        "0 25",
    ),
    (
        "missing required key",
        'title = "Daily"\n',
        "",
        "digests[0].title",
        "required key is missing; add `title = ...`",
        "[[digests]]",
    ),
    (
        "bad time zone",
        'timezone = "UTC"',
        'timezone = "Mars/Phobos"',
        "service.timezone",
        "unknown time zone 'Mars/Phobos'; use an IANA name",
        "Phobos",
    ),
    (
        "a misspelt time zone: the zone it is closest to",
        'timezone = "UTC"',
        'timezone = "Europe/Lndon"',
        "service.timezone",
        "unknown time zone 'Europe/Lndon'; did you mean 'Europe/London'",
        "Lndon",
    ),
    (
        "a city for a time zone: the zone it names, as for a subscriber",
        'timezone = "UTC"',
        'timezone = "Karachi"',
        "service.timezone",
        "unknown time zone 'Karachi'; did you mean 'Asia/Karachi'?",
        "Karachi",
    ),
    (
        "a region for a time zone (zoneinfo reads it as a folder: was a traceback)",
        'timezone = "UTC"',
        'timezone = "Europe"',
        "service.timezone",
        "unknown time zone 'Europe'; 'Europe' is a region, not a zone: name a place in it, "
        "such as 'Europe/Amsterdam'",
        "Europe",
    ),
    (
        "value out of range, nested table",
        "port = 587",
        "port = 70000",
        "delivery.smtp.port",
        "less than or equal to 65535 (got 70000); write a whole number",
        "70000",
    ),
    (
        "secret written into the file",
        'sender = "Test Desk <news@example.com>"',
        f'sender = "Test Desk <news@example.com>"\nsecret = "{SECRET}"',
        "service.secret",
        "unknown key",
        SECRET,
    ),
    (
        "schedule that never fires",
        'schedule = "0 7 * * *"',
        'schedule = "0 7 31 2 *"',
        "digests[0].schedule",
        "never fires",
        "31 2",
    ),
    (
        "a table's name as a key of another table",
        "port = 587",
        "port = 587\nsources = []",
        "delivery.smtp.sources",
        "`sources` is not a key of [delivery.smtp]: its settings go in [[sources]] tables",
        "sources = []",
    ),
    (
        "a digest's sources named: a digest takes them by topic",
        'schedule = "0 7 * * *"',
        'schedule = "0 7 * * *"\nsources = ["Wire"]',
        "digests[0].sources",
        "a digest takes the stories of every source that has one of its topics: give those "
        "[[sources]] topics = [...] and list the topic in this digest's topics",
        'sources = ["Wire"]',
    ),
    (
        "parent table's key under a sub-table",
        "port = 587",
        'port = 587\ntransport = "smtp"',
        "delivery.smtp.transport",
        "unknown key; `transport` belongs to [delivery]: move it above [delivery.smtp]",
        'transport = "smtp"',
    ),
    (
        "a password in clear to a remote relay",
        "port = 587",
        'port = 25\nhost = "relay.example.net"\nsecurity = "none"\nusername = "digest"',
        "delivery.smtp.username",
        'security = "none" would send the password to relay.example.net in clear',
        'username = "digest"',
    ),
    (
        "misspelt key in a sub-table",
        "port = 587",
        "port = 587\nconections = 2",
        "delivery.smtp.conections",
        "unknown key; did you mean 'connections'?",
        "conections",
    ),
    (
        "a database URL sqlite cannot read (two slashes missing)",
        'timezone = "UTC"',
        'timezone = "UTC"\ndatabase_url = "sqlite:/err.db"',
        "service.database_url",
        "'sqlite:/err.db' is not a database URL; write it as 'sqlite:///digest.db'",
        "err.db",
    ),
    (
        "a page's link selector selectolax cannot read",
        "weight = 1.0",
        'kind = "page"\nlinks = "section.latest >> a"',
        "sources[1].links",
        "'section.latest >> a' is not a CSS selector selectolax can read; write one such as",
        ">> a",
    ),
    (
        "a page's breaking selector selectolax cannot read",
        "weight = 1.0",
        'kind = "page"\nbreaking = ".breaking a["',
        "sources[1].breaking",
        "'.breaking a[' is not a CSS selector",
        "a[",
    ),
    (
        # selectolax reads it (closing the bracket itself), and it matches the div, never a
        # link: it failed later as "matches no article link" (issue 20, point 5)
        "a page's selector with a bracket never closed",
        "weight = 1.0",
        'kind = "page"\nlinks = "div[class=latest a"',
        "sources[1].links",
        "'div[class=latest a' is not a CSS selector selectolax can read: a [ is never closed",
        "latest a",
    ),
    (
        "a page's selector with a quote never closed",
        "weight = 1.0",
        'kind = "page"\nbreaking = \'a[title="Breaking]\'',
        "sources[1].breaking",
        'is not a CSS selector selectolax can read: a " is never closed',
        "title=",
    ),
]


@pytest.mark.parametrize(
    ("old", "new", "key", "words", "marker"),
    [case[1:] for case in MISTAKES],
    ids=[case[0] for case in MISTAKES],
)
def test_check_reports_a_mistake_by_file_line_and_key(
    tmp_path: Path, secret: str, old: str, new: str, key: str, words: str, marker: str
) -> None:
    text = edit(BASE, old, new)
    path = tmp_path / "digest.toml"
    path.write_text(text, encoding="utf-8")

    code, out, err = check(path)

    assert code == 2, err
    assert f"{path}:{line_of(text, marker)}: {key}: " in err
    assert words in err
    assert "Traceback" not in err + out


# Five edits, six mistakes; then (key path, marker of its line) for each report.
ALL_AT_ONCE = [
    ('timezone = "UTC"', 'time_zone = "UTC"\ntimezone = "Europe/Lndon"'),
    ("weight = 1.0", 'weight = "heavy"'),
    ('title = "Daily"\n', ""),
    ('schedule = "0 7 * * *"', 'schedule = "0 7 * *"'),
    ("port = 587", "port = 70000"),
]
REPORTED = [
    ("service.time_zone", "time_zone"),
    ("service.timezone", "Lndon"),
    ("sources[1].weight", '"heavy"'),
    ("digests[0].title", "[[digests]]"),
    ("digests[0].schedule", "0 7 * *"),
    ("delivery.smtp.port", "70000"),
]


def test_check_reports_every_mistake_at_once(tmp_path: Path, secret: str) -> None:
    text = BASE
    for old, new in ALL_AT_ONCE:
        text = edit(text, old, new)
    path = tmp_path / "digest.toml"
    path.write_text(text, encoding="utf-8")

    code, out, err = check(path)

    assert code == 2
    assert "Traceback" not in err + out
    reported = [line.removeprefix("error: ") for line in err.splitlines()]
    for key, marker in REPORTED:
        prefix = f"{path}:{line_of(text, marker)}: {key}: "
        found = [line for line in reported if line.startswith(prefix)]
        assert found, f"{key} not reported at line {line_of(text, marker)}:\n{err}"
        assert re.fullmatch(r".+: .+; .+", found[0]), f"no fix given: {found[0]}"
    assert len([line for line in reported if line.startswith(str(path))]) == len(REPORTED)


@pytest.mark.parametrize(
    ("text", "duplicate"),
    [
        (edit(BASE, 'name = "two"', 'name = "one"'), "sources[1].name"),
        (BASE + '\n[[digests]]\nid = "daily"\ntitle = "Again"\n', "digests[1].id"),
    ],
    ids=["source name", "digest id"],
)
def test_duplicate_names_are_reported_at_the_duplicate(
    tmp_path: Path, secret: str, text: str, duplicate: str
) -> None:
    path = tmp_path / "digest.toml"
    path.write_text(text, encoding="utf-8")
    table = duplicate.split("[")[0]
    value_line = 'name = "one"' if table == "sources" else 'id = "daily"'
    second = [n for n, line in enumerate(text.splitlines(), 1) if line == value_line][1]

    code, _, err = check(path)

    assert code == 2
    assert f"{path}:{second}: {duplicate}: " in err
    assert f"already used by {table}[0]; give each entry of [[{table}]] a unique" in err


DIGESTS_TABLE = '[[digests]]\nid = "daily"\ntitle = "Daily"\nschedule = "0 7 * * *"\n'


@pytest.mark.parametrize(
    ("text", "key", "fix"),
    [
        (edit(BASE, "[service]", 'service = "x"\n[servic]'), "service", "write a [service] table"),
        (
            edit(edit(BASE, DIGESTS_TABLE, ""), "[service]", 'digests = ["daily"]\n[service]'),
            "digests[0]",
            "write each entry as a [[digests]] table",
        ),
        (edit(BASE, "weight = 1.0", 'topics = "world"'), "sources[1].topics", "a list such as"),
        (edit(BASE, "weight = 1.0", "enabled = 3"), "sources[1].enabled", "write true or false"),
        (
            edit(BASE, "port = 587", 'security = "ssl"'),
            "delivery.smtp.security",
            'write one of "starttls", "tls", "none"',
        ),
        (edit(BASE, "port = 587", "port = 25.5"), "delivery.smtp.port", "write a whole number"),
    ],
    ids=["table", "list of tables", "list", "boolean", "choice", "whole number"],
)
def test_a_value_of_the_wrong_shape_says_what_to_write(
    tmp_path: Path, text: str, key: str, fix: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, tmp_path / "digest.toml")
    fixes = {p.key: p.fix for p in caught.value.problems}
    assert fix in fixes[key], fixes


def test_latest_summary_chars_is_0_or_room_for_a_sentence(tmp_path: Path) -> None:
    schedule = 'schedule = "0 7 * * *"'
    for chars in (0, 40, 180):
        text = edit(BASE, schedule, f"{schedule}\nlatest_summary_chars = {chars}")
        assert parse_config(text, tmp_path / "d.toml").digests[0].latest_summary_chars == chars
    with pytest.raises(ConfigError) as caught:
        parse_config(edit(BASE, schedule, f"{schedule}\nlatest_summary_chars = 12"), tmp_path)
    [problem] = caught.value.problems
    assert problem.key == "digests[0].latest_summary_chars"
    chars = default(DigestConfig, "latest_summary_chars")  # the default it names is the real one
    assert problem.what.endswith(
        f"use 40 or more ({chars} is the default), or 0 for headlines only"
    )


def test_a_whole_number_is_still_a_number(tmp_path: Path) -> None:
    text = edit(BASE, "weight = 1.0", "weight = 2")
    text = edit(text, 'schedule = "0 7 * * *"', 'schedule = "0 7 * * *"\nlookback_hours = 12')
    config = parse_config(text, tmp_path / "digest.toml")
    assert config.sources[1].weight == 2.0
    assert isinstance(config.sources[1].weight, float)
    assert config.digests[0].lookback_hours == 12.0


def test_the_topics_are_every_source_s_once_sorted_a_disabled_one_s_too(tmp_path: Path) -> None:
    """The one list the sign-up form, the preferences, the console, `digest subscribers`
    and `digest check` offer and check a topic against."""
    text = edit(BASE, 'name = "one"', 'name = "one"\ntopics = ["world", "science"]')
    text = edit(text, "weight = 1.0", 'weight = 1.0\ntopics = ["arts", "world"]\nenabled = false')
    assert parse_config(text, tmp_path / "digest.toml").topics() == ["arts", "science", "world"]
    assert parse_config(BASE, tmp_path / "digest.toml").topics() == []


def test_wrong_types_in_a_name_do_not_crash_the_duplicate_check(tmp_path: Path) -> None:
    text = edit(BASE, 'name = "one"', 'name = ["one"]')
    text = edit(text, 'name = "two"', 'name = ["one"]')
    with pytest.raises(ConfigError) as caught:
        parse_config(text, tmp_path / "digest.toml")
    assert [p.key for p in caught.value.problems] == ["sources[0].name", "sources[1].name"]


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ('[service]\nname = "x"\nbase_url = "https://x\n', 3),
        ('[service]\nname = "x"\n\n[[sources]\nname = "y"\n', 4),
        ('[service]\nname = "x"\nname = "y"\n', 3),
        ('[service]\nname = """never closed\n\nmore\n', 4),
    ],
    ids=["unterminated string", "unclosed header", "key twice", "open multi-line string"],
)
def test_toml_syntax_error_is_reported_with_its_line(
    tmp_path: Path, secret: str, text: str, line: int
) -> None:
    path = tmp_path / "digest.toml"
    path.write_text(text, encoding="utf-8")

    code, out, err = check(path)

    assert code == 2
    assert f"{path}:{line}: (syntax): not valid TOML" in err
    assert "Traceback" not in err + out


def test_missing_config_file_says_how_to_make_one(tmp_path: Path) -> None:
    code, out, err = check(tmp_path / "nowhere.toml")

    assert code == 2
    assert "nowhere.toml" in err
    assert "no such file" in err
    assert "hint:" in err
    assert "digest init" in err
    assert "Traceback" not in err + out


def test_empty_config_names_each_missing_table(tmp_path: Path) -> None:
    path = tmp_path / "digest.toml"
    path.write_text("", encoding="utf-8")

    code, _, err = check(path)

    assert code == 2
    assert "service: required table is missing; add a [service] table" in err
    assert "sources: required table is missing; add at least one [[sources]] table" in err
    assert "digests: required table is missing; add at least one [[digests]] table" in err


def test_base_dir_cannot_be_set_from_the_file(tmp_path: Path) -> None:
    text = 'base_dir = "/etc"\n' + BASE
    with pytest.raises(ConfigError) as caught:
        parse_config(text, tmp_path / "digest.toml")
    assert [(p.line, p.key, p.what) for p in caught.value.problems] == [
        (1, "base_dir", "unknown key")
    ]


# --- where keys sit: the line scanner -----------------------------------------------------

SCANNED = """\
# a comment = not a key
top = 1
[service]  # trailing comment
name = "a \\" [ quote"
topics = [
  "a]",
  "b",
]
desc = \"\"\"
fake = "inside a string"
\"\"\"
after = 2
smtp.port = 25
[[sources]]
name = "one"
[[sources]]
name = "two"
[sources.extra]
key = 3
[ "delivery" . 'smtp' ]
host = "h"
"""


@pytest.mark.parametrize(
    ("path", "line"),
    [
        (("top",), 2),
        (("service",), 3),
        (("service", "name"), 4),
        (("service", "topics"), 5),
        (("service", "desc"), 9),
        (("service", "after"), 12),
        (("service", "smtp", "port"), 13),
        (("sources", 0), 14),
        (("sources", 0, "name"), 15),
        (("sources", 1, "name"), 17),
        (("sources", 1, "extra", "key"), 19),
        (("delivery", "smtp", "host"), 21),
    ],
    ids=lambda value: "" if isinstance(value, int) else ".".join(map(str, value)),
)
def test_key_lines_finds_each_key(path: tuple[str | int, ...], line: int) -> None:
    lines = key_lines(SCANNED)
    assert lines[path] == line
    assert ("service", "fake") not in lines
    assert ("a comment",) not in lines


# A triple quote that opens nothing: the scanner must not read the rest of the file as one
# string (every later error would then be reported at line 1).
TRIPLE_QUOTES_THAT_OPEN_NOTHING = [
    'name = "Test Desk"  # write """ for a multi-line name',
    "name = '''Test\"\"\"Desk'''",
    'name = \'Test"""Desk\'',
    'name = "Test\\"\\"\\"Desk"',
    'name = """Test\nDesk"""  # closed; not """ again',
    'name = """Test ""Desk"""""',
]


@pytest.mark.parametrize(
    "name",
    TRIPLE_QUOTES_THAT_OPEN_NOTHING,
    ids=[
        "in a comment",
        "in a one-line literal",
        "in a literal string",
        "escaped in a basic string",
        "after a closed multi-line string",
        "five closing quotes",
    ],
)
def test_a_triple_quote_that_opens_nothing_keeps_later_lines_right(
    tmp_path: Path, name: str
) -> None:
    text = edit(edit(BASE, 'name = "Test Desk"', name), "port = 587", "port = 70000")
    tomllib.loads(text)  # each case is valid TOML

    with pytest.raises(ConfigError) as caught:
        parse_config(text, tmp_path / "digest.toml")

    assert [(p.key, p.line) for p in caught.value.problems] == [
        ("delivery.smtp.port", line_of(text, "70000"))
    ]
    assert key_lines(text)[("service", "sender")] == line_of(text, "sender =")


# --- secrets -----------------------------------------------------------------------------


def write_base(tmp_path: Path) -> Path:
    path = tmp_path / "digest.toml"
    path.write_text(BASE, encoding="utf-8")
    return path


# What `digest check` warns about: the config loads, but a send or a webhook would fail here,
# or the config would silently do less than it says. Secrets are warnings, not errors: the
# service may run with an environment this shell does not have.
# (case id, line to replace, replacement, variables: value or None for unset, key, line
# marker, words in the warning)
WARNINGS: list[tuple[str, str, str, dict[str, str | None], str, str, str]] = [
    (
        "signing secret unset",
        "port = 587",
        "port = 587",
        {"DIGEST_SECRET": None},
        "service.secret_env",
        "[service]",
        "$DIGEST_SECRET is not set in this environment; sending needs it; make one once with",
    ),
    (
        "previous secret short",
        "port = 587",
        "port = 587",
        {"DIGEST_PREVIOUS_SECRETS": "abc 0123456789abcdefXYZ"},
        "service.previous_secrets_env",
        "[service]",
        "$DIGEST_PREVIOUS_SECRETS holds 1 value(s) shorter than 16 characters",
    ),
    (
        "signing secret short",
        "port = 587",
        "port = 587",
        {"DIGEST_SECRET": "short"},
        "service.secret_env",
        "[service]",
        "$DIGEST_SECRET is shorter than 16 characters, and sending refuses it",
    ),
    (
        "SMTP password unset",
        "port = 587",
        'port = 587\nusername = "digest"\npassword_env = "DIGEST_SMTP_PASSWORD"\n\n'
        '[delivery]\ntransport = "smtp"',
        {"DIGEST_SMTP_PASSWORD": None},
        "delivery.smtp.password_env",
        "password_env",
        "$DIGEST_SMTP_PASSWORD is not set in this environment; sending needs it",
    ),
    (
        "API key of the transport unset",
        "port = 587",
        'port = 587\n\n[delivery]\ntransport = "resend"',
        {"RESEND_API_KEY": None},
        "delivery.resend.api_key_env",
        "[delivery]",
        "$RESEND_API_KEY is not set in this environment; sending needs it; export RESEND_API_KEY=",
    ),
    (
        "AWS key of SES empty",
        "port = 587",
        'port = 587\n\n[delivery]\ntransport = "ses"',
        {"AWS_ACCESS_KEY_ID": "", "AWS_SECRET_ACCESS_KEY": "set"},
        "delivery.ses.access_key_id_env",
        "[delivery]",
        "$AWS_ACCESS_KEY_ID is not set in this environment; sending needs it",
    ),
    (
        "webhook secret unset",
        "port = 587",
        'port = 587\n\n[webhooks]\nresend_secret_env = "DIGEST_RESEND_HOOK"',
        {"DIGEST_RESEND_HOOK": None},
        "webhooks.resend_secret_env",
        "resend_secret_env",
        "/webhooks/resend needs it: it answers 503 without it; export DIGEST_RESEND_HOOK=",
    ),
    (
        "templates folder missing",
        'timezone = "UTC"',
        'timezone = "UTC"\ntemplates_dir = "nope"',
        {},
        "service.templates_dir",
        "templates_dir",
        "nope, so the built-in templates are used; create the folder",
    ),
    (
        "DKIM without a selector",
        "port = 587",
        'port = 587\n\n[delivery.dkim]\ndomain = "example.com"\nprivate_key_file = "dkim.pem"',
        {},
        "delivery.dkim.selector",
        "[delivery.dkim]",
        "DKIM is off without a selector, so mail goes out unsigned; add selector = ...",
    ),
    (
        "DKIM key variable unset",
        "port = 587",
        'port = 587\n\n[delivery.dkim]\ndomain = "example.com"\nselector = "s1"\n'
        'private_key_env = "DIGEST_DKIM_KEY"',
        {"DIGEST_DKIM_KEY": None},
        "delivery.dkim",
        "[delivery.dkim]",
        "the DKIM key variable $DIGEST_DKIM_KEY is not set",
    ),
    (
        "unsubscribe mailto is the reply-to address",
        'timezone = "UTC"',
        'timezone = "UTC"\nreply_to = "Editors <Desk@example.com>"\n'
        'unsubscribe_mailto = "desk@example.com"',
        {},
        "service.unsubscribe_mailto",
        "unsubscribe_mailto",
        "service.unsubscribe_mailto is desk@example.com, the same address as service.reply_to: "
        "a reader's ordinary reply, quoting the digest, goes where unsubscribe requests go and "
        "could be taken for one; set service.unsubscribe_mailto to an address of its own",
    ),
    (
        "unsubscribe mailto by default is the sender",
        'sender = "Test Desk <news@example.com>"',
        'sender = "Test Desk <unsubscribe@example.com>"',
        {},
        "service.sender",
        "sender",
        "service.unsubscribe_mailto (unset: unsubscribe@ the sender's domain) is "
        "unsubscribe@example.com, the same address as service.sender: a reader's ordinary "
        "reply",
    ),
]


def set_environment(monkeypatch: pytest.MonkeyPatch, variables: dict[str, str | None]) -> None:
    for name, value in variables.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)


@pytest.mark.parametrize(
    ("old", "new", "variables", "key", "marker", "words"),
    [case[1:] for case in WARNINGS],
    ids=[case[0] for case in WARNINGS],
)
def test_check_warns_about_what_would_fail_or_do_less_later(
    tmp_path: Path,
    secret: str,
    monkeypatch: pytest.MonkeyPatch,
    old: str,
    new: str,
    variables: dict[str, str | None],
    key: str,
    marker: str,
    words: str,
) -> None:
    set_environment(monkeypatch, variables)
    text = edit(BASE, old, new)
    path = tmp_path / "digest.toml"
    path.write_text(text, encoding="utf-8")

    code, out, err = check(path)

    assert code == 0, err
    assert err.count("warning: ") == 1, err
    assert f"warning: {path}:{line_of(text, marker)}: {key}: " in err
    assert words in err
    assert f"{path}: ok" in out


# What `digest check` refuses although the config loads: every send would stop on it.
DKIM_THAT_CANNOT_SIGN = [
    ("no key", "", "delivery.dkim has no key; set private_key_file or private_key_env"),
    (
        "key file missing",
        'private_key_file = "missing.pem"',
        "cannot read the DKIM key",
    ),
    ("not a key", 'private_key_file = "dkim.pem"', "the DKIM key cannot sign"),
]


@pytest.mark.parametrize(
    ("key_line", "words"),
    [case[1:] for case in DKIM_THAT_CANNOT_SIGN],
    ids=[case[0] for case in DKIM_THAT_CANNOT_SIGN],
)
def test_check_refuses_dkim_settings_that_cannot_sign(
    tmp_path: Path, secret: str, key_line: str, words: str
) -> None:
    (tmp_path / "dkim.pem").write_text("not a key\n", encoding="utf-8")
    text = BASE + f'\n[delivery.dkim]\ndomain = "example.com"\nselector = "s1"\n{key_line}\n'
    path = tmp_path / "digest.toml"
    path.write_text(text, encoding="utf-8")

    code, out, err = check(path)

    assert code == 2
    assert f"{path}:{line_of(text, '[delivery.dkim]')}: delivery.dkim: " in err
    assert words in err
    assert "ok" not in out
    assert "Traceback" not in err + out


def test_check_is_quiet_when_everything_named_is_there(
    tmp_path: Path, secret: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_environment(monkeypatch, {"RESEND_API_KEY": "re_key", "DIGEST_RESEND_HOOK": "whsec_x"})
    (tmp_path / "mytemplates").mkdir()
    text = edit(BASE, 'timezone = "UTC"', 'timezone = "UTC"\ntemplates_dir = "mytemplates"')
    text += '\n[delivery]\ntransport = "resend"\n'
    text += '\n[webhooks]\nresend_secret_env = "DIGEST_RESEND_HOOK"\n'
    path = tmp_path / "digest.toml"
    path.write_text(text, encoding="utf-8")

    code, out, err = check(path)

    assert code == 0, err
    assert "warning" not in err
    assert "delivery by resend" in out


def test_a_warning_about_a_config_built_in_code_names_the_key_alone(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("DIGEST_SECRET", raising=False)
    config = Config.model_validate(tomllib.loads(BASE))
    assert [str(problem) for problem in warnings_for(config)] == [
        "service.secret_env: $DIGEST_SECRET is not set in this environment; sending needs it; "
        "make one once with python3 -c 'import secrets; print(secrets.token_urlsafe(32))' and "
        "set DIGEST_SECRET to that value where digest runs (its systemd EnvironmentFile, say), "
        "the same on every start: a new secret breaks every link already mailed (the README "
        "says how to rotate one)"
    ]


@pytest.mark.parametrize(
    ("value", "problem"),
    [(None, "is not set"), ("", "is not set"), ("fifteen-chars!!", "shorter than 16")],
)
def test_secret_is_refused_when_unset_or_short(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: str | None, problem: str
) -> None:
    if value is None:
        monkeypatch.delenv("DIGEST_SECRET", raising=False)
    else:
        monkeypatch.setenv("DIGEST_SECRET", value)
    config = parse_config(BASE, tmp_path / "digest.toml")

    with pytest.raises(DigestError) as caught:
        config.secret()

    assert problem in caught.value.message
    assert "$DIGEST_SECRET" in caught.value.message
    assert "set DIGEST_SECRET to that value" in caught.value.hint
    # Never a command that makes a new secret wherever it is pasted (a unit's ExecStartPre,
    # a start script): each start would break every link already mailed.
    assert "$(" not in caught.value.hint and "export DIGEST_SECRET=" not in caught.value.hint


def test_secret_comes_from_the_variable_the_config_names(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTHER_SECRET", "x" * 16)
    text = edit(BASE, 'timezone = "UTC"', 'timezone = "UTC"\nsecret_env = "OTHER_SECRET"')
    assert parse_config(text, tmp_path / "d.toml").secret() == "x" * 16


def test_secret_env_must_name_a_variable_not_hold_a_secret(tmp_path: Path) -> None:
    text = edit(BASE, 'timezone = "UTC"', 'timezone = "UTC"\nsecret_env = "s3cr3t-v@lue!"')
    with pytest.raises(ConfigError) as caught:
        parse_config(text, tmp_path / "digest.toml")
    assert caught.value.problems[0].key == "service.secret_env"
    assert "never the secret itself" in caught.value.problems[0].what


# --- relative paths ------------------------------------------------------------------------


def test_relative_paths_start_at_the_config_files_folder(
    tmp_path: Path, secret: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from digest.sources.fetch import file_path

    home = tmp_path / "conf"
    home.mkdir()
    text = edit(BASE, "https://one.example.com/feed", "file:feeds/one.xml")
    text = edit(text, 'timezone = "UTC"', 'timezone = "UTC"\ndatabase_url = "sqlite:///db/d.db"')
    text += '\n[delivery.maildir]\npath = "mail"\n'
    (home / "digest.toml").write_text(text, encoding="utf-8")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    config = load_config("../conf/digest.toml")

    assert config.base_dir == home
    assert config.resolve_path(config.delivery.maildir.path) == home / "mail"
    assert resolve_url(config.service.database_url, config.base_dir) == (
        f"sqlite:///{home / 'db' / 'd.db'}"
    )
    assert file_path(config.sources[0].url, config.base_dir) == home / "feeds" / "one.xml"
    # Absolute paths are left alone.
    assert config.resolve_path(str(tmp_path / "abs")) == tmp_path / "abs"

    # And the commands use them: the database lands beside the config, not here.
    code, _, err = run_cli("--config", "../conf/digest.toml", "subscribers", "add", "a@example.com")
    assert code == 0, err
    assert (home / "db" / "d.db").exists()
    assert list(elsewhere.iterdir()) == []


async def test_a_relative_file_source_is_read_from_the_config_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import httpx

    from digest.sources.fetch import fetch

    (tmp_path / "conf" / "feeds").mkdir(parents=True)
    (tmp_path / "conf" / "feeds" / "one.xml").write_bytes(b"<rss/>")
    text = edit(BASE, "https://one.example.com/feed", "file:feeds/one.xml")
    (tmp_path / "conf" / "digest.toml").write_text(text, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    config = load_config("conf/digest.toml")
    monkeypatch.chdir("/")

    async with httpx.AsyncClient() as client:
        fetched = await fetch(client, "one", config.sources[0].url, config.base_dir)

    assert fetched.body == b"<rss/>"


# --- digest init -----------------------------------------------------------------------------


def test_init_writes_the_example_and_refuses_to_overwrite(tmp_path: Path, secret: str) -> None:
    target = tmp_path / "new" / "digest.toml"

    code, out, _ = run_cli("--config", str(target), "init")
    assert code == 0
    assert target.read_text(encoding="utf-8") == EXAMPLE.read_text(encoding="utf-8")
    assert "digest check" in out
    assert check(target)[0] == 0

    target.write_text("# my edits\n", encoding="utf-8")
    code, _, err = run_cli("--config", str(target), "init")
    assert code == 2  # bad usage, like every other refusal; 1 is kept for a failed run
    assert f"error: {target} already exists" in err
    assert "--force" in err
    assert "digest --config OTHER.toml init" in err  # the other way out: another path
    assert target.read_text(encoding="utf-8") == "# my edits\n"

    code, _, _ = run_cli("--config", str(target), "init", "--force")
    assert code == 0
    assert target.read_text(encoding="utf-8") == EXAMPLE.read_text(encoding="utf-8")


# --- the example config and the models stay in step ------------------------------------------

_COMMENTED_KEY = re.compile(r"^#\s*([A-Za-z_][A-Za-z0-9_]*\s*=\s*.+)$")


def uncommented(text: str) -> str:
    """The example with every optional ``# key = value`` line switched on."""
    return "\n".join(_COMMENTED_KEY.sub(r"\1", line) for line in text.splitlines()) + "\n"


def _model_in(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return next(filter(None, map(_model_in, typing.get_args(annotation))), None)


def field_paths(model: type[BaseModel], prefix: tuple[str | int, ...] = ()) -> list[tuple]:
    """Every settable key of the models; a list of tables is shown by its first entry."""
    paths: list[tuple] = []
    for name, info in model.model_fields.items():
        if name == "base_dir":  # set from the file's place, never written in it
            continue
        inner = _model_in(info.annotation)
        if inner is None:
            paths.append((*prefix, name))
        elif typing.get_origin(info.annotation) is list:
            paths += field_paths(inner, (*prefix, name, 0))
        else:
            paths += field_paths(inner, (*prefix, name))
    return paths


def dotted(path: tuple) -> str:
    return ".".join(f"[{p}]" if isinstance(p, int) else p for p in path).replace(".[", "[")


def test_field_paths_walks_nested_and_list_models() -> None:
    paths = {dotted(p) for p in field_paths(Config)}
    assert {"sources[0].weight", "digests[0].schedule", "delivery.smtp.host"} <= paths
    assert {"delivery.maildir.path", "service.secret_env", "rank.story_similarity"} <= paths


def test_example_config_validates(secret: str) -> None:
    code, out, err = check(EXAMPLE)
    assert code == 0, err
    assert "is still the example's value" in err  # its placeholders, and only them
    assert err.count("warning: ") == err.count("is still the example's value")
    assert "ok (5 sources (5 enabled), 1 digest, delivery by maildir)" in out
    config = load_config(EXAMPLE)
    assert config.base_dir == ROOT


EXAMPLE_PLACEHOLDERS = [
    ("service.base_url", "https://news.example.org"),
    ("service.sender", "<digest@news.example.org>"),
    ("service.postal_address", "1 Example Street"),
]


def test_check_warns_about_each_placeholder_left_from_the_example(
    tmp_path: Path, secret: str
) -> None:
    """`digest init` then `digest check`: ok, but every example value still there is named."""
    path = tmp_path / "digest.toml"
    text = EXAMPLE.read_text(encoding="utf-8")
    path.write_text(text, encoding="utf-8")

    code, out, err = check(path)

    assert code == 0, err
    warned = [line for line in err.splitlines() if line.startswith("warning: ")]
    assert len(warned) == len(EXAMPLE_PLACEHOLDERS), err
    for (key, marker), line in zip(EXAMPLE_PLACEHOLDERS, warned, strict=True):
        assert line.startswith(f"warning: {path}:{line_of(text, marker)}: {key}: "), line
        assert "still the example's value; replace it with your own" in line
    assert f"{path}: ok" in out

    # The chosen transport's placeholders count; a table nothing reads does not.
    path.write_text(edit(text, '\ntransport = "maildir"', '\ntransport = "smtp"'), encoding="utf-8")
    _, _, err = check(path)
    assert f"{line_of(text, 'smtp.example.org')}: delivery.smtp.host: 'smtp.example.org'" in err
    assert "mg.example.org" not in err

    mine = text.replace("news.example.org", "news.my-paper.net")
    path.write_text(mine.replace("1 Example Street", "1 High Street"), encoding="utf-8")
    _, _, err = check(path)
    assert "warning" not in err


def test_check_counts_enabled_sources_and_says_one_digest(tmp_path: Path, secret: str) -> None:
    path = tmp_path / "digest.toml"
    path.write_text(edit(BASE, "weight = 1.0", "enabled = false"), encoding="utf-8")

    code, out, err = check(path)

    assert code == 0, err
    assert out == f"{path}: ok (2 sources (1 enabled), 1 digest, delivery by maildir)\n"


def test_example_config_documents_every_field() -> None:
    lines = key_lines(uncommented(EXAMPLE.read_text(encoding="utf-8")))
    missing = [dotted(p) for p in field_paths(Config) if p not in lines]
    assert missing == [], f"config.example.toml lacks these keys: {', '.join(missing)}"


def test_example_config_with_every_option_on_still_validates(tmp_path: Path) -> None:
    text = uncommented(EXAMPLE.read_text(encoding="utf-8"))
    assert text != EXAMPLE.read_text(encoding="utf-8"), "expected some `# key = value` lines"
    config = parse_config(text, tmp_path / "digest.toml")
    assert config.service.reply_to is not None
    assert config.delivery.smtp.password_env is not None


def test_every_key_in_the_example_has_a_comment_above_it() -> None:
    text = uncommented(EXAMPLE.read_text(encoding="utf-8"))
    rows = text.splitlines()
    documented = set(field_paths(Config))  # later [[sources]] entries may go bare
    bare = [
        dotted(path)
        for path, line in key_lines(text).items()
        if path in documented and not rows[line - 2].lstrip().startswith("#")
    ]
    assert bare == [], f"these keys have no comment line above them: {', '.join(bare)}"


def toml_value(value: object) -> str:
    """A default as TOML writes it: true, 1.0, "UTC", []."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(map(toml_value, value)) + "]"
    return repr(value)


def field_info(path: tuple) -> FieldInfo:
    """The model field a key path of the config file sets."""
    names = [part for part in path if isinstance(part, str)]
    model: type[BaseModel] | None = Config
    for name in names[:-1]:
        assert model is not None
        model = _model_in(model.model_fields[name].annotation)
    assert model is not None
    return model.model_fields[names[-1]]


def value_at(raw: dict[str, Any], path: tuple) -> Any:
    value: Any = raw
    for part in path:
        value = value[part]
    return value


def comment_above(rows: list[str], line: int) -> str:
    """The comment lines right above 1-based ``line``, joined."""
    above: list[str] = []
    for row in reversed(rows[: line - 1]):
        if not row.lstrip().startswith("#"):
            break
        above.insert(0, row)
    return " ".join(above)


def test_an_example_value_that_is_not_the_default_says_the_default() -> None:
    """Deleting a line brings back the default: the admin must know it is not what was shown."""
    text = EXAMPLE.read_text(encoding="utf-8")
    raw, rows, lines = tomllib.loads(text), text.splitlines(), key_lines(text)
    silent = []
    for path in field_paths(Config):
        info = field_info(path)
        if path not in lines or info.is_required():
            continue
        default = info.get_default(call_default_factory=True)
        said = f"default: {toml_value(default)}"
        if value_at(raw, path) != default and said not in comment_above(rows, lines[path]):
            silent.append(f"{dotted(path)} (line {lines[path]}): its comment must say ({said})")
    assert silent == [], "\n".join(silent)


def test_an_example_key_written_commented_out_is_off_by_default() -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    shown, optional = key_lines(text), key_lines(uncommented(text))
    on = [
        dotted(path)
        for path in field_paths(Config)
        if path in optional and path not in shown and field_info(path).default is not None
    ]
    assert on == [], f"`# key = value` means off, but these have a default: {', '.join(on)}"


def test_example_parses_as_plain_toml() -> None:
    raw = tomllib.loads(EXAMPLE.read_text(encoding="utf-8"))
    assert raw["service"]["secret_env"] == "DIGEST_SECRET"
    assert "secret" not in raw["service"]


def test_check_warns_when_one_host_s_sources_outlast_the_gather_interval(
    tmp_path: Path, secret: str
) -> None:
    """200 feeds of one host, 0.5 s apart (the default politeness), take 100 s: more than a
    gather every minute. The warning names the host, the count, the time and the fixes; a
    host with few sources, and the same feeds at a longer interval, are fine."""
    many = "".join(
        f'\n[[sources]]\nname = "wire {n}"\nurl = "https://feeds.example.net/{n}.xml"\n'
        for n in range(200)
    )
    text = edit(BASE, "[[digests]]", many + "\n[gather]\ninterval_minutes = 1\n\n[[digests]]")
    path = tmp_path / "digest.toml"
    path.write_text(text, encoding="utf-8")

    code, out, err = check(path)

    assert code == 0, err
    assert f"{path}: ok" in out
    assert err.count("warning: ") == 1, err
    assert f"warning: {path}:{line_of(text, 'interval_minutes')}: gather.interval_minutes: " in err
    assert "200 sources on feeds.example.net take at least 100 s" in err
    assert "raise gather.interval_minutes to 2 or more" in err
    assert "lower gather.per_host_delay_seconds" in err

    path.write_text(edit(text, "interval_minutes = 1", "interval_minutes = 2"), encoding="utf-8")
    code, _, err = check(path)
    assert code == 0 and "warning" not in err, err


def test_a_key_that_no_longer_has_an_effect_loads_and_check_says_it_can_go(
    tmp_path: Path, secret: str
) -> None:
    """[rank] sent_penalty lowered a story sent before; such a story is now left out of
    the edition, so the key changes nothing. A file written with it still loads (every
    other key as written), and `digest check` names it and says it has no effect."""
    text = edit(
        BASE, "[delivery.smtp]", "[rank]\nsent_penalty = 2.5\ncue_weight = 0.7\n\n[delivery.smtp]"
    )
    path = tmp_path / "digest.toml"
    path.write_text(text, encoding="utf-8")

    config = load_config(path)
    assert config.rank.cue_weight == 0.7 and "sent_penalty" not in type(config.rank).model_fields
    code, out, err = check(path)

    assert code == 0, err
    assert err.count("warning: ") == 1, err
    line = line_of(text, "sent_penalty")
    assert f"warning: {path}:{line}: rank.sent_penalty: has no effect any more: " in err
    assert "left out of the edition" in err and "remove it from the file" in err
    assert f"{path}: ok" in out
    assert "sent_penalty" not in EXAMPLE.read_text(encoding="utf-8")


def test_retention_takes_a_fraction_of_a_day_and_check_warns_when_bounces_would_find_nothing(
    tmp_path: Path, secret: str
) -> None:
    """Retention in days, a fraction allowed (0.5: 12 hours); delivery rows kept less than
    the two days a bounce can take to come back are valid, with a warning that says why."""
    text = BASE + "\n[retention]\neditions_days = 0.5\ndeliveries_days = 0.25\n"
    path = tmp_path / "digest.toml"
    path.write_text(text, encoding="utf-8")

    code, _, err = check(path)

    assert code == 0, err
    assert err.count("warning: ") == 1, err
    assert f"{path}:{line_of(text, 'deliveries_days')}: retention.deliveries_days: " in err
    assert "delivery rows are kept 6 hours" in err
    assert "set retention.deliveries_days to 2 or more" in err
    config = load_config(path)
    assert (config.retention.editions_days, config.retention.deliveries_days) == (0.5, 0.25)

    path.write_text(edit(text, "deliveries_days = 0.25", "deliveries_days = 0"), encoding="utf-8")
    assert check(path)[0] != 0  # nothing kept at all is refused


def test_a_secret_pasted_in_an_env_key_is_not_repeated_in_the_error() -> None:
    """``secret_env = "<the secret>"``: the error names the line and key, not the value,
    since it goes into a refused reload's record, which `digest status` and the console's
    dashboard show, and the daemon's log."""
    from tests.conftest import config_text

    text = config_text([("Wire", "http://127.0.0.1:9/f.xml")])
    pasted = "hunter2-Pasted-Secret"
    if "secret_env = " in text:
        text = re.sub(r'secret_env = "[^"]*"', f'secret_env = "{pasted}"', text)
    else:
        text = text.replace("[service]\n", f'[service]\nsecret_env = "{pasted}"\n', 1)
    with pytest.raises(ConfigError) as raised:
        parse_config(text, Path("digest.toml"))
    message = raised.value.message
    assert "service.secret_env" in message and "not an environment variable name" in message
    assert pasted not in f"{message} {raised.value.hint}"


def test_a_database_url_that_does_not_parse_is_named_without_its_password() -> None:
    """A mistyped port or scheme: the error shows the URL, its password hidden (the error
    goes into a refused reload's record and the daemon's log), and says how to write one."""
    from tests.conftest import config_text

    good = config_text([("Wire", "http://127.0.0.1:9/f.xml")])
    assert '"sqlite:///digest.db"' in good
    for bad in (
        "postgresql+psycopg://bob:s3cret-pw@db.internal:54x2/digest",
        "postgresql+psycopg//bob:s3cret-pw@db.internal/digest",
    ):
        with pytest.raises(ConfigError) as raised:
            parse_config(good.replace('"sqlite:///digest.db"', f'"{bad}"'), Path("digest.toml"))
        message = raised.value.message
        assert "service.database_url" in message and "is not a database URL" in message
        assert "bob:***@db.internal" in message and "s3cret-pw" not in message
