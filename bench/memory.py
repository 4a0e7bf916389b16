"""Where a long-running daemon's memory goes: the soak's jobs run in this process, with a
tracemalloc snapshot, the RSS and the garbage collector's counts between them.

A leak grows with every job, in the same lines, for as long as it runs; warm-up grows over
the first jobs and stops (caches filling, the allocator keeping freed arenas). The script
prints the growth between the warm-up's end and the last job, by source line, and:

    .venv/bin/python bench/memory.py [--jobs 12] [--subscribers 500]

Last line: one JSON object (traced MB and RSS per job, their slopes after warm-up).
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import ctypes.util
import gc
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import tracemalloc
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import soak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=8, help="gather + send rounds")
    parser.add_argument("--warm-up", type=int, default=3, help="rounds before comparing")
    parser.add_argument("--feeds", type=int, default=200)
    parser.add_argument("--subscribers", type=int, default=500)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="digest-memory-"))
    feeds = soak.Feeds(args.feeds, 20, period=15.0)
    server, _ = soak.serve(feeds)
    smtp_port = soak.free_port()
    sink = subprocess.Popen(
        [sys.executable, "-c", soak.SINK, str(smtp_port), str(work / "sink.json")]
    )
    (work / "digest.toml").write_text(soak.config(server.server_address[1], smtp_port, args.feeds))
    soak.subscribers_csv(work / "subscribers.csv", args.subscribers)
    os.chdir(work)
    os.environ["DIGEST_SECRET"] = "soak-secret-" + "x" * 32

    from digest.app import App
    from digest.cli import main as cli_main
    from digest.config import load_config
    from digest.jobs import gather_job, send_job

    sys.argv = ["digest", "--config", "digest.toml", "subscribers", "import", "subscribers.csv"]
    with contextlib.suppress(SystemExit):
        cli_main()
    app = App.open(load_config(work / "digest.toml"))
    time.sleep(1.0)
    tracemalloc.start(1)  # one frame: deeper ones made a round ten times slower
    libc = ctypes.CDLL(None)
    sqlite = ctypes.CDLL(ctypes.util.find_library("sqlite3") or "libsqlite3.so.0")
    sqlite.sqlite3_memory_used.restype = ctypes.c_int64
    rounds: list[dict[str, float]] = []
    snapshots: dict[int, tracemalloc.Snapshot] = {}
    start = datetime.now(UTC).replace(second=0, microsecond=0)
    try:
        for i in range(args.jobs):
            feeds.tick()
            began = time.monotonic()
            gather_job(app)
            send_job(app, "soak", at=start + timedelta(minutes=2 * (i + 1)), gather_first=False)
            gc.collect()
            traced, _ = tracemalloc.get_traced_memory()
            rounds.append(
                {
                    "job": i,
                    "seconds": round(time.monotonic() - began, 2),
                    "traced_mb": round(traced / 2**20, 2),
                    "rss_mb": round(soak.rss_mb(os.getpid()), 1),
                    # What the C allocator holds freed: handed back, the RSS left is in use.
                    "rss_after_trim_mb": round(_trimmed(libc), 1),
                    "objects": len(gc.get_objects()),
                    # SQLite's own heap (page caches, statements), which tracemalloc misses.
                    "sqlite_mb": round(sqlite.sqlite3_memory_used() / 2**20, 2),
                }
            )
            print(json.dumps(rounds[-1]), flush=True)
            if i in (args.warm_up - 1, args.jobs - 1):
                snapshots[i] = tracemalloc.take_snapshot()
    finally:
        app.close()
        sink.send_signal(signal.SIGTERM)
        sink.wait(timeout=30)
        server.shutdown()

    first, last = snapshots[args.warm_up - 1], snapshots[args.jobs - 1]
    growth = last.compare_to(first, "lineno")
    print("growth after warm-up, by line:")
    for stat in growth[:15]:
        print(f"  {stat}")
    after = [r for r in rounds if r["job"] >= args.warm_up - 1]
    per_job = {
        key: soak.slope([(r["job"], r[key]) for r in after])
        for key in ("traced_mb", "rss_mb", "rss_after_trim_mb", "objects", "sqlite_mb")
    }
    print(
        json.dumps(
            {
                "jobs": args.jobs,
                "warm_up": args.warm_up,
                "traced_mb_first": rounds[0]["traced_mb"],
                "traced_mb_after_warm_up": after[0]["traced_mb"],
                "traced_mb_last": rounds[-1]["traced_mb"],
                "traced_mb_per_job": _round(per_job["traced_mb"]),
                "rss_mb_per_job": _round(per_job["rss_mb"]),
                "rss_after_trim_mb_per_job": _round(per_job["rss_after_trim_mb"]),
                "objects_per_job": _round(per_job["objects"]),
                "sqlite_mb_per_job": _round(per_job["sqlite_mb"]),
                "gc_counts": gc.get_count(),
                "gc_garbage": len(gc.garbage),
            }
        )
    )


def _trimmed(libc: ctypes.CDLL) -> float:
    libc.malloc_trim(0)
    return soak.rss_mb(os.getpid())


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


if __name__ == "__main__":
    main()
