"""Errors keep their cause: the tree in errors.py's docstring is the code's, and the CLI shows
the chained cause at -vv (and only the message and hint without it)."""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Callable
from pathlib import Path

import digest
import digest.errors
from tests.conftest import free_port, run_cli


def _drawn_tree() -> dict[str, str | None]:
    """Each class drawn in the docstring, mapped to the class it hangs under."""
    parents: dict[str, str | None] = {}
    stack: list[tuple[int, str]] = []
    for line in (digest.errors.__doc__ or "").splitlines():
        match = re.match(r"^(\s*(?:[│ ]\s*)*(?:[├└]── )?)([A-Z]\w+(?:Error|Exception))\b", line)
        if not match:
            continue
        depth = len(match.group(1))
        while stack and stack[-1][0] >= depth:
            stack.pop()
        parents[match.group(2)] = stack[-1][1] if stack else None
        stack.append((depth, match.group(2)))
    return parents


def test_every_exception_in_errors_is_drawn_in_the_docstring_under_its_base() -> None:
    classes = {
        name: cls
        for name, cls in vars(digest.errors).items()
        if inspect.isclass(cls)
        and issubclass(cls, BaseException)
        and cls.__module__ == "digest.errors"
    }
    drawn = _drawn_tree()
    assert set(drawn) == set(classes), "the docstring's tree and the classes differ"
    for name, cls in classes.items():
        base = cls.__bases__[0]
        expected = base.__name__ if base.__module__ == "digest.errors" else None
        assert drawn[name] == expected, f"{name} is drawn under {drawn[name]}, not {expected}"


def test_from_none_is_kept_only_with_a_comment_saying_why() -> None:
    root = Path(digest.__file__).parent
    bare = [
        f"{path.relative_to(root.parent)}:{number}"
        for path in root.rglob("*.py")
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if line.rstrip().endswith(" from None")  # a raise ... from None with no comment after it
    ]
    assert bare == [], "chain the cause (`from exc`), or say why it is hidden"


def test_the_cli_shows_the_chained_cause_at_vv_and_only_message_and_hint_without(
    tmp_path: Path,
) -> None:
    config = tmp_path / "digest.toml"
    config.write_bytes(b"title = '\xff'\n")  # not UTF-8: reading it fails with the decoder's error

    code, _, err = run_cli("--config", str(config), "check")
    assert code == 2
    assert "error:" in err and "hint:" in err
    assert "Traceback" not in err

    code, _, err = run_cli("-vv", "--config", str(config), "check")
    assert code == 2
    assert "Traceback" in err
    assert "UnicodeDecodeError" in err
    assert "The above exception was the direct cause of the following exception" in err
    assert err.rstrip().splitlines()[-1].startswith("hint:")  # the friendly lines come last


def test_json_logs_at_vv_carry_the_cause(tmp_path: Path) -> None:
    config = tmp_path / "digest.toml"
    config.write_bytes(b"title = '\xff'\n")
    code, _, err = run_cli("-vv", "--log-json", "--config", str(config), "check")
    assert code == 2
    documents = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    traced = [d for d in documents if "exception" in d]
    assert traced, err
    assert "UnicodeDecodeError" in traced[0]["exception"]
    assert "ConfigError" in traced[0]["exception"]


def test_a_failed_source_is_logged_with_its_cause_at_vv(
    write_config: Callable[..., Path],
) -> None:
    url = f"http://127.0.0.1:{free_port()}/feed.xml"  # nothing listens there
    config = write_config([("Gone", url)], timeout=2.0)

    _, out, err = run_cli("--config", str(config), "gather")  # said once, in the table
    assert "cannot connect" in out and "cannot connect" not in err and "Traceback" not in err

    _, _, err = run_cli("-vv", "--config", str(config), "gather")
    assert "Traceback" in err and "ConnectError" in err
    assert "The above exception was the direct cause of the following exception" in err
