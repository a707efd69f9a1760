"""Model strings, and the one typed LLM call memlayer makes. The only module that imports LiteLLM.

A model is named by one string: ``"openai:gpt-4o"`` or LiteLLM's ``"openai/gpt-4o"``. Switching
provider means changing that string. LiteLLM takes 8 s to import, so it is imported on the first
call, never by ``import memlayer``, and never fetches its price list (``LITELLM_LOCAL_MODEL_COST_MAP``).
"""

from __future__ import annotations

import ast
import difflib
import functools
import importlib.util
import os
import pathlib
import time
from dataclasses import dataclass, field, replace
from types import ModuleType
from typing import Any, Literal, TypeVar

from pydantic import BaseModel

from . import clock
from .errors import CassetteError, ConfigError, MemlayerError, ModelError
from .types import LLMUsage

__all__ = [
    "LLMCallError",
    "Mode",
    "ModelSpec",
    "TypedReply",
    "UsageMeter",
    "acomplete_typed",
    "call_failure",
    "complete_typed",
    "embed_texts",
    "import_litellm",
    "keep_litellm_offline",
    "known_providers",
    "parse_model",
    "usage_of",
]

Mode = Literal["tools", "json_schema", "json", "md_json"]
ResponseT = TypeVar("ResponseT", bound=BaseModel)

# Names people type that LiteLLM spells differently.
_PROVIDER_ALIASES = {"google": "gemini", "google-gla": "gemini", "google-vertex": "vertex_ai", "vertex": "vertex_ai"}
# Providers whose models are local or OpenAI-compatible servers: tool calling is often not enforced
# there (llama.cpp ignores tool_choice), while a JSON schema is grammar-constrained.
_JSON_SCHEMA_PROVIDERS = frozenset(
    {"ollama", "ollama_chat", "hosted_vllm", "vllm", "lm_studio", "llamafile", "openai_like", "custom_openai"}
)


@dataclass(frozen=True)
class ModelSpec:
    """A parsed model string, plus how to reach it. ``str(spec)`` is the ``provider:model`` form."""

    provider: str
    name: str
    api_base: str | None = None
    api_key: str | None = field(default=None, repr=False)
    mode: Mode | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def litellm_model(self) -> str:
        return f"{self.provider}/{self.name}"

    @property
    def instructor_mode(self) -> Mode:
        """The explicit mode, else JSON schema for local servers and tool calling for hosted APIs."""
        if self.mode is not None:
            return self.mode
        if self.provider in _JSON_SCHEMA_PROVIDERS or (self.provider == "openai" and self.api_base):
            return "json_schema"
        return "tools"

    def __str__(self) -> str:
        return f"{self.provider}:{self.name}"


def parse_model(
    model: str | ModelSpec,
    *,
    api_base: str | None = None,
    api_key: str | None = None,
    mode: Mode | None = None,
    **extra: Any,
) -> ModelSpec:
    """Parse ``"provider:model"`` or ``"provider/model"``; the first ``:`` or ``/`` separates them.

    Raises `ConfigError`, with a suggestion, for a string without a provider or an unknown one.
    """
    if isinstance(model, ModelSpec):
        return replace(
            model,
            api_base=api_base or model.api_base,
            api_key=api_key or model.api_key,
            mode=mode or model.mode,
            extra={**model.extra, **extra},
        )
    if not isinstance(model, str) or not model.strip():
        raise ConfigError(f"model must be a string like 'openai:gpt-4o', got {model!r}")
    text = model.strip()
    cut = min((i for i in (text.find(":"), text.find("/")) if i >= 0), default=-1)
    if cut <= 0 or cut == len(text) - 1:
        raise ConfigError(
            f"model {model!r} must name a provider and a model, like 'openai:gpt-4o' or 'openai/gpt-4o'"
            + _bare_model_hint(text)
        )
    provider, name = text[:cut].lower(), text[cut + 1 :]
    provider = _PROVIDER_ALIASES.get(provider, provider)
    providers = known_providers()
    if providers and provider not in providers:
        close = difflib.get_close_matches(provider, sorted(providers), n=3, cutoff=0.6)
        hint = f"; did you mean {' or '.join(repr(f'{c}:{name}') for c in close)}?" if close else ""
        raise ConfigError(f"unknown provider {provider!r} in model {model!r}{hint}")
    if mode is not None and mode not in ("tools", "json_schema", "json", "md_json"):
        raise ConfigError(f"mode must be one of 'tools', 'json_schema', 'json', 'md_json', got {mode!r}")
    return ModelSpec(provider=provider, name=name, api_base=api_base, api_key=api_key, mode=mode, extra=extra)


@functools.lru_cache(maxsize=1)
def known_providers() -> frozenset[str]:
    """LiteLLM's provider names, read from its source without importing it (0.1 s instead of 8 s).

    Empty when LiteLLM's layout has changed: then the provider is not checked here, and LiteLLM's own
    error (wrapped in `ModelError`) reports it on the first call.
    """
    try:
        spec = importlib.util.find_spec("litellm")
        assert spec is not None and spec.submodule_search_locations
        source = pathlib.Path(spec.submodule_search_locations[0], "types", "utils.py").read_text()
        enum = next(
            node for node in ast.parse(source).body if isinstance(node, ast.ClassDef) and node.name == "LlmProviders"
        )
    except (AssertionError, OSError, StopIteration, SyntaxError):
        return frozenset()
    return frozenset(
        stmt.value.value
        for stmt in enum.body
        if isinstance(stmt, ast.Assign) and isinstance(stmt.value, ast.Constant) and isinstance(stmt.value.value, str)
    )


def _bare_model_hint(text: str) -> str:
    lowered = text.lower()
    for prefix, provider in (("gpt", "openai"), ("o1", "openai"), ("o3", "openai"), ("o4", "openai"),
                             ("claude", "anthropic"), ("gemini", "gemini"), ("llama", "ollama"),
                             ("mistral", "mistral"), ("command", "cohere")):  # fmt: skip
        if lowered.startswith(prefix):
            return f"; did you mean '{provider}:{text}'?"
    return ""


# LiteLLM fetches these from GitHub unless told to use its bundled copies: the price list at import,
# Anthropic's beta headers on the first Anthropic call, and others on their first use.
LITELLM_OFFLINE_SWITCHES = (
    "LITELLM_LOCAL_MODEL_COST_MAP",
    "LITELLM_LOCAL_ANTHROPIC_BETA_HEADERS",
    "LITELLM_LOCAL_AUTOROUTER_PRESETS",
    "LITELLM_LOCAL_BLOG_POSTS",
    "LITELLM_LOCAL_POLICY_TEMPLATES",
)


def keep_litellm_offline() -> None:
    """Point LiteLLM at its bundled data (a variable the caller set is left alone)."""
    for name in LITELLM_OFFLINE_SWITCHES:
        os.environ.setdefault(name, "True")


def import_litellm() -> ModuleType:
    """Import LiteLLM without its network side effects: no data fetched from GitHub, no telemetry."""
    keep_litellm_offline()
    import litellm

    litellm.telemetry = False
    # Let Instructor do the retrying, with the validation error in the prompt; LiteLLM's own retries
    # would hide the attempts from the count memlayer reports.
    litellm.num_retries = 0
    litellm.suppress_debug_info = True
    return litellm


_UNPRICED: set[str] = set()  # models LiteLLM has no price for; asking again costs ~1 ms per call


@dataclass
class UsageMeter:
    """What the provider was actually asked: counted at the completion function Instructor calls."""

    count: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = None
    model_seconds: float = 0.0
    last_reply: str | None = None

    def record(self, response: Any, seconds: float, litellm: ModuleType) -> None:
        # ``count`` is moved by `_send` for every request sent, answered or not.
        self.model_seconds += seconds
        usage = getattr(response, "usage", None)
        self.input_tokens += int(getattr(usage, "prompt_tokens", 0) or 0)
        self.output_tokens += int(getattr(usage, "completion_tokens", 0) or 0)
        self.last_reply = _reply_text(response)
        model = str(getattr(response, "model", ""))
        if model in _UNPRICED:
            return
        try:
            cost = float(litellm.completion_cost(completion_response=response))
        except Exception:  # no price known for this model (local servers, new models): ask once
            _UNPRICED.add(model)
            return
        self.cost_usd = (self.cost_usd or 0.0) + cost


def _reply_text(response: Any) -> str | None:
    try:
        message = response.choices[0].message
    except (AttributeError, IndexError, TypeError):
        return None
    if getattr(message, "tool_calls", None):
        return str(message.tool_calls[0].function.arguments)
    content = getattr(message, "content", None)
    return None if content is None else str(content)


@dataclass(frozen=True)
class TypedReply:
    """A validated reply, its usage, and the seconds spent waiting on the provider."""

    value: BaseModel
    usage: LLMUsage
    model_seconds: float


class LLMCallError(ModelError):
    """A `ModelError` that also carries the usage of the failed call, for the usage log."""

    def __init__(self, message: str, *, model: str, usage: LLMUsage, last_reply: str | None) -> None:
        super().__init__(message, model=model, attempts=usage.attempts, last_reply=last_reply)
        self.usage = usage


def _request(
    spec: ModelSpec,
    messages: list[dict[str, str]],
    response_model: type[BaseModel],
    retries: int,
    provider_retries: int,
) -> dict[str, Any]:
    # temperature 0: extraction should be repeatable. LiteLLM's own retries are off: _send retries
    # rate limits and transient errors, so each request is counted; Instructor's max_retries re-asks
    # after a validation error.
    kwargs: dict[str, Any] = {"temperature": 0, **spec.extra, "num_retries": 0}  # memlayer retries: _send
    kwargs.update(model=spec.litellm_model, messages=messages, response_model=response_model, max_retries=retries)
    if spec.api_base:
        kwargs["api_base"] = spec.api_base
    if spec.api_key:
        kwargs["api_key"] = spec.api_key
    return kwargs


def _transient(exc: Exception, litellm: ModuleType) -> bool:
    """Worth sending again: rate limits, timeouts, dropped connections and the provider's 5xx."""
    kinds = tuple(
        getattr(litellm, name)
        for name in (
            "RateLimitError",
            "Timeout",
            "APIConnectionError",
            "InternalServerError",
            "ServiceUnavailableError",
        )
        if isinstance(getattr(litellm, name, None), type)
    )
    return isinstance(exc, kinds)


def _backoff(retry: int) -> float:
    return min(0.25 * 2.0**retry, 4.0)


def _instructor_mode(spec: ModelSpec) -> Any:
    import instructor

    return {
        "tools": instructor.Mode.TOOLS,
        "json_schema": instructor.Mode.JSON_SCHEMA,
        "json": instructor.Mode.JSON,
        "md_json": instructor.Mode.MD_JSON,
    }[spec.instructor_mode]


def usage_of(spec: ModelSpec, purpose: str, attempts: UsageMeter, seconds: float) -> LLMUsage:
    return LLMUsage(
        call_id=clock.new_id(),
        model=str(spec),
        purpose=purpose,
        input_tokens=attempts.input_tokens,
        output_tokens=attempts.output_tokens,
        cost_usd=attempts.cost_usd,
        latency_ms=seconds * 1000,
        attempts=max(attempts.count, 1),
    )


def call_failure(spec: ModelSpec, purpose: str, attempts: UsageMeter, seconds: float, exc: Exception) -> MemlayerError:
    from instructor.core import InstructorRetryException

    from .testing.cassettes import active_cassette, unrecorded_request

    missing = unrecorded_request(exc)
    if missing is not None:
        # Under a replaying cassette, "connection error" would send people to debug their network.
        active = active_cassette()
        where = f" {active.path}" if active else ""
        how = active.record_command("rewrite") if active else "re-record with the model server up"
        first = str(missing).strip().splitlines()[0][:300]
        return CassetteError(
            f"{spec}: no recorded answer for this request in the cassette{where} ({first}). The prompt, "
            f"schema or model changed since recording; {how}"
        )
    # Instructor wraps a provider error in its retry exception; report the provider's own words.
    cause = exc.__cause__ if isinstance(exc, InstructorRetryException) and exc.__cause__ else exc
    provider_failed = attempts.last_reply is None
    what = "the provider failed" if provider_failed else "the reply never validated"
    summary = str(cause).strip().splitlines()[0][:300] if str(cause).strip() else type(cause).__name__
    return LLMCallError(
        f"{spec}: {what} after {max(attempts.count, 1)} attempt(s), nothing was written: {summary}",
        model=str(spec),
        usage=usage_of(spec, purpose, attempts, seconds),
        last_reply=attempts.last_reply,
    )


def complete_typed(
    spec: ModelSpec,
    messages: list[dict[str, str]],
    response_model: type[ResponseT],
    *,
    purpose: str,
    retries: int,
    provider_retries: int = 2,
) -> TypedReply:
    """One typed call: Instructor over ``litellm.completion``; validation errors are re-asked."""
    import instructor

    litellm = import_litellm()
    attempts = UsageMeter()

    def completion(*args: Any, **kwargs: Any) -> Any:
        for retry in range(provider_retries + 1):
            attempts.count += 1
            started = time.perf_counter()
            try:
                response = litellm.completion(*args, **kwargs)
            except Exception as exc:
                if retry == provider_retries or not _transient(exc, litellm):
                    raise
                time.sleep(_backoff(retry))
                continue
            attempts.record(response, time.perf_counter() - started, litellm)
            return response
        raise AssertionError("unreachable: the last attempt returns or raises")

    client = instructor.from_litellm(completion, mode=_instructor_mode(spec))
    started = time.perf_counter()
    try:
        value = client.chat.completions.create(**_request(spec, messages, response_model, retries, provider_retries))
    except Exception as exc:
        raise call_failure(spec, purpose, attempts, time.perf_counter() - started, exc) from exc
    usage = usage_of(spec, purpose, attempts, time.perf_counter() - started)
    return TypedReply(value=value, usage=usage, model_seconds=attempts.model_seconds)


async def acomplete_typed(
    spec: ModelSpec,
    messages: list[dict[str, str]],
    response_model: type[ResponseT],
    *,
    purpose: str,
    retries: int,
    provider_retries: int = 2,
) -> TypedReply:
    """The async twin of `complete_typed`, over ``litellm.acompletion``."""
    import instructor

    litellm = import_litellm()
    attempts = UsageMeter()

    async def acompletion(*args: Any, **kwargs: Any) -> Any:
        import asyncio

        for retry in range(provider_retries + 1):
            attempts.count += 1
            started = time.perf_counter()
            try:
                response = await litellm.acompletion(*args, **kwargs)
            except Exception as exc:
                if retry == provider_retries or not _transient(exc, litellm):
                    raise
                await asyncio.sleep(_backoff(retry))
                continue
            attempts.record(response, time.perf_counter() - started, litellm)
            return response
        raise AssertionError("unreachable: the last attempt returns or raises")

    client = instructor.from_litellm(acompletion, mode=_instructor_mode(spec))
    started = time.perf_counter()
    try:
        value = await client.chat.completions.create(
            **_request(spec, messages, response_model, retries, provider_retries)
        )
    except Exception as exc:
        raise call_failure(spec, purpose, attempts, time.perf_counter() - started, exc) from exc
    usage = usage_of(spec, purpose, attempts, time.perf_counter() - started)
    return TypedReply(value=value, usage=usage, model_seconds=attempts.model_seconds)


def embed_texts(spec: ModelSpec, texts: list[str]) -> tuple[list[list[float]], LLMUsage]:
    """One batched ``litellm.embedding`` call: a vector per text, in order, and the call's usage."""
    import uuid

    litellm = import_litellm()
    kwargs: dict[str, Any] = {"model": spec.litellm_model, "input": texts, **spec.extra}
    if spec.api_base:
        kwargs["api_base"] = spec.api_base
    if spec.api_key:
        kwargs["api_key"] = spec.api_key
    kwargs.setdefault("num_retries", 2)
    started = time.perf_counter()
    try:
        response = litellm.embedding(**kwargs)
    except Exception as exc:
        raise _embedding_failure(spec, exc) from exc
    seconds = time.perf_counter() - started
    try:
        items = sorted(response.data, key=lambda item: int(item["index"]))
        vectors = [list(map(float, item["embedding"])) for item in items]
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"{spec}: the embedding reply had no vectors: {exc}", model=str(spec)) from exc
    if len(vectors) != len(texts):
        raise ModelError(f"{spec}: asked for {len(texts)} embeddings, got {len(vectors)}", model=str(spec))
    usage = getattr(response, "usage", None)
    cost: float | None = None
    try:
        cost = float(litellm.completion_cost(completion_response=response, call_type="embedding"))
    except Exception:  # no price known for this model (local servers)
        cost = None
    return vectors, LLMUsage(
        call_id=str(uuid.uuid4()),
        model=str(spec),
        purpose="embedding",
        input_tokens=int(getattr(usage, "prompt_tokens", 0) or 0),
        output_tokens=0,
        cost_usd=cost,
        latency_ms=seconds * 1000,
        attempts=1,
    )


def _embedding_failure(spec: ModelSpec, exc: Exception) -> MemlayerError:
    from .testing.cassettes import active_cassette, unrecorded_request

    missing = unrecorded_request(exc)
    if missing is not None:
        active = active_cassette()
        where = f" {active.path}" if active else ""
        how = active.record_command("rewrite") if active else "re-record with the model server up"
        return CassetteError(
            f"{spec}: no recorded answer for this embedding request in the cassette{where}; the texts or model "
            f"changed since recording; {how}"
        )
    summary = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
    return ModelError(f"{spec}: the embedding call failed, nothing was written: {summary}", model=str(spec))
