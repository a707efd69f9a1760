"""The cassette machinery and its pytest plugin, as a user of memlayer gets them.

The round-trip tests record from a small HTTP server on 127.0.0.1 that this test starts: they check
what reaches the cassette file (secrets, JSON bodies, provenance) and that replay needs no server, so
the server's answers only have to be well-formed, not wise. Real model traffic is in the cassettes of
test_extraction_cassettes.py.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any, ClassVar

import litellm
import pytest

from memlayer import CassetteError, DuckDb, MemoryManager
from memlayer._internal.llm.litellm import LITELLM_OFFLINE_SWITCHES
from memlayer.testing import use_cassette

from .conftest import CASSETTES

pytest_plugins = ["pytester"]

ADD_CASSETTE = CASSETTES / "test_extraction_cassettes" / "test_add_from_conversation.json"
SECRET = "sk-live-0123456789abcdef0123456789"


class _ChatServer(BaseHTTPRequestHandler):
    """Answers any POST like an OpenAI-compatible server, and remembers what it was sent."""

    received: ClassVar[list[dict[str, Any]]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).received.append({"path": self.path, "headers": dict(self.headers), "body": body})
        reply = {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "created": 1,
            "model": "test-server-model",
            "system_fingerprint": "fp-test",
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "hi"}}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
        }
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Set-Cookie", "session=abc123")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def chat_server() -> Iterator[str]:
    server = HTTPServer(("127.0.0.1", 0), _ChatServer)
    _ChatServer.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def _ask(api_base: str, content: str = "hello") -> str:
    reply = litellm.completion(
        model="openai/test-server-model",
        api_base=api_base,
        api_key=SECRET,
        messages=[{"role": "user", "content": content}],
        num_retries=0,
    )
    return str(reply.choices[0].message.content)


def test_record_then_replay_without_the_server(chat_server: str, tmp_path: Path) -> None:
    path = tmp_path / "round_trip.json"
    with use_cassette(path, mode="once"):
        assert _ask(chat_server) == "hi"
    assert len(_ChatServer.received) == 1
    sent = {k.lower(): v for k, v in _ChatServer.received[0]["headers"].items()}
    assert sent["authorization"] == f"Bearer {SECRET}"  # it was really sent

    text = path.read_text()
    assert SECRET not in text and "abc123" not in text  # neither the key nor the cookie was written
    saved = json.loads(text)
    request = saved["interactions"][0]["request"]
    assert request["body"]["json"]["messages"] == [{"role": "user", "content": "hello"}]  # readable JSON
    assert "authorization" not in {k.lower() for k in request["headers"]}
    assert saved["metadata"]["recorded_with"]["models"] == ["test-server-model"]
    assert saved["metadata"]["recorded_with"]["fingerprints"] == ["fp-test"]

    unreachable = "http://127.0.0.1:9/v1"  # nothing listens there: the answer must come from the file
    with use_cassette(path, mode="none"):
        assert _ask(unreachable) == "hi"
    assert len(_ChatServer.received) == 1


def test_a_request_without_recording_fails_even_if_swallowed(chat_server: str, tmp_path: Path) -> None:
    path = tmp_path / "one.json"
    with use_cassette(path, mode="once"):
        _ask(chat_server, "hello")
    with pytest.raises(CassetteError, match=r"1 request\(s\) have no recording") as caught:
        with use_cassette(path, mode="none", test_id="tests/test_x.py::test_y"):
            _ask(chat_server, "hello")
            try:  # the code under test swallows the failure...
                _ask(chat_server, "a changed prompt")
            except Exception:
                pass
    # ...and the guard still names the request and the command that records it.
    assert "POST http://127.0.0.1" in str(caught.value)
    assert "pytest --memlayer-record=rewrite 'tests/test_x.py::test_y'" in str(caught.value)


def test_a_changed_prompt_fails_loudly_through_memlayer(tmp_path: Path) -> None:
    manager = MemoryManager(
        model="openai/qwen1.5b", db=DuckDb(), api_base="http://127.0.0.1:8765/v1", api_key="local", provider_retries=0
    )
    with pytest.raises(CassetteError, match=r"no recorded answer.*--memlayer-record=rewrite"):
        with use_cassette(ADD_CASSETTE, mode="none"):
            manager.create_user_memories("Remember that I am vegan.", user_id="alice@example.com")
    assert manager.get_user_memories(user_id="alice@example.com") == []


def test_an_unplayed_recording_fails(tmp_path: Path) -> None:
    stale = tmp_path / "stale.json"
    stale.write_text(ADD_CASSETTE.read_text())
    with pytest.raises(CassetteError, match="never played"), use_cassette(stale, mode="none"):
        pass  # the code under test no longer makes the recorded call


def test_a_missing_cassette_says_how_to_record(tmp_path: Path) -> None:
    with pytest.raises(CassetteError, match="--memlayer-record=once"), use_cassette(tmp_path / "no.json", mode="none"):
        pass


def test_unknown_record_mode_is_refused(tmp_path: Path) -> None:
    with pytest.raises(CassetteError, match="use one of none, once, new, rewrite"):
        with use_cassette(tmp_path / "x.json", mode="sometimes"):
            pass


def test_the_plugin_records_and_replays_a_users_test(pytester: pytest.Pytester, chat_server: str) -> None:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(
        test_user=f"""
        import litellm, pytest

        def ask():
            reply = litellm.completion(model="openai/test-server-model", api_base="{chat_server}",
                                       api_key="k", messages=[{{"role": "user", "content": "hi"}}], num_retries=0)
            return reply.choices[0].message.content

        @pytest.mark.memlayer_cassette
        def test_chat():
            assert ask() == "hi"

        def test_fixture(memlayer_cassette):
            assert ask() == "hi"
            assert memlayer_cassette.play_count == (1 if memlayer_cassette.rewound else 0)
        """
    )
    missing = pytester.runpytest("-p", "no:cacheprovider")
    missing.assert_outcomes(passed=0, errors=2)
    missing.stdout.fnmatch_lines(["*no cassette at*test_user/test_chat.json*--memlayer-record=once*test_chat*"])

    recorded = pytester.runpytest("-p", "no:cacheprovider", "--memlayer-record=once")
    recorded.assert_outcomes(passed=2)
    assert (pytester.path / "cassettes" / "test_user" / "test_chat.json").exists()

    replayed = pytester.runpytest("-p", "no:cacheprovider")  # default: none
    replayed.assert_outcomes(passed=2)
    assert len(_ChatServer.received) == 2  # both from the recording run


def test_the_plugin_changes_the_environment_only_inside_a_cassette_test(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A subprocess: the plugin is imported afresh, as in a user's run. Its environment starts without
    # the switches (this suite's conftest sets them; a user's run need not).
    for name in LITELLM_OFFLINE_SWITCHES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("LITELLM_LOCAL_BLOG_POSTS", "False")  # one the user set: left as it is
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makeconftest(
        f"""
        import os
        SWITCHES = {LITELLM_OFFLINE_SWITCHES!r}

        def switches():
            return {{name: os.environ.get(name) for name in SWITCHES}}

        def pytest_sessionstart(session):
            assert "memlayer.testing.plugin" in __import__("sys").modules
            os.environ["AT_START"] = repr(switches())
        """
    )
    pytester.makepyfile(
        test_env="""
        import os
        import pytest
        from conftest import switches

        OFF = {name: None for name in switches()} | {"LITELLM_LOCAL_BLOG_POSTS": "False"}
        ON = {name: "True" for name in switches()} | {"LITELLM_LOCAL_BLOG_POSTS": "False"}

        def test_1_before():
            assert os.environ["AT_START"] == repr(OFF)
            assert switches() == OFF

        @pytest.mark.memlayer_cassette(path="empty.json")
        def test_2_marker():
            assert switches() == ON

        def test_3_fixture(memlayer_cassette):
            assert switches() == ON

        def test_4_after():
            assert switches() == OFF
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "no:randomly", "--memlayer-record=once")
    result.assert_outcomes(passed=4)
