"""Fresh PostgreSQL databases on the server ``scripts/test`` starts (its URL in
DIGEST_TEST_POSTGRES_URL): one way to make and drop them, for the tests and the benchmarks."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import create_engine, text

SERVER_ENV = "DIGEST_TEST_POSTGRES_URL"


def server_or_skip() -> str:
    """The test server's URL; without one the test skips, unless DIGEST_REQUIRE_POSTGRES
    says the server must be there (scripts/test: a missing server fails, never skips)."""
    import pytest  # here, not above: the benchmarks import this module without pytest

    url = os.environ.get(SERVER_ENV)
    if not url:
        if os.environ.get("DIGEST_REQUIRE_POSTGRES"):
            raise RuntimeError(f"{SERVER_ENV} is not set but PostgreSQL is required")
        pytest.skip("no PostgreSQL server (scripts/test starts one)")
    return url


def create_database(server: str, prefix: str = "digest_test") -> str:
    """A new, empty database on ``server``; its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    _run(server, f'CREATE DATABASE "{name}"')
    return server.rsplit("/", 1)[0] + f"/{name}"


def drop_database(server: str, url: str) -> None:
    """Drop the database ``url`` names, closing whatever is still connected to it."""
    _run(server, f'DROP DATABASE IF EXISTS "{url.rsplit("/", 1)[1]}" WITH (FORCE)')


@contextmanager
def fresh_database(server: str | None = None) -> Iterator[str]:
    """A database of its own for one test (on the test server unless ``server`` is given),
    dropped afterwards."""
    server = server or server_or_skip()
    url = create_database(server)
    try:
        yield url
    finally:
        drop_database(server, url)


def _run(server: str, statement: str) -> None:
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as connection:
            connection.execute(text(statement))
    finally:
        admin.dispose()
