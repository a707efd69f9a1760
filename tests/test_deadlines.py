"""Deadlines: a model that never answers ends each call at ``timeout=`` and each run at ``run_timeout=``.

The model is a real HTTP server on 127.0.0.1 that reads each request and never answers (`HungModel`),
so LiteLLM's real client is what waits and what gives up. Not a cassette: nothing was said to record.
The server counts the connections still open, which is how a test sees that the caller hung up at the
deadline and no worker is left waiting on it.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from memlayer import Agent, ConfigError, DuckDb, MemoryManager, ModelError
from memlayer._internal.llm.litellm import import_instructor, import_litellm


class HungModel:
    """Accepts connections, reads what comes, never writes a byte back; counts connections still open."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.opened = 0
        self.open = 0
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.listener.getsockname()[1]}/v1"

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return
            with self._lock:
                self.opened += 1
                self.open += 1
            threading.Thread(target=self._hold, args=(conn,), daemon=True).start()

    def _hold(self, conn: socket.socket) -> None:
        with conn:
            while conn.recv(65536):  # b"": the client hung up
                pass
        with self._lock:
            self.open -= 1

    def wait_all_closed(self, seconds: float = 5.0) -> int:
        deadline = time.monotonic() + seconds
        while self.open and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.open


@pytest.fixture
def hung() -> Iterator[HungModel]:
    # Imported before the clock starts, and LiteLLM's first call made (it imports ~100 more modules, seconds
    # on a loaded machine): a deadline bounds the call, and these tests time it.
    import_instructor()
    import_litellm().completion(model="openai/warm", messages=[{"role": "user", "content": "hi"}], mock_response="ok")
    model = HungModel()
    yield model
    model.listener.close()


def _manager(hung: HungModel, tmp_path: Path, **options: object) -> MemoryManager:
    # "openai/": LiteLLM's OpenAI client, the transport most providers use; two provider retries by default.
    db = DuckDb(tmp_path / "m.duckdb")
    return MemoryManager("openai/hung", db, api_base=hung.api_base, api_key="local", **options)  # type: ignore[arg-type]


def test_a_hung_model_ends_at_the_call_timeout_retries_included_and_writes_nothing(
    hung: HungModel, tmp_path: Path
) -> None:
    manager = _manager(hung, tmp_path, timeout=1.0)  # provider_retries=2: the retries share the one second
    started = time.monotonic()
    with pytest.raises(ModelError, match=r"no answer within timeout=1 s") as caught:
        manager.create_user_memories("I live in Porto and drink green tea", user_id="ana")
    assert 0.9 < time.monotonic() - started < 3.0  # before: three requests of 1 s each, and the pauses
    assert hung.opened == 1  # the deadline passed during the first request: no retry was sent
    assert caught.value.last_reply is None
    assert manager.get_user_memories("ana") == [] and manager.get_user_events("ana") == []
    assert hung.wait_all_closed() == 0  # the caller hung up: no worker is left waiting
    manager.db.close()


async def test_the_async_twin_ends_at_the_same_deadline(hung: HungModel, tmp_path: Path) -> None:
    manager = _manager(hung, tmp_path, timeout=1.0, provider_retries=0)
    started = time.monotonic()
    with pytest.raises(ModelError, match=r"no answer within timeout=1 s"):
        await manager.acreate_user_memories("I live in Porto", user_id="ana")
    assert 0.9 < time.monotonic() - started < 3.0
    assert await manager.aget_user_memories("ana") == []
    assert hung.wait_all_closed() == 0
    manager.db.close()


def test_an_agent_run_ends_at_its_run_timeout_sync_and_async(hung: HungModel, tmp_path: Path) -> None:
    import asyncio

    with DuckDb(tmp_path / "a.duckdb") as db:
        memory = MemoryManager("openai/hung", db, api_base=hung.api_base, api_key="local")
        agent = Agent(
            "openai/hung", db=db, memory_manager=memory, api_base=hung.api_base, api_key="local",
            update_memory_on_run=True, run_timeout=1.5, timeout=60,  # the run's deadline is the earlier one
        )  # fmt: skip
        for run in (
            lambda: agent.run("I live in Porto", user_id="ana"),
            lambda: asyncio.run(agent.arun("I live in Lisbon", user_id="ana")),
        ):
            started = time.monotonic()
            with pytest.raises(ModelError, match=r"no answer within run_timeout=1.5 s"):
                run()
            assert 1.4 < time.monotonic() - started < 4.0
        assert memory.get_user_memories("ana") == []  # no extraction ran: the run never got an answer
        assert hung.wait_all_closed() == 0
        failed = db.sql("SELECT count(*) FROM runs WHERE error LIKE '%run_timeout%'")
        assert failed == [(2,)]  # each failed run is recorded as failed, with the reason


@pytest.mark.parametrize("value", [0, -1, float("inf"), "30", True])
def test_a_deadline_that_is_not_a_positive_number_is_refused(tmp_path: Path, value: object) -> None:
    with pytest.raises(ConfigError, match="run_timeout must be a number of seconds"):
        Agent("openai/gpt-4o", run_timeout=value)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="timeout must be a number of seconds"):
        MemoryManager("openai/gpt-4o", DuckDb(":memory:"), timeout=value)  # type: ignore[arg-type]
