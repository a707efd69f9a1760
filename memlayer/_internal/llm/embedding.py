"""Embedding calls: one batched ``litellm.embedding`` request per call (`memlayer._internal.llm.road`)."""

from __future__ import annotations

import time
from typing import Any

from .. import flow
from ..errors import ModelError
from ..records import LLMUsage
from .road import road
from .spec import ModelSpec
from .usage import UsageMeter, call_failure, usage_of

__all__ = ["embed_texts"]

_PROVIDER_RETRIES = 2  # re-sends of a transient provider error (LiteLLM's own default)


def embed_texts(spec: ModelSpec, texts: list[str], **params: Any) -> tuple[list[list[float]], LLMUsage]:
    """One batched embedding call: a vector per text, in order, and the call's usage; ``params`` are the
    model's own (``task_type``, ``input_type``)."""
    way = road(spec)
    way.ready()
    meter, started = UsageMeter(), time.perf_counter()
    kwargs = way.keywords(purpose="embedding", input=texts, **params)
    try:
        response = flow.run(way.send(meter, _PROVIDER_RETRIES, kwargs, embedding=True))
    except Exception as exc:
        raise call_failure(
            spec, "embedding", meter, time.perf_counter() - started, exc, request="this embedding request"
        ) from exc
    try:
        items = sorted(response.data, key=lambda item: int(item["index"]))
        vectors = [list(map(float, item["embedding"])) for item in items]
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise ModelError(f"{spec}: the embedding reply had no vectors: {exc}", model=str(spec)) from exc
    if len(vectors) != len(texts):
        raise ModelError(f"{spec}: asked for {len(texts)} embeddings, got {len(vectors)}", model=str(spec))
    return vectors, usage_of(spec, "embedding", meter, time.perf_counter() - started)
