"""Embedding calls through LiteLLM: one batched ``litellm.embedding`` request per call."""

from __future__ import annotations

import time
from typing import Any

from ..cassettes import explain_unrecorded
from ..errors import MemlayerError, ModelError
from ..records import LLMUsage
from .litellm import check_keys_when_recording, import_litellm
from .spec import ModelSpec

__all__ = ["embed_texts"]


def embed_texts(spec: ModelSpec, texts: list[str]) -> tuple[list[list[float]], LLMUsage]:
    """One batched ``litellm.embedding`` call: a vector per text, in order, and the call's usage."""
    import uuid

    litellm = import_litellm()
    check_keys_when_recording(spec)
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
    unrecorded = explain_unrecorded(
        exc, subject=str(spec), request="this embedding request", changed="The texts or model"
    )
    if unrecorded is not None:
        return unrecorded
    summary = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else type(exc).__name__
    return ModelError(f"{spec}: the embedding call failed, nothing was written: {summary}", model=str(spec))
