"""Issue 22, point 6: the daemon's RSS crept up by tens of MB an hour while its Python
objects stayed flat: memory freed by each job stayed with glibc's malloc. Jobs now run in
children (tests/test_forked_jobs.py); where one runs in the daemon, it hands back what it
freed when it ends."""

from __future__ import annotations

import platform
import subprocess
import sys
import textwrap
from collections.abc import Callable

import pytest

from digest import jobs
from digest.app import App
from digest.config import load_config
from digest.schedule import daemon, forked
from tests.conftest import ROOT, FeedServer, rss

_GLIBC = pytest.mark.skipif(
    platform.system() != "Linux" or platform.libc_ver()[0] != "glibc", reason="glibc's malloc"
)


def _python(script: str) -> subprocess.CompletedProcess[str]:
    """``script`` run by a fresh interpreter (a heap of its own), its output captured."""
    return subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )


def test_a_job_run_in_the_daemon_releases_memory_when_it_ends_even_when_it_fails(
    write_config, feed_server: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = feed_server.add("/f.xml", rss([{"title": "Harbour strike ends", "guid": "1"}]))
    app = App.open(load_config(write_config([("Wire", url)], schedule="30 6 * * 1-5")))
    calls: list[str] = []

    def job(name: str, fails: bool = False) -> Callable[..., None]:
        def run(*_args: object) -> None:
            calls.append(name)
            if fails:
                raise RuntimeError("a bug in the job")

        return run

    monkeypatch.setattr(forked, "can_fork", lambda: False)  # (tests/test_forked_jobs.py)
    monkeypatch.setattr(forked, "release_memory", lambda: calls.append("release"))
    monkeypatch.setattr(daemon, "_send_due", job("send"))
    monkeypatch.setattr(jobs, "gather_job", job("gather"))
    monkeypatch.setattr(daemon, "_retry_owed", job("retry", fails=True))
    try:
        scheduler = daemon.build_scheduler(app)
        scheduler.start(paused=True)
        scheduled = {j.id: j for j in scheduler.get_jobs()}
        scheduler.shutdown(wait=False)
    finally:
        app.close()
    for job_id in ("digest:daily", "gather"):
        scheduled[job_id].func(*scheduled[job_id].args)
    with pytest.raises(RuntimeError):
        scheduled["retry"].func(*scheduled["retry"].args)
    assert calls == ["send", "release", "gather", "release", "retry", "release"]


@pytest.mark.slow
@_GLIBC
def test_release_memory_hands_a_threads_freed_heap_back_to_the_system() -> None:
    """100 MB malloc'd in a thread and freed but for the last block, which pins the heap's
    top: glibc keeps all of it until it is told to let go."""
    script = textwrap.dedent(
        """
        import ctypes, threading
        from digest.schedule.memory import release_memory

        libc = ctypes.CDLL("libc.so.6")
        libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
        libc.free.argtypes = [ctypes.c_void_p]

        def rss_mb():
            with open("/proc/self/status") as status:
                line = next(l for l in status if l.startswith("VmRSS:"))
            return int(line.split()[1]) / 1024

        def job():
            blocks = [libc.malloc(4000) for _ in range(25_000)]
            for block in blocks:
                ctypes.memset(block, 1, 4000)
            for block in blocks[:-1]:
                libc.free(block)

        worker = threading.Thread(target=job)
        worker.start()
        worker.join()
        before = rss_mb()
        released = release_memory()
        print(released, round(before - rss_mb(), 1))
        """
    )
    out = _python(script).stdout.split()
    assert out[0] == "True"
    assert float(out[1]) > 50, f"only {out[1]} MB handed back"


def test_the_daemon_caps_the_arenas_before_anything_else(monkeypatch: pytest.MonkeyPatch) -> None:
    class Capped(Exception):
        pass

    def cap() -> bool:
        raise Capped  # stops the daemon before it needs a database

    monkeypatch.setattr(daemon, "cap_arenas", cap)
    with pytest.raises(Capped):
        daemon.run_daemon(None)  # type: ignore[arg-type]


@pytest.mark.slow
@_GLIBC
def test_the_daemon_caps_glibc_at_two_arenas_however_many_threads_allocate_at_once() -> None:
    """Eight threads that malloc at the same time would each get an arena of their own."""
    script = textwrap.dedent(
        """
        import ctypes, sys, threading
        from digest.schedule.memory import cap_arenas

        libc = ctypes.CDLL("libc.so.6")
        libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
        print(cap_arenas(), flush=True)
        together = threading.Barrier(8)

        def job():
            together.wait()
            blocks = [libc.malloc(1000) for _ in range(2000)]
            together.wait()  # all alive (and holding their arenas) until each has allocated

        threads = [threading.Thread(target=job) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        sys.stderr.flush()
        libc.malloc_stats()  # one "Arena n:" paragraph per arena, on stderr
        """
    )
    done = _python(script)
    assert done.stdout.split() == ["True"]
    arenas = [line for line in done.stderr.splitlines() if line.startswith("Arena ")]
    assert 1 <= len(arenas) <= 2, done.stderr
