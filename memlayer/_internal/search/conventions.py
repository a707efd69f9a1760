"""What an embedding model expects besides the text: query and document prefixes, or task types.

Retrieval models are trained with the two sides marked: nomic-embed-text wants ``search_query: `` and
``search_document: ``, e5 ``query: `` and ``passage: ``, BGE an instruction before the query alone;
Gemini and Vertex take a ``task_type``, Cohere and Voyage an ``input_type``. Without them a query and
its answer land further apart (nomic-embed on LoCoMo, dense alone: see ``docs/embedders.md``).

`conventions_for` knows the common models by name (Ollama's tags, Hugging Face names, hosted ones);
any other model gets none, and ``LiteLLMEmbedder(..., query_prefix=..., document_prefix=...)`` sets
them for a model this table does not know.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

__all__ = ["Conventions", "Side", "conventions_for"]

Side = Literal["query", "document"]


@dataclass(frozen=True)
class Conventions:
    """The prefix each side's texts get, and the extra LiteLLM parameters of each side's request."""

    query_prefix: str = ""
    document_prefix: str = ""
    query_params: dict[str, Any] = field(default_factory=dict)
    document_params: dict[str, Any] = field(default_factory=dict)

    def texts(self, side: Side, texts: list[str]) -> list[str]:
        prefix = self.query_prefix if side == "query" else self.document_prefix
        return [prefix + text for text in texts] if prefix else texts

    def params(self, side: Side) -> dict[str, Any]:
        return dict(self.query_params if side == "query" else self.document_params)

    @property
    def any(self) -> bool:
        return bool(self.query_prefix or self.document_prefix or self.query_params or self.document_params)


NONE = Conventions()
_BGE_QUERY = "Represent this sentence for searching relevant passages: "

# (what the model name contains, lower-cased, provider stripped; its conventions). The first match wins,
# so a more specific name comes before a shorter one it contains.
_BY_NAME: tuple[tuple[str, Conventions], ...] = (
    ("nomic-embed-text", Conventions("search_query: ", "search_document: ")),
    ("nomic-embed", Conventions("search_query: ", "search_document: ")),
    ("embeddinggemma", Conventions("task: search result | query: ", "title: none | text: ")),
    ("e5-", Conventions("query: ", "passage: ")),
    ("bge-m3", NONE),  # BGE-M3 needs no instruction
    ("bge-", Conventions(query_prefix=_BGE_QUERY)),
    ("mxbai-embed-large", Conventions(query_prefix=_BGE_QUERY)),
    ("snowflake-arctic-embed", Conventions(query_prefix=_BGE_QUERY)),
)
# Providers whose API marks the side with a parameter, not a prefix.
_BY_PROVIDER: dict[str, Conventions] = {
    "gemini": Conventions(
        query_params={"task_type": "RETRIEVAL_QUERY"}, document_params={"task_type": "RETRIEVAL_DOCUMENT"}
    ),
    "vertex_ai": Conventions(
        query_params={"task_type": "RETRIEVAL_QUERY"}, document_params={"task_type": "RETRIEVAL_DOCUMENT"}
    ),
    "cohere": Conventions(
        query_params={"input_type": "search_query"}, document_params={"input_type": "search_document"}
    ),
    "voyage": Conventions(query_params={"input_type": "query"}, document_params={"input_type": "document"}),
}


def conventions_for(provider: str, model: str) -> Conventions:
    """The conventions of ``model`` (its name as the provider spells it, e.g. ``nomic-embed-text:v1.5``)."""
    name = model.lower().rsplit("/", 1)[-1]  # "nomic-ai/nomic-embed-text-v1.5" -> the model's own name
    for part, conventions in _BY_NAME:
        if part in name:
            return conventions
    return _BY_PROVIDER.get(provider, NONE)
