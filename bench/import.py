"""Rows per second and peak memory of `digest subscribers import`, against the row-at-a-time
import it replaced.

A CSV as an HR system exports it (``Email Address,First Name,Last Name,Department``-style
header mapped by name, a topic and a time zone per row, one bad address every 10,000 rows)
is imported by the real ``digest subscribers import`` in a child process of its own, whose
peak resident memory (ru_maxrss) is the figure. The baseline is the old import, one ORM
insert, commit and refresh per row (``Store.add_subscriber``), on fewer rows in the same run
(it takes ~1 ms a row), scaled to the full count.

    .venv/bin/python bench/import.py [--rows 1000000] [--naive 20000] [--postgres URL]

With ``--postgres`` (a server URL such as ``postgresql+psycopg://postgres@127.0.0.1:5432/
postgres``; ``scripts/_services.sh start_postgres`` starts one) both runs go to a fresh
database on that server instead of SQLite. Last line: one JSON object of the figures.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CONFIG = """[service]
name = "Bench Desk"
base_url = "https://digest.test"
timezone = "UTC"
database_url = "{database}"
sender = "Bench Desk <news@example.com>"
postal_address = "1 Bench Street"
secret_env = "DIGEST_SECRET"

[[digests]]
id = "daily"
title = "Daily"
schedule = "0 7 * * *"

[delivery]
transport = "maildir"

[delivery.maildir]
path = "mail"

[[sources]]
name = "wire"
url = "https://wire.example.com/feed"
topics = ["technology", "science", "business"]
"""
TOPICS = ("technology", "science", "business")
ZONES = ("Europe/Paris", "America/New_York", "Asia/Karachi", "")


def write_csv(path: Path, rows: int) -> None:
    """An HR-style export of ``rows`` people, one bad address every 10,000."""
    with path.open("w", encoding="utf-8") as out:
        out.write("Email Address,First Name,Last Name,Interests,Time Zone\n")
        for i in range(rows):
            address = f"person{i}.example.com" if i % 10_000 == 9_999 else f"person{i}@example.com"
            out.write(f"{address},Given{i},Family{i},{TOPICS[i % 3]},{ZONES[i % 4]}\n")


def child(mode: str, config: Path, csv_file: Path) -> None:
    """One import in this process; prints its wall time and peak memory as JSON."""
    start = time.perf_counter()
    if mode == "ours":
        from digest.cli import main

        sys.argv = ["digest", "--config", str(config), "subscribers", "import", str(csv_file)]
        with contextlib.suppress(SystemExit):  # it exits 1: the file has bad rows
            main()
    else:  # the import before chunks: parse everything, then one ORM round trip a row
        from digest.app import App
        from digest.config import load_config
        from digest.subscribers import parse_csv

        app = App.open(load_config(config))
        good, _ = parse_csv(csv_file.read_text(encoding="utf-8-sig"), TOPICS)
        known = {s.email: s.status for s in app.store.subscribers()}
        for s in good:
            if s.email not in known:
                app.store.add_subscriber(s.email, s.name, s.topics, s.timezone, s.locale)
        app.close()
    wall = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"wall_s": round(wall, 2), "peak_mb": round(peak, 1)}), file=sys.stderr)


def run(mode: str, rows: int, folder: Path, database: str) -> dict[str, float]:
    """Import ``rows`` people into a fresh database by ``mode``; its figures."""
    work = folder / f"{mode}-{rows}"
    work.mkdir()
    config = work / "digest.toml"
    config.write_text(CONFIG.format(database=database), encoding="utf-8")
    csv_file = work / "people.csv"
    write_csv(csv_file, rows)
    done = subprocess.run(
        [sys.executable, __file__, "--child", mode, str(config), str(csv_file)],
        cwd=work,
        env={**os.environ, "DIGEST_SECRET": "bench-secret-0123456789-abcdefghij"},
        capture_output=True,
        text=True,
        check=False,
    )
    figures = json.loads(done.stderr.strip().splitlines()[-1])
    if mode == "ours":
        bad = rows // 10_000
        expected = f"imported {rows - bad} new, 0 already subscribed, {bad} rows with problems"
        if done.stdout.strip() != expected:
            raise SystemExit(f"unexpected result: {done.stdout!r} (wanted {expected!r})")
    figures["rows_per_s"] = round(rows / figures["wall_s"])
    return figures


def fresh_database(server: str | None, folder: Path, name: str) -> str:
    """A SQLite file in ``folder``, or a new database on the PostgreSQL ``server``."""
    if server is None:
        return f"sqlite:///{folder / (name + '.db')}"
    from tests.pg import create_database

    return create_database(server, f"digest_bench_{name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--naive", type=int, default=20_000, help="rows for the baseline")
    parser.add_argument("--postgres", default=None, help="a PostgreSQL server URL")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        mode, config, csv_file = args.child
        child(mode, Path(config), Path(csv_file))
        return
    engine = "postgresql" if args.postgres else "sqlite"
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        ours = run("ours", args.rows, folder, fresh_database(args.postgres, folder, "ours"))
        naive = run("naive", args.naive, folder, fresh_database(args.postgres, folder, "naive"))
    naive_full_s = args.rows / naive["rows_per_s"]
    print(f"{engine}: ours {args.rows:,} rows in {ours['wall_s']} s ({ours['rows_per_s']:,}/s),")
    print(f"  peak {ours['peak_mb']} MB; naive {args.naive:,} rows in {naive['wall_s']} s")
    print(f"  ({naive['rows_per_s']:,}/s, ~{naive_full_s:,.0f} s for {args.rows:,})")
    print(
        json.dumps(
            {
                "engine": engine,
                "rows": args.rows,
                "import_s": ours["wall_s"],
                "import_peak_mb": ours["peak_mb"],
                "rows_per_s": ours["rows_per_s"],
                "naive_rows": args.naive,
                "naive_s": naive["wall_s"],
                "naive_rows_per_s": naive["rows_per_s"],
                "naive_peak_mb": naive["peak_mb"],
                "speedup_x": round(ours["rows_per_s"] / naive["rows_per_s"], 1),
                "under_2_min": ours["wall_s"] < 120,
                "under_300_mb": ours["peak_mb"] < 300,
            }
        )
    )


if __name__ == "__main__":
    main()
