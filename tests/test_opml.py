"""``digest sources import FILE.opml``: new feeds appended as [[sources]], the rest skipped."""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from pathlib import Path

import pytest

from digest.errors import DigestError
from digest.sources.opml import OpmlFeed, append_sources, plan_import, read_opml
from tests.conftest import run_cli

OPML = """<?xml version="1.0" encoding="UTF-8"?>
<opml version="2.0">
  <head><title>My subscriptions</title></head>
  <body>
    <outline text="World" title="World">
      <outline type="rss" text="Lantern World" title="Lantern World"
               xmlUrl="https://lantern.example/world/feed.xml" htmlUrl="https://lantern.example/world"/>
      <outline type="rss" text="Already here (other name)"
               xmlUrl="https://already.example/feed.xml#top"/>
    </outline>
    <outline text="Tech">
      <outline type="rss" text="Byte &amp; Bolt &lt;b&gt;Weekly&lt;/b&gt;"
               xmlUrl="https://byte.example/rss?utm_source=reader"/>
      <outline type="rss" text="Existing" xmlUrl="https://new-address.example/feed"/>
      <outline type="rss" xmlUrl="https://nameless.example/atom.xml"/>
      <outline type="rss" text="Local file" xmlUrl="file:///etc/passwd"/>
      <outline type="rss" text="Lantern World again" xmlUrl="https://lantern.example/world/feed.xml"/>
    </outline>
    <outline type="link" text="Just a web page" url="https://example.org/"/>
  </body>
</opml>
"""

COMMENTED = """# My digest config: comments must survive an import.
"""


@pytest.fixture
def config(write_config: Callable[..., Path]) -> Path:
    path = write_config(
        [("Existing", "https://already.example/feed.xml")],
        extra="\n# Keep this comment: it explains the sources above.\n",
    )
    path.write_text(COMMENTED + path.read_text(encoding="utf-8"), encoding="utf-8")
    return path


def write_opml(tmp_path: Path, text: str = OPML) -> Path:
    path = tmp_path / "subscriptions.opml"
    path.write_text(text, encoding="utf-8")
    return path


def test_import_adds_new_feeds_and_skips_known_ones(config: Path, tmp_path: Path) -> None:
    before = config.read_text(encoding="utf-8")
    code, out, err = run_cli(
        "--config", str(config), "sources", "import", str(write_opml(tmp_path))
    )
    assert code == 0, err
    assert out.splitlines() == [
        "  skip  Already here (other name): https://already.example/feed.xml#top is already a "
        "source",
        "  skip  Existing: a source of that name exists already",
        "  skip  Local file: 'file:///etc/passwd' is not an http(s) address",
        "  skip  Lantern World again: https://lantern.example/world/feed.xml is already a source",
        "  add   Lantern World: https://lantern.example/world/feed.xml",
        "  add   Byte & Bolt Weekly: https://byte.example/rss?utm_source=reader",
        "  add   nameless.example: https://nameless.example/atom.xml",
        f"3 added, 4 skipped; wrote {config}",
    ]
    after = config.read_text(encoding="utf-8")
    assert after.startswith(before)  # every byte kept, comments included
    sources = tomllib.loads(after)["sources"]
    assert [(s["name"], s["url"], s.get("kind")) for s in sources] == [
        ("Existing", "https://already.example/feed.xml", None),
        ("Lantern World", "https://lantern.example/world/feed.xml", "feed"),
        ("Byte & Bolt Weekly", "https://byte.example/rss?utm_source=reader", "feed"),
        ("nameless.example", "https://nameless.example/atom.xml", "feed"),
    ]
    code, out, err = run_cli("--config", str(config), "check")
    assert code == 0, out + err


def test_a_second_import_adds_nothing(config: Path, tmp_path: Path) -> None:
    opml = str(write_opml(tmp_path))
    assert run_cli("--config", str(config), "sources", "import", opml)[0] == 0
    once = config.read_text(encoding="utf-8")
    code, out, _ = run_cli("--config", str(config), "sources", "import", opml)
    assert code == 0
    assert out.splitlines()[-1] == f"0 to add, 7 skipped; {config} unchanged"
    assert config.read_text(encoding="utf-8") == once


def test_dry_run_changes_nothing(config: Path, tmp_path: Path) -> None:
    before = config.read_text(encoding="utf-8")
    code, out, _ = run_cli(
        "--config", str(config), "sources", "import", "--dry-run", str(write_opml(tmp_path))
    )
    assert code == 0
    assert "  would add   Lantern World: https://lantern.example/world/feed.xml" in out
    assert config.read_text(encoding="utf-8") == before


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("<opml><body><outline", "not well-formed XML"),
        ('<rss version="2.0"><channel/></rss>', "is not OPML"),
        (
            '<?xml version="1.0"?><!DOCTYPE o [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
            '<opml><body><outline text="&x;" xmlUrl="https://a.example/f"/></body></opml>',
            "refuses for safety",
        ),
    ],
)
def test_a_bad_opml_file_is_an_error_and_nothing_is_written(
    config: Path, tmp_path: Path, text: str, message: str
) -> None:
    before = config.read_text(encoding="utf-8")
    code, _, err = run_cli(
        "--config", str(config), "sources", "import", str(write_opml(tmp_path, text))
    )
    assert code == 1
    assert message in err and "hint: export the subscription list again" in err
    assert config.read_text(encoding="utf-8") == before
    with pytest.raises(DigestError, match=message):
        read_opml(text.encode())


def test_sources_without_a_subcommand_still_prints_the_health_table(config: Path) -> None:
    code, out, err = run_cli("--config", str(config), "sources")
    assert code == 0, err
    assert "source" in out and "last success" in out


def test_plan_and_append_are_pure() -> None:
    feeds = [OpmlFeed('Quote " and \\ backslash', "https://q.example/feed")]
    plan = plan_import(feeds, names=[], urls=[])
    text = append_sources("[service]\nname = 'x'", plan.added)
    assert tomllib.loads(text)["sources"][0]["name"] == 'Quote " and \\ backslash'
    assert append_sources("a = 1\n", []) == "a = 1\n"


def test_an_internal_address_in_a_list_from_elsewhere_is_not_added(
    config: Path, tmp_path: Path
) -> None:
    """An OPML file is someone else's list: a "feed" at the metadata service's address, on
    this machine or on a private network would have the gather request it (and mail what
    it found), so it is skipped, saying why and how to add it knowingly."""
    opml = """<?xml version="1.0"?><opml version="2.0"><head/><body>
      <outline type="rss" text="Metadata" xmlUrl="http://169.254.169.254/latest/meta-data/"/>
      <outline type="rss" text="Router" xmlUrl="http://192.168.1.1/feed"/>
      <outline type="rss" text="Here" xmlUrl="http://localhost:8080/admin/feed"/>
      <outline type="rss" text="Numbers" xmlUrl="http://2852039166/latest/meta-data/"/>
      <outline type="rss" text="Harbour News" xmlUrl="https://harbour.example/feed"/>
    </body></opml>"""
    code, out, err = run_cli(
        "--config", str(config), "sources", "import", str(write_opml(tmp_path, opml))
    )
    assert code == 0, err
    lines = out.splitlines()
    for name, url, where in (
        ("Metadata", "http://169.254.169.254/latest/meta-data/", "a link-local network"),
        ("Router", "http://192.168.1.1/feed", "a private network"),
        ("Here", "http://localhost:8080/admin/feed", "this machine (loopback)"),
        ("Numbers", "http://2852039166/latest/meta-data/", "a link-local network"),
    ):
        assert any(
            line.startswith(f"  skip  {name}: {url} is on {where}") and "by hand" in line
            for line in lines
        ), lines
    assert "  add   Harbour News: https://harbour.example/feed" in lines
    urls = [s["url"] for s in tomllib.loads(config.read_text(encoding="utf-8"))["sources"]]
    assert urls == ["https://already.example/feed.xml", "https://harbour.example/feed"]
