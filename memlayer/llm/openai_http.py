"""OpenAI's chat completions over `http.client`: the typed call's transport where LiteLLM would add only time.

Importing LiteLLM takes seconds, most of a process's first extraction; the OpenAI SDK ~0.6 s, httpx
~0.1 s. For a provider that speaks OpenAI's wire protocol the request is one JSON POST, so memlayer
sends it itself, with the body the OpenAI SDK would send for the same call (cassettes match on method,
path and body, and replay either way: vcrpy patches `http.client` as it patches httpx). The choice is
made per call, and is deterministic:

- ``MEMLAYER_LLM_TRANSPORT=litellm`` always takes LiteLLM; ``direct`` takes this path whenever the
  request qualifies, even with LiteLLM imported; ``auto`` (the default) as ``direct``, but only while
  LiteLLM is not imported in the process (``"litellm" in sys.modules``): then nothing would be saved,
  and a user's LiteLLM callbacks and logging must see the calls. Another value is a `ConfigError`.
- A typed request qualifies when the provider is ``openai`` (``openai:x`` or ``openai/x``, with or without
  ``api_base``), the model name has no ``/`` (LiteLLM routes ``openai:responses/x`` to the Responses
  API) and is not one LiteLLM rewrites requests for (``o1``..``o9*``, ``gpt-5*``/``gpt-6*``, audio,
  search and realtime models), the mode is ``tools`` or ``json_schema`` (the two default modes),
  every extra keyword is a plain chat completions body parameter (`BODY_PARAMS`) or ``timeout``, and no
  proxy is set in the environment (``HTTPS_PROXY``, ...). Anything else (LiteLLM's ``mock_response``,
  ``extra_headers``, ...) goes to LiteLLM; so does every other provider. An agent's chat step that is
  not streamed qualifies on the same terms, in either tool mode (a streamed one goes to LiteLLM, which
  then stays loaded). An embedding request (``/v1/embeddings``) qualifies on the same terms too, with
  `EMBEDDING_PARAMS`, ``timeout`` and ``num_retries`` (how often a transient error is re-sent; LiteLLM's
  default, 2) as its extra keywords.

The endpoint and key come from the call (``api_base``, ``api_key``) or the environment, as LiteLLM reads
them: ``OPENAI_BASE_URL`` / ``OPENAI_API_BASE``, ``OPENAI_API_KEY``, ``OPENAI_ORGANIZATION`` /
``OPENAI_ORG_ID``, ``OPENAI_PROJECT_ID``; TLS is verified against certifi's bundle (or ``SSL_CERT_FILE``),
as httpx does. Failures raise `ProviderError`, named like LiteLLM's error types and marked transient
(429, 5xx, timeouts, connection errors) for `memlayer.llm.typed` to re-send. Keep-alive connections are
reused (`_Pool`); an async call runs the blocking request in a worker thread.
"""

from __future__ import annotations

import functools
import json
import os
import re
import sys
import threading
from dataclasses import dataclass
from typing import Any, Literal

from ..errors import ConfigError
from .spec import ModelSpec

__all__ = [
    "BODY_PARAMS",
    "EMBEDDING_PARAMS",
    "TRANSPORT_ENV",
    "Completion",
    "ProviderError",
    "Request",
    "achat",
    "acomplete",
    "build_request",
    "chat",
    "complete",
    "post_json",
    "transport_setting",
    "uses_direct",
]

TRANSPORT_ENV = "MEMLAYER_LLM_TRANSPORT"
_SETTINGS = ("auto", "direct", "litellm")
# Chat completions parameters LiteLLM's OpenAI config passes into the body unchanged.
BODY_PARAMS = frozenset(
    {"temperature", "top_p", "max_tokens", "max_completion_tokens", "seed", "stop", "presence_penalty",
     "frequency_penalty", "logit_bias", "user"}
)  # fmt: skip
EMBEDDING_PARAMS = frozenset({"dimensions", "user"})
_REWRITTEN_MODELS = re.compile(r"^o\d|gpt-5|gpt-6|audio|search|realtime")
_DEFAULT_BASE = "https://api.openai.com/v1"
_DEFAULT_TIMEOUT = 600.0  # seconds, LiteLLM's default for OpenAI


def transport_setting() -> str:
    """``MEMLAYER_LLM_TRANSPORT``: auto (the default), direct or litellm."""
    value = os.environ.get(TRANSPORT_ENV, "").strip().lower() or "auto"
    if value not in _SETTINGS:
        raise ConfigError(f"{TRANSPORT_ENV}={os.environ[TRANSPORT_ENV]!r}: use one of {', '.join(_SETTINGS)}")
    return value


def uses_direct(spec: ModelSpec, *, purpose: Literal["typed", "chat", "embedding"] = "typed") -> bool:
    """Whether the typed call (a chat step, an embedding call) for ``spec`` goes over this module (see the
    module doc)."""
    setting = transport_setting()
    if setting == "litellm" or (setting == "auto" and "litellm" in sys.modules):
        return False
    # A name with "/" is LiteLLM's to route: "responses/x" goes to the Responses API.
    if _proxied() or spec.provider != "openai" or "/" in spec.name:
        return False
    if purpose == "embedding":
        return all(key in EMBEDDING_PARAMS or key in ("timeout", "num_retries") for key in spec.extra)
    return (
        not _REWRITTEN_MODELS.search(spec.name.lower())
        and (purpose == "chat" or spec.instructor_mode in ("tools", "json_schema"))
        and all(key in BODY_PARAMS or key == "timeout" for key in spec.extra)
    )


def _proxied() -> bool:
    # The OpenAI SDK (httpx) sends through a proxy named in the environment; this path does not.
    return any(os.environ.get(name) for name in _PROXY_VARIABLES)


_PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")


class ProviderError(Exception):
    """The server refused or failed the request, or could not be reached; ``transient`` ones are retried."""

    def __init__(self, kind: str, message: str, *, status: int | None = None, transient: bool = False) -> None:
        super().__init__(f"{kind}: {message}")
        self.kind, self.status, self.transient = kind, status, transient


_STATUS_KINDS = {400: "BadRequestError", 401: "AuthenticationError", 403: "PermissionDeniedError",
                 404: "NotFoundError", 408: "Timeout", 422: "UnprocessableEntityError", 429: "RateLimitError",
                 503: "ServiceUnavailableError"}  # fmt: skip


@dataclass(frozen=True)
class Request:
    url: str
    headers: dict[str, str]
    body: dict[str, Any]
    timeout: float


def build_request(spec: ModelSpec, body: dict[str, Any], *, endpoint: str = "chat/completions") -> Request:
    """The POST of ``body`` to ``endpoint``: URL, headers and timeout from the spec or the environment."""
    base = spec.api_base or os.environ.get("OPENAI_BASE_URL") or os.environ.get("OPENAI_API_BASE") or _DEFAULT_BASE
    key = spec.api_key or os.environ.get("OPENAI_API_KEY")
    if not key:
        raise ProviderError("AuthenticationError", "no API key: set OPENAI_API_KEY or pass api_key=...", status=None)
    headers = {"authorization": f"Bearer {key}", "content-type": "application/json", "accept": "application/json"}
    if organization := os.environ.get("OPENAI_ORGANIZATION") or os.environ.get("OPENAI_ORG_ID"):
        headers["openai-organization"] = organization
    if project := os.environ.get("OPENAI_PROJECT_ID"):
        headers["openai-project"] = project
    timeout = float(spec.extra.get("timeout") or _DEFAULT_TIMEOUT)
    sent = {key: value for key, value in body.items() if key != "timeout" and value is not None}
    if isinstance(sent.get("messages"), list):  # LiteLLM drops a message's None fields ("content": None)
        sent["messages"] = [_without_none(m) for m in sent["messages"]]
    return Request(f"{base.rstrip('/')}/{endpoint}", headers, sent, timeout)


def _without_none(message: Any) -> Any:
    return {k: v for k, v in message.items() if v is not None} if isinstance(message, dict) else message


# -- the reply ------------------------------------------------------------------------------------
# Read by memlayer (`UsageMeter`, `memlayer.llm.structured`) the way it reads LiteLLM's ModelResponse.


@dataclass(frozen=True)
class Function:
    name: str
    arguments: str


@dataclass(frozen=True)
class ToolCall:
    id: str
    function: Function
    type: str = "function"


@dataclass(frozen=True)
class Message:
    role: str
    content: str | None
    tool_calls: list[ToolCall] | None
    refusal: str | None = None


@dataclass(frozen=True)
class Choice:
    message: Message
    finish_reason: str | None


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int = 0


@dataclass(frozen=True)
class Completion:
    model: str
    choices: list[Choice]
    usage: Usage | None
    service_tier: str | None = None


def parse_completion(data: Any) -> Completion:
    """A chat completion body; `ProviderError` when it is not one."""
    try:
        choices = [_choice(c) for c in data["choices"]]
        usage = data.get("usage") or None
        return Completion(
            model=str(data.get("model") or ""),
            choices=choices,
            usage=None if usage is None else _usage(usage),
            service_tier=data.get("service_tier"),
        )
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        raise ProviderError("APIError", f"the reply is not a chat completion: {str(data)[:200]}") from exc


def _choice(data: dict[str, Any]) -> Choice:
    message = data["message"]
    calls = message.get("tool_calls")
    tool_calls = None
    if calls is not None:
        tool_calls = [ToolCall(str(c.get("id", "")), Function(c["function"]["name"], c["function"].get("arguments")))
                      for c in calls]  # fmt: skip
    role, content, refusal = message.get("role") or "assistant", message.get("content"), message.get("refusal")
    return Choice(Message(role, content, tool_calls, refusal), data.get("finish_reason"))


def _usage(data: dict[str, Any]) -> Usage:
    details = data.get("prompt_tokens_details") or {}
    return Usage(int(data.get("prompt_tokens") or 0), int(data.get("completion_tokens") or 0),
                 int(details.get("cached_tokens") or 0))  # fmt: skip


# -- sending --------------------------------------------------------------------------------------


def chat(spec: ModelSpec, body: dict[str, Any]) -> Completion:
    """One chat completion for ``spec``: `build_request`, then `complete`."""
    return complete(build_request(spec, body))


async def achat(spec: ModelSpec, body: dict[str, Any]) -> Completion:
    return await acomplete(build_request(spec, body))


def complete(request: Request) -> Completion:
    """POST ``request``; the parsed chat completion, or `ProviderError`."""
    return parse_completion(post_json(request))


async def acomplete(request: Request) -> Completion:
    """`complete` from the event loop: the blocking request runs in a worker thread."""
    import asyncio

    return parse_completion(_read(*await asyncio.to_thread(_post, request)))


def post_json(request: Request) -> Any:
    """POST ``request``; the reply's JSON, or `ProviderError`."""
    return _read(*_post(request))


def _post(request: Request) -> tuple[int, str, bytes]:
    """One POST over `http.client` (looked up per call, so a cassette's patched classes are used)."""
    import http.client
    from urllib.parse import urlsplit

    url = urlsplit(request.url)
    tls = url.scheme == "https"
    host, port = url.hostname or "", url.port or (443 if tls else 80)
    target = url.path + (f"?{url.query}" if url.query else "")
    body = json.dumps(request.body).encode()
    headers = {**request.headers, "host": url.netloc, "content-length": str(len(body))}
    kind: Any = http.client.HTTPSConnection if tls else http.client.HTTPConnection
    try:
        reused = _POOL.take(kind, host, port)
        try:
            connection = reused or _connect(kind, host, port, tls, request.timeout)
            response = _exchange(connection, target, body, headers, request.timeout)
        except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
            if reused is None:
                raise
            reused.close()  # the server closed it while it was idle: once more, on a new connection
            connection = _connect(kind, host, port, tls, request.timeout)
            response = _exchange(connection, target, body, headers, request.timeout)
        raw = response.read()
    except TimeoutError as exc:
        raise ProviderError("Timeout", f"Request timed out after {request.timeout:g} s: {exc}", transient=True) from exc
    except (OSError, http.client.HTTPException) as exc:
        raise ProviderError("APIConnectionError", f"Connection error: {exc!r}", transient=True) from exc
    if getattr(response, "will_close", True):  # a cassette's responses have no connection to keep
        connection.close()
    else:
        _POOL.give(connection, host, port)
    return response.status, response.reason, raw


def _exchange(connection: Any, target: str, body: bytes, headers: dict[str, str], timeout: float) -> Any:
    connection.timeout = timeout
    if connection.sock is not None:
        connection.sock.settimeout(timeout)
    connection.request("POST", target, body=body, headers=headers)
    return connection.getresponse()


def _connect(kind: Any, host: str, port: int, tls: bool, timeout: float) -> Any:
    if tls:
        return kind(host, port, timeout=timeout, context=_ssl_context())
    return kind(host, port, timeout=timeout)


def _read(status: int, reason: str, raw: bytes) -> Any:
    text = raw.decode("utf-8", errors="replace")
    if status >= 400:
        kind = _STATUS_KINDS.get(status, "InternalServerError" if status >= 500 else "APIError")
        transient = status in (408, 409, 429) or status >= 500
        raise ProviderError(kind, f"OpenAIException - {_error_text(text, reason)}", status=status, transient=transient)
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ProviderError("APIError", f"the reply is not JSON: {text[:200]!r}") from exc
    return data


def _error_text(text: str, reason: str) -> str:
    """The server's own words: ``error.message`` of an OpenAI error body, else the body's text."""
    try:
        error = json.loads(text).get("error")
        message = error.get("message") if isinstance(error, dict) else error
    except (ValueError, AttributeError):
        message = None
    return str(message or text or reason)[:500]


class _Pool:
    """Idle keep-alive connections, by class, host and port; owned by this module for the process's life.

    Only `http.client`'s own classes are kept: a cassette's patched ones belong to that cassette.
    """

    def __init__(self) -> None:
        self._idle: dict[tuple[Any, str, int], list[Any]] = {}
        self._lock = threading.Lock()

    def take(self, kind: Any, host: str, port: int) -> Any:
        with self._lock:
            idle = self._idle.get((kind, host, port))
            return idle.pop() if idle else None

    def give(self, connection: Any, host: str, port: int) -> None:
        if type(connection).__module__ != "http.client":
            return
        with self._lock:
            self._idle.setdefault((type(connection), host, port), []).append(connection)


_POOL = _Pool()


@functools.cache
def _ssl_context() -> Any:
    """What httpx (and so the OpenAI SDK) verifies with by default: certifi's bundle, or SSL_CERT_FILE."""
    import ssl

    cafile = os.environ.get("SSL_CERT_FILE")
    if not cafile:
        try:
            import certifi

            cafile = certifi.where()
        except ImportError:
            cafile = None
    return ssl.create_default_context(cafile=cafile)
