"""`Retrieval`: what a `MemoryManager` needs from embedding and search, in one place.

It embeds the texts of a change before the write lock is taken (one batched call), writes their
vectors in the change's own transaction, and updates every loaded search index of the database
under the same lock, after the commit: a search never sees a state the database does not hold.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .. import checks, clock
from ..db import memories as memory_sql
from ..db import vectors as vector_sql
from ..db.changes import ChangeSet, Provenance
from ..errors import ConfigError, MemlayerError, ModelError
from ..llm import tracing
from ..records import LLMUsage, Memory, SearchHit
from .embedders import Embedder, EmbedderOption, LiteLLMEmbedder, resolve_embedder
from .filters import SearchFilters
from .time import ALL_TIME, TimeWindow, mentions_move, moved_at, named_window, time_shares

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from ..db.store import Connection, Store
    from .index import UserIndex

__all__ = ["NO_VECTORS", "Embedded", "Retrieval", "SearchRequest", "search_request"]

_log = logging.getLogger("memlayer")

Vectors = dict[str, "npt.NDArray[np.float32]"]
Keyed = dict[tuple[str, int], Any]  # (memory_id, version) -> vector

# How much of a memory's input is embedded: about the 512 tokens e5 reads, and no whole transcript
# sent to a remote embedder. BM25 reads the input's first 128 words (`memlayer._internal.search.index`).
INPUT_CHARS = 2000


def input_text(source: str | None) -> str:
    """The part of an input that is embedded ("" for none)."""
    return (source or "")[:INPUT_CHARS].strip()


@dataclass(frozen=True)
class Embedded:
    """The vectors of a change's texts, and the usage of the remote call that made them (if any)."""

    vectors: Vectors
    usage: list[LLMUsage]


NO_VECTORS = Embedded({}, [])


@dataclass(frozen=True)
class SearchRequest:
    """The checked arguments of one `MemoryManager` search."""

    user_id: str
    query: str
    limit: int
    filters: SearchFilters
    as_of: datetime | None
    min_score: float | None


def search_request(
    query: object,
    user_id: object,
    limit: object,
    agent_id: object,
    topics: object,
    since: object,
    until: object,
    as_of: object,
    min_score: object,
    *,
    valid_at: object = None,
    held_between: object = None,
) -> SearchRequest:
    """Every search argument checked, before anything is read: a `ConfigError` names the first bad one."""
    user = checks.user(user_id)
    if not isinstance(query, str):
        raise ConfigError(f"query must be a string, got {query!r}")
    checks.utf8("query", query)
    count = checks.count("limit", limit, minimum=1)
    filters = SearchFilters(
        agent_id=checks.optional_text("agent_id", agent_id),
        topics=tuple(checks.topic_filter(topics)),
        since=checks.timestamp("since", since),
        until=checks.timestamp("until", until),
        valid_at=checks.timestamp("valid_at", valid_at),
        held_between=checks.time_window("held_between", held_between),
    )
    moment = checks.timestamp("as_of", as_of)
    if min_score is not None and (
        isinstance(min_score, bool) or not isinstance(min_score, (int, float)) or not math.isfinite(min_score)
    ):
        # A NaN would quietly drop every result; a bool is almost certainly a misplaced flag.
        raise ConfigError(f"min_score must be a finite number (scores run from 0 to about 4), got {min_score!r}")
    return SearchRequest(user, query, count, filters, moment, None if min_score is None else float(min_score))


class Retrieval:
    """Embedding and search for one manager; numpy and the index load on first use, not on import."""

    def __init__(self, embedder: EmbedderOption = "auto") -> None:
        # No db here: each call is given its manager's, so the manager stays the one owner of it.
        self.embedder: Embedder | None = resolve_embedder(embedder)
        # Not checked against the database here: a manager with a new embedder must be able to
        # call reembed(); its searches and writes refuse to mix vector spaces until then.
        self.model = self.embedder.name if self.embedder is not None else None

    # -- writes ------------------------------------------------------------------------------------

    def embed(self, texts: Sequence[str], inputs: Sequence[str | None] = ()) -> Embedded:
        """One batched call for the distinct ``texts`` and the start of each of the ``inputs`` they came
        from; call it before taking the write lock."""
        if self.embedder is None:
            return NO_VECTORS
        unique = list(dict.fromkeys(t for t in [*(t.strip() for t in texts), *map(input_text, inputs)] if t))
        if not unique:
            return NO_VECTORS
        matrix, usage = self._embed_documents(unique)
        if len(matrix) != len(unique):
            raise ModelError(
                f"the embedder returned {len(matrix)} vectors for {len(unique)} texts", model=self.model or "embedder"
            )
        return Embedded(dict(zip(unique, matrix, strict=True)), usage)

    def _embed_documents(self, texts: list[str]) -> tuple[Any, list[LLMUsage]]:
        embedder = self.embedder
        assert embedder is not None
        try:
            if isinstance(embedder, LiteLLMEmbedder):  # a remote call: its usage is recorded in llm_calls
                matrix, usage = embedder.embed_with_usage(texts)
                return matrix, [usage]
            return embedder.embed_documents(texts), []
        except MemlayerError:
            raise
        except Exception as exc:  # a custom embedder's own failure: the caller gets a MemlayerError
            raise ModelError(f"the embedder {embedder.name!r} failed: {exc!r}", model=str(embedder.name)) from exc

    @contextmanager
    def transaction(self, db: Store, changes: ChangeSet, embedded: Embedded) -> Iterator[Connection]:
        """``db.transaction()`` that also writes the vectors of ``changes``, their embedding usage, and updates
        the indexes."""
        with db.reading(), db.transaction() as conn:
            yield conn
            keyed, sources = self._keyed(changes, embedded.vectors)
            if keyed and self.model is not None:
                import numpy as np

                keys, user = list(keyed), changes.origin.user_id
                inputs = [sources.get(key) for key in keys]
                vector_sql.write_vectors(conn, user, self.model, keys, np.stack(list(keyed.values())), inputs)
            for usage in embedded.usage:
                memory_sql.insert_llm_call(conn, usage, changes.origin, prompt_version=None)
            # Still under the lock: the transaction has committed when the inner block exits, so
            # the index update happens before any other thread can search or write.
        self._committed(db, changes, keyed, sources)

    def _keyed(self, changes: ChangeSet, vectors: Vectors) -> tuple[Keyed, Keyed]:
        """The vectors of the change's current versions, and of the inputs they came from."""
        keyed: Keyed = {}
        sources: Keyed = {}
        for memory in changes.current_versions():
            vector = vectors.get(memory.memory.strip())
            if vector is None:
                if self.embedder is not None:
                    _log.warning("memory %s has no vector; search ranks it by keywords", memory.memory_id)
                continue
            keyed[(memory.memory_id, memory.version)] = vector
            source = vectors.get(input_text(memory.input))
            if source is not None:
                sources[(memory.memory_id, memory.version)] = source
        return keyed, sources

    def _committed(self, db: Store, changes: ChangeSet, keyed: Keyed, sources: Keyed) -> None:
        touched, current = changes.touched_ids(), changes.current_versions()
        from .indexes import indexes_of  # here, not at the top: it brings numpy (60 ms)

        for index in indexes_of(db):
            same = index.model == self.model
            index.apply(
                changes.origin.user_id, touched, current, keyed if same else {}, changes.revisions,
                input_vectors=sources if same else {},
            )  # fmt: skip

    def forget(self, db: Store, user_id: str | None = None) -> None:
        """Drop loaded indexes (one user's, or all) after a write that bypassed `transaction`."""
        from .indexes import indexes_of  # here, not at the top: it brings numpy (60 ms)

        for index in indexes_of(db):
            index.forget(user_id)

    def reembed(self, db: Store, batch_size: int = 256) -> int:
        """Give every current memory a vector from this embedder and drop other embedders' vectors."""
        if self.embedder is None or self.model is None:
            raise ConfigError("this MemoryManager has no embedder (embedder='lexical'); nothing to re-embed")
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size!r}")
        with db.transaction() as conn:
            vector_sql.drop_other_embedders(conn, self.model)
        import numpy as np

        done = 0
        while True:
            with db.reading() as conn:
                todo = vector_sql.missing_vectors(conn, self.model, batch_size)
            if not todo:
                break
            texts = list(dict.fromkeys(t for row in todo for t in (row[3].strip(), input_text(row[4])) if t))
            vectors = dict(zip(texts, self.embedder.embed_documents(texts), strict=True))
            with db.transaction() as conn:
                for user in sorted({row[2] for row in todo}):
                    picked = [row for row in todo if row[2] == user]
                    keys = [(row[0], row[1]) for row in picked]
                    matrix = np.stack([vectors[row[3].strip()] for row in picked])
                    sources = [vectors.get(input_text(row[4])) for row in picked]
                    vector_sql.write_vectors(conn, user, self.model, keys, matrix, sources)
            done += len(todo)
        self.forget(db)
        return done

    # -- reads ------------------------------------------------------------------------------------

    def query_vector(
        self, db: Store, query: str, *, remote: bool = True, user_id: str | None = None
    ) -> npt.NDArray[np.float32] | None:
        """The query's vector; None without an embedder, or when ``remote`` is False and it is not local.

        A remote call's usage is recorded in ``llm_calls`` (purpose ``embedding``) for ``user_id``.
        """
        if self.embedder is None or not query.strip() or (not remote and not self.embedder.local):
            return None
        vector, usage = self._embed_documents_query(query)
        if usage is not None and user_id is not None:
            with db.transaction() as conn:
                memory_sql.insert_llm_call(conn, usage, Provenance(user_id, "search", clock.now()), prompt_version=None)
        result: npt.NDArray[np.float32] = vector
        return result

    def _embed_documents_query(self, query: str) -> tuple[Any, LLMUsage | None]:
        embedder = self.embedder
        assert embedder is not None
        try:
            if isinstance(embedder, LiteLLMEmbedder):
                matrix, usage = embedder.embed_with_usage([query], side="query")
                return matrix[0], usage
            return embedder.embed_query(query), None
        except MemlayerError:
            raise
        except Exception as exc:
            raise ModelError(f"the embedder {embedder.name!r} failed: {exc!r}", model=str(embedder.name)) from exc

    def find_memories(self, db: Store, request: SearchRequest) -> list[Memory]:
        """The memories a `SearchRequest` asks for, best first."""
        return [hit.memory for hit in self.find_hits(db, request)]

    def find_hits(self, db: Store, request: SearchRequest) -> list[SearchHit]:
        """The memories a `SearchRequest` asks for, best first, each with its score and signals."""
        with tracing.span("search", user_id=request.user_id, limit=request.limit):
            vector = self.query_vector(db, request.query, user_id=request.user_id)
            with db.reading() as conn:
                return self.hits(
                    db,
                    conn,
                    request.user_id,
                    request.query,
                    request.limit,
                    query_vector=vector,
                    filters=request.filters,
                    as_of=request.as_of,
                    min_score=request.min_score,
                )

    def hits(
        self,
        db: Store,
        conn: Connection,
        user_id: str,
        query: str,
        limit: int,
        *,
        query_vector: npt.NDArray[np.float32] | None,
        filters: SearchFilters | None = None,
        as_of: datetime | None = None,
        min_score: float | None = None,
    ) -> list[SearchHit]:
        """Call inside ``db.reading()``. The user's best ``limit`` memories for ``query``, each with its
        fused score and the share of each signal in it."""
        filters = filters or SearchFilters()
        if as_of is None and not filters.by_event_time and self._new_user(db, conn, user_id):
            return []
        window = self._named_window(db, conn, user_id, query)
        loaded = filters
        if window is not None and not filters.by_event_time and memory_sql.ended_facts_in(conn, user_id, window.span):
            # A query naming a time ranks past values too ("where did I live in 2020"): when one ended in
            # its window, every fact memlayer knows of is read, ended or not (else the cached index serves).
            loaded = replace(filters, held_between=ALL_TIME)
        index = self._index(db, conn, user_id, as_of, loaded)
        shares = None if window is None else time_shares(index.facts, window)
        from . import candidates  # here, not at the top: it brings numpy (60 ms)
        from .fusion import weights_for

        weights = weights_for(self.model)
        fusion = candidates.fuse(
            index, query, query_vector, filters, limit, min_score=min_score, weights=weights, time=shares
        )
        return [
            SearchHit(memory=index.memory(row), score=fusion.score(row), signals=fusion.signals(row))
            for row in fusion.rows
        ]

    def _named_window(self, db: Store, conn: Connection, user_id: str, query: str) -> TimeWindow | None:
        """The time ``query`` names (`time.named_window`); "before I moved" reads when the current home began."""
        today = clock.now().date()
        window = named_window(query, today)
        if window is None and mentions_move(query):
            index = self._index(db, conn, user_id, None, SearchFilters())
            window = named_window(query, today, moved=moved_at([index.facts[r] for r in index.row_of.values()]))
        return window

    def _new_user(self, db: Store, conn: Connection, user_id: str) -> bool:
        """True when the user has no current memory and no loaded index: nothing to rank, nothing to load.

        A new user's first extraction then imports no numpy and reads no stop-word lists (about 110 ms
        in a fresh process); one indexed lookup, made only while the user's index is not loaded.
        """
        from .indexes import index_for

        return not index_for(db, self.model).holds(user_id) and not memory_sql.has_current_memory(conn, user_id)

    def _index(
        self, db: Store, conn: Connection, user_id: str, as_of: datetime | None, filters: SearchFilters
    ) -> UserIndex:
        from .indexes import index_for, load_one_off  # here, not at the top: it brings numpy (60 ms)

        if as_of is not None or filters.by_event_time:
            return load_one_off(
                conn, user_id, self.model, as_of=as_of, valid_at=filters.valid_at, held_between=filters.held_between
            )
        return index_for(db, self.model).user(conn, user_id)
