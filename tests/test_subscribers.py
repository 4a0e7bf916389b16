"""`digest subscribers add/remove/list/import/export` through the real entry point.

A bad CSV row is reported as ``FILE:LINE: what`` and the good rows are kept; an export
imports back as it was; people who unsubscribed are not re-added by an import.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest

from digest.subscribers import CsvHeaderError, NewSubscriber, parse_csv, to_csv
from tests.conftest import run_cli

Cli = Callable[..., tuple[int, str, str]]


# The topics the tests' subscribers choose: a subscriber's topic must be one a source has.
TOPICS = '\n[[sources]]\nname = "two"\nurl = "https://two.example.com/feed"\n' + (
    'topics = ["world", "us", "tech", "science"]\n'
)


@pytest.fixture
def cli(write_config: Callable[..., Path]) -> Cli:
    """``digest --config <a fresh config in tmp_path> ARGS...``."""
    config = write_config([("one", "https://one.example.com/feed")], extra=TOPICS)
    return lambda *args: run_cli("--config", str(config), *args)


def exported(cli: Cli, *options: str) -> list[dict[str, str]]:
    code, out, err = cli("subscribers", "export", *options)
    assert code == 0, err
    return list(csv.DictReader(io.StringIO(out)))


def active(cli: Cli) -> list[str]:
    return [row["email"] for row in exported(cli)]


def write_csv(folder: Path, text: str, name: str = "people.csv") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


# --- add, remove, list -------------------------------------------------------------------


@pytest.mark.parametrize("address", ["not-an-address", "two@@example.com", "a@", "@example.com"])
def test_add_rejects_an_invalid_address(cli: Cli, address: str) -> None:
    code, out, err = cli("subscribers", "add", address)

    assert code == 2  # bad usage (it was 1, as for a failed run)
    assert f"error: {address!r} is not a valid address" in err
    assert "hint:" in err
    assert "Traceback" not in err + out
    assert active(cli) == []


def test_add_rejects_an_unknown_time_zone(cli: Cli) -> None:
    code, _, err = cli("subscribers", "add", "ann@example.com", "--timezone", "Mars/Base")

    assert code == 2  # bad usage (it was 1, as for a failed run)
    assert "unknown time zone 'Mars/Base'; use a name like 'Europe/Paris'" in err
    assert active(cli) == []


@pytest.mark.parametrize(
    ("typed", "said"),
    [
        ("Australia", "unknown time zone 'Australia'; 'Australia' is a region, not a zone"),
        # A region within one: it is the region, not 'America' ('America' was said).
        (
            "america/argentina",
            "unknown time zone 'america/argentina'; 'America/Argentina' is a region, not a "
            "zone: name a place in it, such as 'America/Argentina/Buenos_Aires'",
        ),
        ("x" * 300, "unknown time zone 'xxxxxxxxxx"),  # zoneinfo: "File name too long"
    ],
)
def test_a_region_or_an_overlong_name_as_a_time_zone_is_bad_usage(
    cli: Cli, typed: str, said: str
) -> None:
    """zoneinfo reads a zone from a file named by the value: a region's folder or a name
    too long for a file raised OSError, not the "unknown zone" the check caught (a traceback)."""
    code, out, err = cli("subscribers", "add", "ann@example.com", "--timezone", typed)
    assert code == 2
    assert said in err
    assert "Traceback" not in err + out
    assert active(cli) == []


def test_an_import_of_wrong_zones_reads_the_zone_list_once_not_per_row(
    cli: Cli, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A list from another tool may carry a zone digest does not know on every row (a
    Windows name, 'Eastern Standard Time', or a region). Each refused row's hint read every
    zone file anew (the region check, some 40 ms a row): 500 such rows took 18 s, and the
    console's preview of a 1 MiB file far longer than a proxy waits. The rows are still
    refused, each with its hint."""
    from digest.config.models import base

    walks: list[int] = []
    real = base.available_timezones

    def counted() -> set[str]:
        walks.append(1)
        return real()

    monkeypatch.setattr(base, "available_timezones", counted)
    rows = "".join(
        f"r{i}@example.com,,,{'Eastern Standard Time' if i % 2 else f'Europa{i}'}\n"
        for i in range(60)
    )
    code, out, err = cli(
        "subscribers", "import", str(write_csv(tmp_path, rows + "ok@example.com,,,Asia\n"))
    )
    assert code == 1 and "imported 0 new" in out, out + err
    assert err.count("unknown time zone") == 61
    assert "'Asia' is a region, not a zone" in err
    assert len(walks) <= 1, f"the zone folders were read {len(walks)} times"


def test_a_city_given_as_a_time_zone_is_bad_usage_naming_its_zone(cli: Cli) -> None:
    """Issue 20, point 7: `--timezone Karachi` exited 1 with no way to the right name."""
    code, _, err = cli("subscribers", "add", "ann@example.com", "--timezone", "Karachi")
    assert code == 2
    assert "error: unknown time zone 'Karachi'; did you mean 'Asia/Karachi'?" in err
    assert active(cli) == []


def test_add_rejects_a_name_too_long_to_be_one(cli: Cli) -> None:
    code, _, err = cli("subscribers", "add", "ann@example.com", "--name", "x" * 201)

    assert code == 2  # bad input on the command line, as a control character or a topic
    assert "201 characters long; a name may have at most 200" in err
    assert active(cli) == []


@pytest.mark.parametrize(
    ("name", "shown"),
    [("Bob\r\nBcc: x", "U+000D (a carriage return)"), ("Bob\tBcc", "U+0009 (a tab)"),
     ("Bob\u202egro.live", "U+202E (RIGHT-TO-LEFT OVERRIDE)"), ("Bob\x00", "U+0000"),
     # A byte that is not UTF-8 on the command line arrives as a lone surrogate, which no
     # database or message can hold: refused like a control character, not a traceback.
     ("Bob\udcff", "U+DCFF (a byte that is not UTF-8 text)")],
)  # fmt: skip
def test_add_refuses_a_name_with_a_control_character(cli: Cli, name: str, shown: str) -> None:
    code, out, err = cli("subscribers", "add", "bob@example.com", "--name", name)

    assert code == 2
    assert f"error: the name {name!r} holds {shown}" in err
    assert "a name is one line of printable text" in err
    assert "Traceback" not in out + err
    assert active(cli) == []


def test_add_then_list_shows_every_detail(cli: Cli) -> None:
    long_address = "a-rather-long-address.for-testing@newsletters.example.com"
    code, out, _ = cli(
        "subscribers", "add", "Ann@Example.com", "--name", "Ann",
        "--topic", "world", "--topic", "tech", "--timezone", "Europe/Paris",
    )  # fmt: skip
    assert (code, out) == (0, "added ann@example.com\n")
    assert cli("subscribers", "add", long_address)[0] == 0

    code, out, _ = cli("subscribers", "list")

    assert code == 0
    ann = next(line for line in out.splitlines() if "ann@example.com" in line)
    for detail in ("Ann", "active", "world,tech", "Europe/Paris"):
        assert detail in ann
    assert long_address in out  # never cut short to fit a terminal
    assert out.rstrip().endswith("2 subscribers")


def test_add_refuses_a_topic_no_source_has_and_names_the_known_ones(cli: Cli) -> None:
    code, out, err = cli("subscribers", "add", "ann@example.com", "--topic", "wrld")

    assert code == 2
    assert "error: no source has the topic 'wrld'" in err
    assert "the sources' topics are: science, tech, us, world" in err
    assert "Traceback" not in err + out
    assert active(cli) == []


def test_without_source_topics_a_topic_is_refused_with_a_way_out(
    write_config: Callable[..., Path],
) -> None:
    config = write_config([("one", "https://one.example.com/feed")])

    code, _, err = run_cli(
        "--config", str(config), "subscribers", "add", "a@example.com", "--topic", "x"
    )

    assert code == 2
    assert "no source declares topics: leave the topics out" in err


def test_adding_twice_says_already_subscribed(cli: Cli) -> None:
    cli("subscribers", "add", "ann@example.com")
    code, out, _ = cli("subscribers", "add", "ANN@example.com")
    assert (code, out) == (0, "ann@example.com is already subscribed\n")
    assert active(cli) == ["ann@example.com"]


def test_adding_an_existing_address_with_details_updates_them(cli: Cli) -> None:
    cli("subscribers", "add", "ann@example.com", "--name", "Ann")
    code, out, _ = cli(
        "subscribers", "add", "ann@example.com", "--name", "Ann Lee", "--timezone", "Asia/Tokyo"
    )
    assert (code, out) == (0, "ann@example.com is already subscribed: updated name, timezone\n")
    _, listing, _ = cli("subscribers", "list")
    ann = next(line for line in listing.splitlines() if "ann@example.com" in line)
    assert "Ann Lee" in ann and "Asia/Tokyo" in ann
    code, out, _ = cli("subscribers", "add", "ann@example.com", "--name", "Ann Lee")
    assert out == "ann@example.com is already subscribed\n"  # nothing new: nothing said


def test_remove_then_add_reactivates(cli: Cli) -> None:
    cli("subscribers", "add", "ann@example.com", "--name", "Ann")
    cli("subscribers", "add", "bob@example.com")

    code, out, _ = cli("subscribers", "remove", "Ann@example.com")
    assert (code, out) == (0, "unsubscribed ann@example.com\n")
    assert active(cli) == ["bob@example.com"]
    assert [(r["email"], r["status"]) for r in exported(cli, "--all")] == [
        ("ann@example.com", "unsubscribed"),
        ("bob@example.com", "active"),
    ]
    _, out, _ = cli("subscribers", "list", "--all")
    assert "unsubscribed" in out

    code, out, _ = cli(
        "subscribers", "add", "ann@example.com", "--topic", "science", "--timezone", "Asia/Tokyo"
    )
    assert (code, out) == (0, "re-subscribed ann@example.com (was unsubscribed)\n")
    assert active(cli) == ["ann@example.com", "bob@example.com"]
    ann = exported(cli)[0]
    assert ann["name"] == "Ann"  # the same person, history kept
    assert (ann["topics"], ann["timezone"]) == ("science", "Asia/Tokyo")  # as asked this time


def test_remove_ends_a_paused_or_pending_subscription_and_keeps_a_bounce(
    cli: Cli, tmp_path: Path
) -> None:
    people = (
        "email,status\npia@example.com,paused\npat@example.com,pending\nbo@example.com,bounced\n"
    )
    assert cli("subscribers", "import", str(write_csv(tmp_path, people)))[0] == 0

    assert cli("subscribers", "remove", "pia@example.com")[:2] == (
        0,
        "unsubscribed pia@example.com\n",
    )
    assert cli("subscribers", "remove", "pat@example.com")[:2] == (
        0,
        "unsubscribed pat@example.com\n",
    )
    code, out, _ = cli("subscribers", "remove", "bo@example.com")
    assert (code, out) == (0, "bo@example.com is already bounced: nothing to do\n")
    assert [(r["email"], r["status"]) for r in exported(cli, "--all")] == [
        ("pia@example.com", "unsubscribed"),
        ("pat@example.com", "unsubscribed"),
        ("bo@example.com", "bounced"),
    ]


@pytest.mark.parametrize(
    ("address", "message"),
    [("nobody@example.com", "nobody@example.com is not a subscriber"),
     ("not-an-address", "is not a valid address")],
)  # fmt: skip
def test_remove_refuses_what_it_cannot_remove(cli: Cli, address: str, message: str) -> None:
    code, _, err = cli("subscribers", "remove", address)
    assert code == 1
    assert message in err


# --- import and export ----------------------------------------------------------------------

PEOPLE = """\
email,name,topics,timezone
carl@example.com,Carl,world;us,America/New_York
bad-address,Bad,,
dan@example.com,Dan,,Nowhere/Zone
"eve@example.com","Eve, Jr.",,

CARL@example.com,Carl again,,
fay@example.com,,,Europe/London
"""


def test_import_keeps_good_rows_and_reports_each_bad_one(cli: Cli, tmp_path: Path) -> None:
    people = write_csv(tmp_path, PEOPLE)

    code, out, err = cli("subscribers", "import", str(people))

    assert code == 1
    assert err.splitlines() == [
        f"{people}:3: 'bad-address' is not a valid address: An email address must have an @-sign.",
        f"{people}:4: unknown time zone 'Nowhere/Zone'; use a name like 'Europe/Paris'",
        f"{people}:7: carl@example.com appears twice in the file; the first row is kept",
    ]
    assert out == "imported 3 new, 0 already subscribed, 3 rows with problems\n"
    rows = exported(cli)
    assert [r["email"] for r in rows] == ["carl@example.com", "eve@example.com", "fay@example.com"]
    assert rows[0] == {
        "email": "carl@example.com",
        "name": "Carl",
        "topics": "world;us",
        "timezone": "America/New_York",
        "locale": "",
        "status": "active",
    }
    assert rows[1]["name"] == "Eve, Jr."
    _, listed, _ = cli("subscribers", "list")
    assert "fay@example.com" in listed
    assert "3 subscribers" in listed
    # Someone who left is not listed, but counted, so nobody seems silently lost.
    assert cli("subscribers", "remove", "fay@example.com")[0] == 0
    _, listed, _ = cli("subscribers", "list")
    assert "fay@example.com" not in listed
    assert "2 subscribers (and 1 pending, paused or gone: --all lists them)" in listed


def test_import_refuses_a_topic_no_source_has_with_its_line(cli: Cli, tmp_path: Path) -> None:
    """As `subscribers add` does: a reader with a misspelt topic would never get a story."""
    people = write_csv(tmp_path, "email,topics\nann@example.com,world;wrld\nbob@example.com,tech\n")

    code, out, err = cli("subscribers", "import", str(people))

    assert code == 1
    assert err.splitlines() == [
        f"{people}:2: no source has the topic 'wrld'",
        "hint: the sources' topics are: science, tech, us, world",
    ]
    assert out == "imported 1 new, 0 already subscribed, 1 rows with problems\n"
    assert active(cli) == ["bob@example.com"]


def test_import_maps_another_tools_header_and_refuses_a_column_it_does_not_know(
    cli: Cli, tmp_path: Path
) -> None:
    people = write_csv(
        tmp_path, "Email Address,Full Name,Department\nann@example.com,Ann Lee,science\n"
    )

    code, out, err = cli("subscribers", "import", str(people))

    assert code == 2
    assert f"error: {people}:1: the header names columns digest does not know: 'Department'" in err
    assert "the columns it reads are email (or e-mail, email address, mail); name (or " in err
    assert "topics (or topic, interests)" in err
    assert "hint: rename each column" in err
    assert "Traceback" not in out + err
    assert exported(cli, "--all") == []  # nothing imported: Department is not read as topics

    people.write_text("Email Address,Full Name\nann@example.com,Ann Lee\n", encoding="utf-8")
    assert cli("subscribers", "import", str(people))[:2] == (
        0,
        "imported 1 new, 0 already subscribed, 0 rows with problems\n",
    )
    assert [(r["email"], r["name"], r["topics"]) for r in exported(cli)] == [
        ("ann@example.com", "Ann Lee", "")
    ]


@pytest.mark.parametrize("separator", [";", "\t"], ids=["semicolon", "tab"])
def test_import_reads_a_file_separated_by_semicolons_or_tabs(
    cli: Cli, tmp_path: Path, separator: str
) -> None:
    rows = [
        ["E-mail", "Name", "Topics", "Time zone"],
        ["ann@example.com", "Lee, Ann", "world;tech", "Europe/Paris"],
        ["bob@example.com", "Bob", "", ""],
    ]
    text = io.StringIO()  # as a spreadsheet saves it: a cell holding the separator is quoted
    csv.writer(text, delimiter=separator, lineterminator="\n").writerows(rows)
    people = write_csv(tmp_path, text.getvalue())

    code, out, err = cli("subscribers", "import", str(people))

    assert (code, err) == (0, "")
    assert out == "imported 2 new, 0 already subscribed, 0 rows with problems\n"
    assert [(r["email"], r["name"], r["topics"], r["timezone"]) for r in exported(cli)] == [
        ("ann@example.com", "Lee, Ann", "world;tech", "Europe/Paris"),
        ("bob@example.com", "Bob", "", ""),
    ]


def test_export_neutralises_cells_a_spreadsheet_would_run_and_import_restores_them(
    cli: Cli, tmp_path: Path
) -> None:
    """A name typed into the public form reaches the admin's spreadsheet through export."""
    formula = "=cmd|' /C calc'!A0"
    for address, name in [("a@example.com", formula), ("b@example.com", "+1 Bob"),
                          ("c@example.com", "-Cy"), ("d@example.com", "@Dee"),
                          ("e@example.com", "Eve = Eve"), ("f@example.com", "'=Fay")]:  # fmt: skip
        assert cli("subscribers", "add", address, "--name", name)[0] == 0

    code, out, _ = cli("subscribers", "export")

    assert code == 0
    names = [row[1] for row in csv.reader(io.StringIO(out))][1:]
    assert names == ["'" + formula, "'+1 Bob", "'-Cy", "'@Dee", "Eve = Eve", "''=Fay"]
    assert not any(cell.startswith(("=", "+", "-", "@")) for row in csv.reader(io.StringIO(out))
                   for cell in row)  # fmt: skip
    good, problems = parse_csv(out)  # an import reads the names back as they were
    assert problems == []
    assert [g.name for g in good] == [formula, "+1 Bob", "-Cy", "@Dee", "Eve = Eve", "'=Fay"]


def test_a_formula_behind_spaces_is_neutralised_and_restored() -> None:
    """No door stores a name with leading spaces today, but a row written before may hold
    one, and some spreadsheets trim the spaces on import and run what follows."""
    stored = [" =cmd|' /C calc'!A0", "\u00a0+1", "  Ann", "' -x"]
    rows: list[tuple[str, str | None, str, str | None, str | None, str]] = [
        (f"{n}@example.com", name, "", None, None, "active") for n, name in enumerate(stored)
    ]

    out = to_csv(rows)

    names = [row[1] for row in csv.reader(io.StringIO(out))][1:]
    assert names == ["' =cmd|' /C calc'!A0", "'\u00a0+1", "  Ann", "'' -x"]
    good, problems = parse_csv(out)
    assert problems == []
    assert [g.name for g in good] == ["=cmd|' /C calc'!A0", "+1", "Ann", "' -x"]


def test_export_help_says_how_formulas_are_neutralised(cli: Cli) -> None:
    code, out, _ = cli("subscribers", "export", "--help")
    assert code == 0
    assert "starting with = + - @" in " ".join(out.split())


def test_reimport_counts_already_subscribed(cli: Cli, tmp_path: Path) -> None:
    people = write_csv(tmp_path, PEOPLE)
    cli("subscribers", "import", str(people))

    code, out, _ = cli("subscribers", "import", str(people))

    assert code == 1  # the same bad rows are still bad
    assert out == "imported 0 new, 3 already subscribed, 3 rows with problems\n"
    assert len(active(cli)) == 3


def test_a_clean_import_exits_zero(cli: Cli, tmp_path: Path) -> None:
    people = tmp_path / "people.csv"  # as a spreadsheet saves it: with a byte-order mark
    people.write_text("email,name\nann@example.com\nbob@example.com,Bob\n", encoding="utf-8-sig")
    code, out, err = cli("subscribers", "import", str(people))
    assert (code, err) == (0, "")
    assert out == "imported 2 new, 0 already subscribed, 0 rows with problems\n"


def test_export_round_trips_through_import(
    cli: Cli, tmp_path: Path, write_config: Callable[..., Path]
) -> None:
    cli("subscribers", "import", str(write_csv(tmp_path, PEOPLE)))
    cli("subscribers", "add", "gus@example.com", "--topic", "science")
    cli("subscribers", "remove", "eve@example.com")
    # Every status the store writes travels: a pause, a bounce, a complaint, a pending sign-up.
    others = "email,status\npia@example.com,paused\nbo@example.com,bounced\n" + (
        "cy@example.com,complained\npat@example.com,pending\n"
    )
    cli("subscribers", "import", str(write_csv(tmp_path, others, "others.csv")))
    saved = tmp_path / "saved.csv"
    code, _, err = cli("subscribers", "export", "--all", str(saved))
    assert code == 0
    assert f"wrote 8 subscribers to {saved}" in err

    # A second service with its own config and database.
    other = tmp_path / "other"
    other.mkdir()
    (other / "digest.toml").write_text(
        write_config([("one", "https://one.example.com/feed")], extra=TOPICS).read_text(
            encoding="utf-8"
        )
    )

    def other_cli(*args: str) -> tuple[int, str, str]:
        return run_cli("--config", str(other / "digest.toml"), *args)

    code, out, err = other_cli("subscribers", "import", str(saved))

    assert (code, err) == (0, "")
    assert out == "imported 8 new, 0 already subscribed, 0 rows with problems\n"
    assert exported(other_cli, "--all") == exported(cli, "--all")
    assert active(other_cli) == active(cli)  # unsubscribes and suppressions survive the move
    assert {r["status"] for r in exported(other_cli, "--all")} == {
        "active",
        "unsubscribed",
        "paused",
        "bounced",
        "complained",
        "pending",
    }


def test_import_does_not_resubscribe_people_who_left(cli: Cli, tmp_path: Path) -> None:
    cli("subscribers", "add", "ann@example.com")
    cli("subscribers", "remove", "ann@example.com")

    code, out, err = cli("subscribers", "import", str(write_csv(tmp_path, "ann@example.com\n")))

    assert code == 0
    assert "1 unsubscribed earlier (not re-added)" in out
    assert "digest subscribers add" in err
    assert active(cli) == []


def test_import_refuses_a_file_that_is_not_utf8(cli: Cli, tmp_path: Path) -> None:
    people = tmp_path / "people.csv"
    people.write_bytes("email,name\nzoë@example.com,Zoë\n".encode("utf-16"))

    code, out, err = cli("subscribers", "import", str(people))

    assert code == 1
    assert "is not UTF-8 text" in err
    assert "Traceback" not in out + err


def test_export_without_a_file_writes_csv_to_stdout(cli: Cli) -> None:
    cli("subscribers", "add", "ann@example.com", "--name", "Ann, the First")
    code, out, _ = cli("subscribers", "export")
    assert code == 0
    assert out == (
        'email,name,topics,timezone,locale,status\nann@example.com,"Ann, the First",,,,active\n'
    )


# --- the CSV reader on its own ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "good", "problems"),
    [
        ("a@example.com\n", [NewSubscriber("a@example.com")], []),
        ("EMAIL\nA@Example.COM\n", [NewSubscriber("a@example.com")], []),
        (
            "name,email\nAnn,ann@example.com\n",
            [NewSubscriber("ann@example.com", "Ann")],
            [],
        ),
        (
            "# exported today\nemail,topics\nann@example.com, world ; tech \n",
            [NewSubscriber("ann@example.com", topics=("world", "tech"))],
            [],
        ),
        (
            'email,name\nann@example.com,"Ann\nof two lines"\nbad,x\ncy@example.com,Cy\n',
            [NewSubscriber("cy@example.com", "Cy")],
            [
                (
                    2,
                    "the name 'Ann\\nof two lines' holds U+000A (a line feed); a name is one "
                    "line of printable text",
                ),
                (4, "'bad' is not a valid address: An email address must have an @-sign."),
            ],
        ),
        (
            "Email Address,First Name,Last Name,Time Zone,Language,Interests,STATUS\n"
            "ann@example.com,Ann,Lee,Asia/Tokyo,fr,world;tech,paused\n"
            "bob@example.com,Bob,,,,,\n",
            [
                NewSubscriber(
                    "ann@example.com", "Ann Lee", ("world", "tech"), "Asia/Tokyo", "paused", "fr"
                ),
                NewSubscriber("bob@example.com", "Bob"),
            ],
            [],
        ),
        (
            "email;name;topics\nann@example.com;Lee, Ann;world\n",
            [NewSubscriber("ann@example.com", "Lee, Ann", ("world",))],
            [],
        ),
        (
            "email\tname\nann@example.com\tAnn\n",
            [NewSubscriber("ann@example.com", "Ann")],
            [],
        ),
        (
            "ann@example.com;Ann\nbob@example.com;Bob\n",
            [NewSubscriber("ann@example.com", "Ann"), NewSubscriber("bob@example.com", "Bob")],
            [],
        ),
        (
            "ann@example.com,Ann,world;tech\n",
            [NewSubscriber("ann@example.com", "Ann", ("world", "tech"))],
            [],
        ),
        (
            "email,status\nann@example.com,unsubscribed\nbob@example.com,gone\n",
            [NewSubscriber("ann@example.com", status="unsubscribed")],
            [
                (
                    3,
                    "unknown status 'gone'; use one of active, pending, paused, unsubscribed,"
                    " bounced, complained",
                )
            ],
        ),
    ],
    ids=[
        "no header",
        "capitals",
        "columns in another order",
        "comment first, spaces",
        "a cell over two lines",
        "another tool's header",
        "semicolons",
        "tabs",
        "semicolons, no header",
        "no header, topics",
        "status column",
    ],
)
def test_parse_csv(text: str, good: list[NewSubscriber], problems: list[tuple[int, str]]) -> None:
    assert parse_csv(text) == (good, problems)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("email,nickname\nann@example.com,Annie\n",
         "the header names columns digest does not know: 'nickname'; the columns it reads are "
         "email (or e-mail, email address, mail); name (or full name, display name); first name "
         "(or given name); last name (or surname, family name); topics (or topic, interests); "
         "timezone (or time zone, tz); locale (or language, lang); status"),
        ("# from the CRM\nEmail,Mail\na@example.com,b@example.com\n",
         "the header has 2 email columns: Email, Mail"),
        ("Name,Topics\nAnn,world\n", "the header has no email column; the columns it reads"),
        ("Correo,Nombre\nann@example.com,Ann\n",
         "line 1 has no address, so it is read as a header, but digest knows none of its "
         "columns: 'Correo', 'Nombre'; the columns it reads are email (or e-mail, "),
    ],
    ids=["unknown column", "twice the same column", "no email column", "no known column"],
)  # fmt: skip
def test_parse_csv_refuses_a_header_it_cannot_map(text: str, message: str) -> None:
    with pytest.raises(CsvHeaderError) as caught:
        parse_csv(text)
    assert str(caught.value).startswith(message)
    assert caught.value.line == (2 if text.startswith("#") else 1)


def test_parse_csv_refuses_a_topic_not_in_the_list_with_its_line() -> None:
    good, problems = parse_csv(
        "email,topics\na@example.com,world\nb@example.com,world;wrld;x\n", ["world"]
    )
    assert good == [NewSubscriber("a@example.com", topics=("world",))]
    assert problems == [(3, "no source has the topic 'wrld', 'x'")]


def test_import_help_names_every_column_the_readme_lists(cli: Cli) -> None:
    code, out, _ = cli("subscribers", "import", "--help")

    assert code == 0
    assert "email,name,topics,timezone,locale,status" in " ".join(out.split())


# --- list: filters and JSON (issue 20, point 8) -----------------------------------------------

FILTERED = (
    "email,name,topics,timezone,locale,status\n"
    "ann@example.com,Ann Lee,tech,,,active\n"
    "bob@example.com,Bob Stone,world;tech,,,active\n"
    "cy@other.org,Cy Annex,world,,,paused\n"
    "dee@other.org,Dee,,,,unsubscribed\n"
    "eve@example.com,Eve,science,,,active\n"
)


def listed(cli: Cli, *options: str) -> list[str]:
    code, out, err = cli("subscribers", "list", "--json", *options)
    assert code == 0, err
    return [person["email"] for person in json.loads(out)]


def test_list_filters_by_status_topic_and_text(cli: Cli, tmp_path: Path) -> None:
    assert cli("subscribers", "import", str(write_csv(tmp_path, FILTERED)))[0] == 0
    assert listed(cli) == ["ann@example.com", "bob@example.com", "eve@example.com"]
    assert listed(cli, "--status", "paused", "--status", "unsubscribed") == [
        "cy@other.org",
        "dee@other.org",
    ]
    # tech's readers: those who chose it, and Dee chose none (every topic) but left
    assert listed(cli, "--topic", "tech") == ["ann@example.com", "bob@example.com"]
    assert listed(cli, "--all", "--topic", "world") == [
        "bob@example.com",
        "cy@other.org",
        "dee@other.org",
    ]
    # a substring of the address or of the name, in any case
    assert listed(cli, "--all", "--search", "ANN") == ["ann@example.com", "cy@other.org"]
    assert listed(cli, "--all", "--search", "other.org") == ["cy@other.org", "dee@other.org"]
    assert listed(cli, "--search", "%") == []  # a LIKE wildcard is a plain character


def test_list_json_gives_every_detail(cli: Cli, tmp_path: Path) -> None:
    cli(
        "subscribers",
        "add",
        "ann@example.com",
        "--name",
        "Ann",
        "--topic",
        "tech",
        "--topic",
        "world",
        "--timezone",
        "Asia/Karachi",
        "--locale",
        "fr",
    )
    code, out, _ = cli("subscribers", "list", "--json")
    assert code == 0
    (person,) = json.loads(out)
    assert person.pop("since").startswith(str(datetime.now(UTC).year))
    assert person == {
        "email": "ann@example.com",
        "name": "Ann",
        "status": "active",
        "topics": ["tech", "world"],
        "timezone": "Asia/Karachi",
        "locale": "fr",
    }


def test_list_refuses_a_topic_no_source_has(cli: Cli) -> None:
    code, _, err = cli("subscribers", "list", "--topic", "cooking")
    assert code == 2
    assert "no source has the topic 'cooking'" in err


def test_list_says_how_many_a_filter_found(cli: Cli, tmp_path: Path) -> None:
    cli("subscribers", "import", str(write_csv(tmp_path, FILTERED)))
    code, out, _ = cli("subscribers", "list", "--search", "bob")
    assert code == 0
    assert "bob@example.com" in out and "ann@example.com" not in out
    assert out.splitlines()[-1] == "1 subscriber found"
