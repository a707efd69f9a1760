"""``memlayer add | extract | search | list | history | forget``: a user's memories from the shell."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated

import typer
from rich.table import Table

from ..errors import ConfigError
from ..memory.manager import MemoryManager
from ..records import SearchHit
from ..search.index import SIGNALS
from .app import (
    ApiBaseOpt,
    DbOpt,
    JsonOpt,
    ModelOpt,
    UserOpt,
    app,
    counted,
    err,
    events_table,
    existing_manager,
    memories_table,
    model_ready,
    open_manager,
    out,
    plural,
    print_json,
    read_messages,
    table,
)


@app.command()
def add(
    text: Annotated[str, typer.Argument(help="the memory, as it should be stored")],
    user: UserOpt,
    topic: Annotated[list[str] | None, typer.Option("--topic", "-t", help="a topic (repeatable)")] = None,
    agent: Annotated[str | None, typer.Option(help="agent_id")] = None,
    db: DbOpt = None,
) -> None:
    """Store a memory as given (no LLM call)."""
    with open_manager(db, None) as manager:
        memory = manager.add_user_memory(text, user_id=user, topics=topic or [], agent_id=agent)
    out.print(f"added {memory.memory_id}: {memory.memory}")


@app.command()
def extract(
    source: Annotated[str, typer.Argument(help="file of messages (JSON list, JSON lines or text), or - for stdin")],
    user: UserOpt,
    agent: Annotated[str | None, typer.Option(help="agent_id")] = None,
    session: Annotated[str | None, typer.Option(help="session_id")] = None,
    db: DbOpt = None,
    model: ModelOpt = None,
    api_base: ApiBaseOpt = None,
) -> None:
    """Extract memories from messages with one LLM call, and apply them."""
    if not model:
        raise ConfigError("extract needs a model: give --model provider:model or set MEMLAYER_MODEL")
    model_ready(model, api_base=api_base)
    messages = read_messages(source)
    with open_manager(db, model, api_base) as manager, err.status(f"asking {model}..."):
        result = manager.create_user_memories(messages, user_id=user, agent_id=agent, session_id=session)
    rows = [(c.operation, c.memory_id, c.old_memory, c.memory, c.reason) for c in result.changes]
    out.print(table("changes", ["op", "memory_id", "old", "new", "reason"], rows))
    for skipped in result.skipped:
        out.print(f"skipped: {skipped}")
    if result.usage:
        u = result.usage
        out.print(f"{plural(u.attempts, 'call')}, {u.input_tokens} + {u.output_tokens} tokens, {u.latency_ms:.0f} ms")


@app.command()
def search(
    text: Annotated[str, typer.Argument(help="what to look for")],
    user: UserOpt,
    limit: Annotated[int, typer.Option(min=1)] = 10,
    min_score: Annotated[
        float | None, typer.Option("--min-score", help="only results scoring at least this (0 to about 4)")
    ] = None,
    explain: Annotated[
        bool, typer.Option("--explain", help="each signal's share of the score: vector, keywords, input, recency, time")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the results, scores and signals as JSON")] = False,
    valid_at: Annotated[
        datetime | None, typer.Option(help="search the facts that held then in the user's life (event time, UTC)")
    ] = None,
    held_from: Annotated[
        datetime | None, typer.Option(help="search the facts that held at some time from then (with --held-until)")
    ] = None,
    held_until: Annotated[datetime | None, typer.Option(help="... until then (event time, UTC)")] = None,
    db: DbOpt = None,
) -> None:
    """The user's memories that best match a query, with their scores (docs/time.md for the times)."""
    if (held_from is None) != (held_until is None):
        raise ConfigError("give both --held-from and --held-until, or neither")
    window = None if held_from is None or held_until is None else (held_from, held_until)
    with existing_manager(db, None) as manager:
        hits = manager.search_user_memories_with_scores(
            text, user_id=user, limit=limit, min_score=min_score, valid_at=valid_at, held_between=window
        )
    if as_json:
        sys.stdout.write(json.dumps([hit.model_dump(mode="json") for hit in hits], indent=2, ensure_ascii=False) + "\n")
        return
    out.print(_hits_table(f"{user}: {text!r}", hits, explain=explain))
    if not hits:
        out.print("no memory matches" + (f" with a score of {min_score:g} or more" if min_score is not None else ""))


def _hits_table(title: str, hits: Sequence[SearchHit], *, explain: bool) -> Table:
    # A score sums its signals' shares, each at most 1 (recency 0.001): three decimals show every one.
    signals = list(SIGNALS) if explain else []
    rows = [
        (
            f"{hit.score:.3f}",
            *(f"{hit.signals.get(name, 0.0):.3f}" for name in signals),
            hit.memory.memory_id,
            hit.memory.memory,
            hit.memory.topics,
            hit.memory.version,
            hit.memory.updated_at,
        )
        for hit in hits
    ]
    return table(title, ["score", *signals, "memory_id", "memory", "topics", "v", "updated (UTC)"], rows)


@app.command(name="list")
def list_(
    user: UserOpt,
    topic: Annotated[list[str] | None, typer.Option("--topic", "-t", help="only these topics")] = None,
    as_of: Annotated[datetime | None, typer.Option(help="as memlayer held them then (record time, UTC)")] = None,
    valid_at: Annotated[
        datetime | None, typer.Option(help="the facts that held then in the user's life (event time, UTC)")
    ] = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """The user's memories that hold now (or held at --valid-at; or as memlayer held them at --as-of)."""
    with existing_manager(db, None) as manager:
        memories = manager.get_user_memories(user_id=user, topics=topic, as_of=as_of, valid_at=valid_at)
    if as_json:
        print_json([m.model_dump(mode="json") for m in memories])
        return
    out.print(memories_table(f"{user}: {plural(len(memories), 'memory', 'memories')}", memories))


@app.command()
def history(
    user: UserOpt,
    memory_id: Annotated[
        str | None, typer.Argument(help="one memory (its id, or a unique start of it); all of the user's when omitted")
    ] = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Every add, update and delete (of one memory, or of all the user's), oldest first."""
    with existing_manager(db, None) as manager:
        if memory_id:
            events = manager.get_memory_history(resolve_id(manager, user, memory_id, current=False), user_id=user)
        else:
            events = manager.get_user_events(user_id=user)
    if as_json:
        print_json([e.model_dump(mode="json") for e in events])
        return
    out.print(events_table(f"{user}: {plural(len(events), 'event')}", events))


@app.command()
def forget(
    user: UserOpt,
    memory_id: Annotated[
        str | None, typer.Argument(help="forget one memory (its id, or a unique start of it); history kept")
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="do not ask for confirmation")] = False,
    db: DbOpt = None,
) -> None:
    """Erase everything held about a user (every version, event, LLM call, session), or forget one memory."""
    with existing_manager(db, None) as manager:
        # The id is checked before asking: a typo is told at once, not after a "Delete?".
        target = resolve_id(manager, user, memory_id, current=True) if memory_id else None
        what = f"memory {target} of {user!r}" if target else f"EVERYTHING held about {user!r} (it cannot be undone)"
        if not yes:
            if not sys.stdin.isatty():
                raise ConfigError(f"forget asks before deleting {what}; pass --yes when not at a terminal")
            typer.confirm(f"Delete {what}?", abort=True)
        if target:
            manager.delete_user_memory(target, user_id=user)
            out.print(f"forgot {target} (its history stays until the user is erased)")
            return
        counts = manager.erase_user(user_id=user)
    if not any(counts.values()):
        raise ConfigError(f"nothing is held about user {user!r}")
    out.print("erased " + counted(counts))


def resolve_id(manager: MemoryManager, user: str, given: str, *, current: bool) -> str:
    """The user's memory id that ``given`` is, or is the only one to start with (as `history` shows 8 characters).

    ``current``: among the user's current memories (to forget one), else among every memory they ever had.
    """
    if current:
        ids = {m.memory_id for m in manager.get_user_memories(user_id=user)}
    else:
        ids = {e.memory_id for e in manager.get_user_events(user_id=user)}
    wanted = given.strip().lower()
    if wanted in ids:
        return wanted
    found = sorted(i for i in ids if wanted and i.startswith(wanted))
    if len(found) == 1:
        return found[0]
    if not found:
        raise ConfigError(f"user {user!r} has no {'current ' if current else ''}memory {given!r}")
    shown = ", ".join(i[:13] + "..." for i in found[:4])
    raise ConfigError(f"{given!r} starts {len(found)} of {user!r}'s memory ids ({shown}); give more of the id")
