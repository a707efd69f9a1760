"""OpenTelemetry spans (memlayer._internal.llm.tracing): an extraction, its write and a search are spans named after
the GenAI conventions when ``opentelemetry-api`` is importable, and nothing is imported when it is not.

The model is the scripted one: these tests are about the spans around a call, not what a model says.
The recording tracer stands in for an SDK (only the API is installed here: it comes with ``mcp``).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from memlayer import DuckDb, MemoryManager
from memlayer._internal.llm import tracing
from memlayer.testing import scripted_model

REPLY = {"operations": [{"op": "add", "memory": "Lives in Porto", "topics": ["home"], "reason": "said so"}]}


class RecordingTracer:
    def __init__(self) -> None:
        self.spans: list[tuple[str, dict[str, Any]]] = []

    @contextmanager
    def start_as_current_span(self, name: str, *, attributes: dict[str, Any]) -> Iterator[None]:
        self.spans.append((name, attributes))
        yield


def test_an_extraction_and_a_search_are_spans(db: DuckDb, monkeypatch: pytest.MonkeyPatch) -> None:
    tracer = RecordingTracer()
    monkeypatch.setattr(tracing, "_tracer", lambda: tracer)
    manager = MemoryManager(model="openai:gpt-4o-mini", db=db, mode="json_schema", provider_retries=0)
    with scripted_model(REPLY):
        manager.create_user_memories("I live in Porto.", user_id="alice")
    manager.search_user_memories("Porto", user_id="alice", limit=3)
    assert tracer.spans == [
        (
            "memlayer.extract",
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.request.model": "gpt-4o-mini",
                "gen_ai.provider.name": "openai",
                "memlayer.user_id": "alice",
                "memlayer.purpose": "extraction",
            },
        ),
        ("memlayer.apply", {"memlayer.user_id": "alice", "memlayer.purpose": "extraction"}),
        ("memlayer.search", {"memlayer.user_id": "alice", "memlayer.limit": 3}),
    ]


def test_the_real_api_makes_a_span_with_no_sdk() -> None:
    pytest.importorskip("opentelemetry.trace")
    tracing._tracer.cache_clear()
    with tracing.span("search", user_id="alice"):
        from opentelemetry import trace

        assert not trace.get_current_span().is_recording()  # no SDK installed: the API's no-op span


NO_OTEL = """
import sys
sys.modules["opentelemetry"] = None  # as if opentelemetry-api were not installed
import memlayer
from memlayer import DuckDb, MemoryManager
from memlayer.testing import scripted_model
reply = {reply!r}
with DuckDb(sys.argv[1]) as db:
    manager = MemoryManager(model="openai:gpt-4o-mini", db=db, mode="json_schema", provider_retries=0)
    with scripted_model(reply):
        result = manager.create_user_memories("I live in Porto.", user_id="alice")
    assert [c.memory for c in result.changes] == ["Lives in Porto"], result
    assert [m.memory for m in manager.search_user_memories("Porto", user_id="alice")] == ["Lives in Porto"]
assert sys.modules["opentelemetry"] is None
print("ok")
"""


def test_without_opentelemetry_nothing_is_imported_and_an_extraction_works(tmp_path: Any) -> None:
    code = NO_OTEL.format(reply=REPLY)
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "m.duckdb")], capture_output=True, text=True, timeout=240
    )
    assert done.stdout.strip() == "ok", done.stderr[-2000:]


def test_import_memlayer_does_not_import_opentelemetry() -> None:
    code = "import sys, memlayer; print(any(m.startswith('opentelemetry') for m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "False", done.stderr[-2000:]


def test_an_agent_run_is_a_span(db: DuckDb, monkeypatch: pytest.MonkeyPatch) -> None:
    from memlayer import Agent

    tracer = RecordingTracer()
    monkeypatch.setattr(tracing, "_tracer", lambda: tracer)
    agent = Agent(model="openai:gpt-4o-mini", db=db)
    with scripted_model(lambda _: "Hello."):
        assert agent.run("hi", user_id="alice").content == "Hello."
    assert tracer.spans == [
        (
            "memlayer.agent.run",
            {
                "gen_ai.operation.name": "invoke_agent",
                "gen_ai.request.model": "gpt-4o-mini",
                "gen_ai.provider.name": "openai",
                "memlayer.user_id": "alice",
                "memlayer.stream": False,
            },
        )
    ]
