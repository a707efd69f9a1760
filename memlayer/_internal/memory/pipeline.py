"""An extraction's steps around its one LLM call, each run under the store's lock.

`plan`: the candidate memories, read by the same hybrid search as ``search_user_memories``.
`commit_reply`: the reply's operations in one transaction with their vectors and the usage row.
`log_failed_call`: for a call that failed, the usage row alone (it cost tokens, and changed nothing).
`add_once`: a direct add, which a text the user already holds does not repeat.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable
from typing import Any

from .. import clock
from ..db import memories as memory_sql
from ..db.changes import ChangeSet, Fact, Provenance
from ..db.revisions import lock_user
from ..db.store import Connection, Store
from ..errors import ConfigError, MemlayerError
from ..facts import fact_key, infer_attribute
from ..llm.typed import TypedReply
from ..llm.usage import LLMCallError
from ..records import ExtractionResult, Memory, Message
from ..search.retrieval import NO_VECTORS, Embedded, Retrieval
from .extraction import ExtractionPlan, add_texts, changed_texts, plan_extraction, source_text
from .operations import build_response_model
from .prompts import PROMPT_VERSION
from .reconcile import apply_operations

__all__ = ["ALL_OPERATIONS", "add_once", "commit_reply", "current_memory", "log_failed_call", "plan", "upsert"]

_log = logging.getLogger("memlayer")

ALL_OPERATIONS = ("add", "update", "delete")


def plan(
    db: Store,
    retrieval: Retrieval,
    user: str,
    messages: list[Message] | None,
    task: str | None,
    instructions: list[str],
    candidate_limit: int,
    *,
    system_message: str | None = None,
    allowed: tuple[str, ...] = ALL_OPERATIONS,
) -> ExtractionPlan:
    """The prompt and response model of one extraction, with the user's most relevant memories as candidates.

    ``system_message`` replaces the rules of the system prompt (the instructions still follow it);
    ``allowed``: the operations the response model admits.
    """
    # The query is embedded only by a local embedder, so an extraction makes at most one (batched)
    # remote embedding call: the one for the texts it writes.
    vector = retrieval.query_vector(db, source_text(messages=messages, task=task), remote=False)
    with db.reading() as conn:
        made = plan_extraction(
            messages=messages,
            task=task,
            additional_instructions=instructions,
            candidate_limit=candidate_limit,
            rank=lambda text, limit: [
                hit.memory for hit in retrieval.hits(db, conn, user, text, limit, query_vector=vector)
            ],
        )
    if system_message is None and allowed == ALL_OPERATIONS:
        return made
    prompt = list(made.messages)
    if system_message is not None:
        extra = "".join(f"\n- {line}" for line in instructions)
        prompt[0] = {"role": "system", "content": system_message + (f"\n{extra}" if extra else "")}
    response_model = build_response_model(tuple(made.aliases), allowed)
    return dataclasses.replace(made, messages=prompt, response_model=response_model, allowed=allowed)


def commit_reply(
    db: Store,
    retrieval: Retrieval,
    plan: ExtractionPlan,
    reply: TypedReply,
    user: str,
    agent: str | None,
    session: str | None,
    source: str,
    finish: Callable[[Connection], None] | None = None,
) -> ExtractionResult:
    """Apply a validated reply: every operation, its vectors and the usage row commit together or not at all.

    ``finish`` runs last inside that transaction: a memory job marks itself done there (`memlayer._internal.db.jobs`),
    so its changes and its done mark commit together.
    """
    origin = Provenance(
        user_id=user,
        source=source,
        now=clock.now(),
        agent_id=agent,
        session_id=session,
        call_id=reply.usage.call_id,
        model=reply.usage.model,
        input=plan.input,
        learned_at=plan.learned_at,
    )
    operations = list(getattr(reply.value, "operations", []))
    changes = ChangeSet(origin)
    try:
        vectors = retrieval.embed(changed_texts(plan, operations), [plan.input])  # one batched call, outside the lock
        with retrieval.transaction(db, changes, vectors) as conn:
            lock_user(conn, user)  # the fact holders read here must still hold when the set is written
            stored = memory_sql.stored_keys(conn, user, add_texts(plan, operations))
            holders = memory_sql.current_fact_holders(conn, user)
            skipped = apply_operations(changes, plan, operations, stored, holders)
            changes.write(conn)
            memory_sql.insert_llm_call(conn, reply.usage, origin, prompt_version=PROMPT_VERSION)
            if finish is not None:
                finish(conn)
    except MemlayerError as exc:
        failed = LLMCallError(str(exc), model=reply.usage.model, usage=reply.usage, last_reply=None)
        log_failed_call(db, failed, user, agent, session)
        raise
    # Adds another process committed first (Postgres's unique current fact): listed, not repeated.
    skipped += [f"add: already stored by another writer meanwhile: {m.memory}" for m in changes.skipped]
    return ExtractionResult(changes=changes.changes, skipped=skipped, usage=reply.usage)


def log_failed_call(db: Store, exc: LLMCallError, user: str, agent: str | None, session: str | None) -> None:
    """The usage row of a failed call; a failure to write it is logged, never raised over the original."""
    origin = Provenance(user, exc.usage.purpose, clock.now(), agent, session, model=exc.model)
    try:
        with db.transaction() as conn:
            memory_sql.insert_llm_call(conn, exc.usage, origin, prompt_version=PROMPT_VERSION, error=str(exc))
    except MemlayerError as log_error:
        # The caller needs the original failure, not a second one from logging it (a locked file).
        _log.warning("could not record the failed LLM call %s: %s", exc.usage.call_id, log_error)


def replacement_vectors(db: Store, retrieval: Retrieval, user: str, memory_id: str, text: str) -> Embedded:
    """The vectors of a memory's new text and of the input it keeps: read first, to embed outside the lock.

    If the memory changes before the write, its input may differ: then it gets no input vector.
    """
    if retrieval.embedder is None:
        return NO_VECTORS
    with db.reading() as conn:
        old = memory_sql.find_memory(conn, user, memory_id)
    return retrieval.embed([text], [old.input if old is not None else None])


def add_once(
    db: Store, retrieval: Retrieval, origin: Provenance, text: str, topics: list[str], fact: Fact | None = None
) -> Memory:
    """Add ``text`` for ``origin.user_id`` unless it is already a current memory; returns the memory it is.

    Without a ``fact``, the key is inferred from the text and topics (`memlayer._internal.facts.infer_attribute`).
    A new value of a single-valued fact the user holds ("Lives in Bristol" beside "Lives in Leeds")
    is the update it is: the held memory gets the new text as its next version.
    """
    fact = fact or Fact(attribute=infer_attribute(text, topics))
    key = fact_key(fact.subject, fact.attribute)
    changes = ChangeSet(origin)
    vectors = retrieval.embed([text], [origin.input])  # one call, before the lock
    with retrieval.transaction(db, changes, vectors) as conn:
        holder = memory_sql.current_fact_holders(conn, origin.user_id).get(key) if key else None
        if holder is not None:
            if holder.memory == text:
                return holder
            new = changes.update(holder, text, topics or holder.topics, "a new value of a single-valued fact", fact,
                                 ends_old=True)  # fmt: skip
            changes.write(conn)
            return new
        new = changes.add(text, topics, fact=fact)
        # No lookup first: the INSERT itself skips a held text (a guard on DuckDB, the unique index on
        # Postgres), and only then is the memory that holds it read, in the same transaction.
        changes.write(conn)
        if changes.skipped:
            return memory_sql.find_by_text(conn, origin.user_id, text) or new
    return new


def current_memory(conn: Any, user: str, memory_id: str) -> Memory:
    """The user's current memory ``memory_id``, for an edit; `ConfigError` when there is none."""
    memory = memory_sql.find_memory(conn, user, memory_id)
    if memory is None:
        # Same words whether the id is unknown or another user's: an error must not confirm it exists.
        raise ConfigError(f"user {user!r} has no current memory {memory_id!r}")
    return memory


def upsert(db: Store, retrieval: Retrieval, origin: Provenance, memory_id: str, text: str, topics: list[str]) -> Memory:
    """Agno's upsert by a chosen id: a new version of the user's current memory ``memory_id``, or a new
    memory with that id. An id that another user's memory (or a deleted one) has is refused, in the
    same words either way, so the error does not confirm whose it is."""
    changes = ChangeSet(origin)
    vectors = retrieval.embed([text], [origin.input])  # one call, before the lock
    with retrieval.transaction(db, changes, vectors) as conn:
        owner = memory_sql.memory_owner(conn, memory_id)
        old = memory_sql.find_memory(conn, origin.user_id, memory_id)
        if owner is not None and old is None:
            raise ConfigError(f"memory_id {memory_id!r} is not free; give another id, or none to have one made")
        if old is not None and old.memory == text and old.topics == topics:
            return old
        if old is None:
            # A key another memory holds is left to it: an id the caller chose is not a move.
            fact = Fact(attribute=infer_attribute(text, topics))
            key = fact_key(fact.subject, fact.attribute)
            if key is not None and key in memory_sql.current_fact_holders(conn, origin.user_id):
                fact = Fact()
            new = changes.add(text, topics, fact=fact, memory_id=memory_id)
        else:
            new = changes.update(old, text, topics)
        changes.write(conn)
        if changes.skipped:  # the user already holds this text as another memory: not stored twice
            return memory_sql.find_by_text(conn, origin.user_id, text) or new
    return new
