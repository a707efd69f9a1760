"""A scripted OpenAI-compatible server on 127.0.0.1: real HTTP, for the transport tests and benchmarks.

It answers ``POST /v1/chat/completions`` (and ``/v1/embeddings``) with the replies it was given, in
order, and keeps every request (path, headers, parsed JSON body) and the seconds it spent on each. A
reply is a ``dict`` (a 200 JSON body), a ``(status, body)`` pair, or ``Stall(seconds)`` (answer only
after that long, to time a client out). With no replies left it answers `chat_reply` of
``{"operations": []}``, so a benchmark can call it any number of times.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

__all__ = ["CHAT_FIELDS", "OpenAIStub", "Request", "Stall", "chat_reply", "embedding_reply", "openai_stub"]


@dataclass(frozen=True)
class Stall:
    seconds: float


@dataclass(frozen=True)
class Request:
    path: str
    headers: dict[str, str]
    body: Any
    seconds: float  # spent in the server: reading the request, answering it


def chat_reply(content: str | dict[str, Any] = "", *, tool_args: dict[str, Any] | None = None,
               tool_name: str = "MemoryOperations", model: str = "stub-model", finish: str = "stop",
               prompt_tokens: int = 11, completion_tokens: int = 7) -> dict[str, Any]:  # fmt: skip
    """A chat completion body, as OpenAI writes it: text content, or one tool call with ``tool_args``."""
    text = content if isinstance(content, str) else json.dumps(content)
    message: dict[str, Any] = {"role": "assistant", "content": None if tool_args is not None else text}
    if tool_args is not None:
        call = {"id": "call_1", "type": "function", "function": {"name": tool_name, "arguments": json.dumps(tool_args)}}
        message["tool_calls"] = [call]
    return {
        "id": "chatcmpl-stub",
        "object": "chat.completion",
        "created": 1_700_000_000,
        "model": model,
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        },
    }


def embedding_reply(vectors: list[list[float]], *, model: str = "stub-embed", tokens: int = 5) -> dict[str, Any]:
    data = [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)]
    return {"object": "list", "data": data, "model": model, "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}


# The request fields api.openai.com accepts on /v1/chat/completions; a strict stub refuses any other.
CHAT_FIELDS = frozenset(
    {"model", "messages", "stream", "stream_options", "tools", "tool_choice", "parallel_tool_calls",
     "response_format", "temperature", "top_p", "n", "stop", "max_tokens", "max_completion_tokens",
     "presence_penalty", "frequency_penalty", "logit_bias", "logprobs", "top_logprobs", "user", "seed",
     "reasoning_effort", "service_tier", "metadata", "store", "modalities", "audio", "prediction",
     "verbosity", "web_search_options", "safety_identifier", "prompt_cache_key"}
)  # fmt: skip


@dataclass
class OpenAIStub:
    replies: list[Any] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    port: int = 0
    strict: bool = False  # answer 400 to a chat request with a field api.openai.com does not know

    @property
    def api_base(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def script(self, *replies: Any) -> None:
        self.replies[:] = list(replies)
        self.requests.clear()

    def answer(self, path: str, headers: dict[str, str], raw: bytes) -> tuple[int, bytes, float]:
        body: Any = json.loads(raw) if raw else None
        unknown = sorted(set(body or {}) - CHAT_FIELDS) if self.strict and path.endswith("/chat/completions") else []
        if unknown:
            self.requests.append(Request(path, headers, body, 0.0))
            message = f"Unrecognized request argument supplied: {', '.join(unknown)}"
            return 400, json.dumps({"error": {"message": message, "type": "invalid_request_error"}}).encode(), 0.0
        reply = self.replies.pop(0) if self.replies else chat_reply({"operations": []})
        status, stall = 200, 0.0
        if isinstance(reply, Stall):
            stall, reply = reply.seconds, chat_reply({"operations": []})
        elif isinstance(reply, tuple):
            status, reply = reply
        payload = reply if isinstance(reply, bytes) else json.dumps(reply).encode()
        self.requests.append(Request(path, headers, body, 0.0))
        return status, payload, stall


def _handler(stub: OpenAIStub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self) -> None:
            started = time.perf_counter()
            raw = self.rfile.read(int(self.headers.get("content-length") or 0))
            status, payload, stall = stub.answer(self.path, {k.lower(): v for k, v in self.headers.items()}, raw)
            if stall:
                time.sleep(stall)
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)
            last = stub.requests[-1]
            stub.requests[-1] = Request(last.path, last.headers, last.body, time.perf_counter() - started)

        def log_message(self, format: str, *args: Any) -> None:  # quiet
            pass

    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that timed out and hung up mid-answer is what the timeout tests do


@contextmanager
def openai_stub() -> Iterator[OpenAIStub]:
    """Serve an `OpenAIStub` on a free port of 127.0.0.1 for the block."""
    stub = OpenAIStub()
    server = _Server(("127.0.0.1", 0), _handler(stub))
    stub.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield stub
    finally:
        server.shutdown()
        server.server_close()
