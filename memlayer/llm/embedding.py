"""Embedding calls: one batched request per call, through LiteLLM or the direct OpenAI transport."""

from __future__ import annotations

import time
from typing import Any

from ..cassettes import explain_unrecorded
from ..errors import MemlayerError, ModelError
from ..records import LLMUsage
from . import openai_http, prices
from .litellm import check_keys_when_recording, import_litellm
from .spec import ModelSpec

__all__ = ["embed_texts"]


def embed_texts(spec: ModelSpec, texts: list[str]) -> tuple[list[list[float]], LLMUsage]:
    """One batched embedding call (LiteLLM's ``litellm.embedding``, or the direct transport where
    `memlayer.llm.openai_http` takes it): a vector per text, in order, and the call's usage."""
    import uuid

    direct = openai_http.uses_direct(spec, purpose="embedding")
    check_keys_when_recording(spec)
    started = time.perf_counter()
    try:
        data, tokens, cost = _direct_embedding(spec, texts) if direct else _litellm_embedding(spec, texts)
    except Exception as exc:
        raise _embedding_failure(spec, exc) from exc
    seconds = time.perf_counter() - started
    try:
        items = sorted(data, key=lambda item: int(item["index"]))
        vectors = [list(map(float, item["embedding"])) for item in items]
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"{spec}: the embedding reply had no vectors: {exc}", model=str(spec)) from exc
    if len(vectors) != len(texts):
        raise ModelError(f"{spec}: asked for {len(texts)} embeddings, got {len(vectors)}", model=str(spec))
    return vectors, LLMUsage(
        call_id=str(uuid.uuid4()),
        model=str(spec),
        purpose="embedding",
        input_tokens=tokens,
        output_tokens=0,
        cost_usd=cost,
        latency_ms=seconds * 1000,
        attempts=1,
    )


def _litellm_embedding(spec: ModelSpec, texts: list[str]) -> tuple[Any, int, float | None]:
    litellm = import_litellm()
    kwargs: dict[str, Any] = {"model": spec.litellm_model, "input": texts, **spec.extra}
    if spec.api_base:
        kwargs["api_base"] = spec.api_base
    if spec.api_key:
        kwargs["api_key"] = spec.api_key
    kwargs.setdefault("num_retries", 2)
    response = litellm.embedding(**kwargs)
    usage = getattr(response, "usage", None)
    cost: float | None = None
    try:
        cost = float(litellm.completion_cost(completion_response=response, call_type="embedding"))
    except Exception:  # no price known for this model (local servers)
        cost = None
    return response.data, int(getattr(usage, "prompt_tokens", 0) or 0), cost


def _direct_embedding(spec: ModelSpec, texts: list[str]) -> tuple[Any, int, float | None]:
    # A transient error is re-sent num_retries times (LiteLLM's default: 2).
    extra = {key: value for key, value in spec.extra.items() if key != "num_retries"}
    retries = int(spec.extra.get("num_retries", 2))
    request = openai_http.build_request(spec, {**extra, "model": spec.name, "input": texts}, endpoint="embeddings")
    for retry in range(retries + 1):
        try:
            reply = openai_http.post_json(request)
            break
        except openai_http.ProviderError as exc:
            if retry == retries or not exc.transient:
                raise
            time.sleep(min(0.25 * 2.0**retry, 4.0))
    if not isinstance(reply, dict):
        raise openai_http.ProviderError("APIError", f"the reply is not an embedding list: {str(reply)[:200]}")
    tokens = int((reply.get("usage") or {}).get("prompt_tokens") or 0)
    return reply.get("data"), tokens, prices.embedding_cost(str(reply.get("model") or spec.name), tokens)


def _embedding_failure(spec: ModelSpec, exc: Exception) -> MemlayerError:
    unrecorded = explain_unrecorded(
        exc, subject=str(spec), request="this embedding request", changed="The texts or model"
    )
    if unrecorded is not None:
        return unrecorded
    summary = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
    return ModelError(f"{spec}: the embedding call failed, nothing was written: {summary}", model=str(spec))
