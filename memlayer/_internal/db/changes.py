"""`ChangeSet`: the writes of one extraction or edit, collected in Python and written in a few statements.

Each DuckDB statement from Python costs about a millisecond, so a reply with four operations is not
written as twelve single-row statements: the set closes every superseded version with one UPDATE,
inserts every new version with one INSERT and every event with another, inside the caller's
transaction. A version that is both created and superseded in the same set (an update, then a
delete, of one memory) is inserted already closed.

On Postgres, where many processes write, a unique index holds one current version per user and
`memory_key`: an add whose text the user already has as a current memory (added by another process a
moment ago, or twice in one set) is skipped and listed in `ChangeSet.skipped`, with no version, event
or vector written for it. An update whose new text is already another current memory is refused with
`StorageError` instead: skipping it would delete the memory it replaces.

DuckDB has one writing process and no partial unique index. A set of one add (a direct add) is
guarded in its INSERT (``WHERE NOT EXISTS`` the same current text), skipped the same way, so a direct
add is one statement, not a lookup and an insert. A larger set goes in unguarded: an extraction looks
its add texts up first, in the same transaction (`memlayer._internal.db.memories.stored_keys`), because the skip
reasons it reports depend on them, and a guard over a multi-row insert is a join that costs more than that lookup.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, TypeVar

from .. import clock
from ..errors import StorageError
from ..facts import USER
from ..records import Memory, MemoryChange, Operation
from .fact_keys import current_fact_key, refuse_second_values
from .revisions import lock_user, touch_user
from .store import Connection, changed_rows, dialect

__all__ = ["ChangeSet", "Fact", "Provenance", "chunks", "memory_key"]

naive = clock.naive  # stored times are UTC without tzinfo (DuckDB's client needs pytz for TIMESTAMPTZ)
_COLUMNS = 18  # of a memories row as written
_ROW = "(" + ", ".join(["?"] * _COLUMNS) + ")"

_SPACES = re.compile(r"\s+")


def memory_key(text: str) -> str:
    """The text a duplicate is recognised by: case and spacing do not make a new fact."""
    return _SPACES.sub(" ", text.strip().lower())


@dataclass(frozen=True)
class Provenance:
    """Who and what is behind a set of writes; stamped on every version and event it makes."""

    user_id: str
    source: str
    now: datetime
    agent_id: str | None = None
    session_id: str | None = None
    call_id: str | None = None
    model: str | None = None
    input: str | None = None
    learned_at: datetime | None = None  # the conversation's time, when it has one; else ``now``

    @property
    def learned(self) -> datetime:
        return self.learned_at or self.now


@dataclass(frozen=True)
class Fact:
    """What a written version is about and when it held in the user's life (`memlayer._internal.facts`)."""

    subject: str = USER
    attribute: str = "other"
    held_from: datetime | None = None
    held_until: datetime | None = None


@dataclass
class _Event:
    operation: Operation
    memory_id: str
    old: Memory | None
    new: Memory | None
    reason: str | None


@dataclass
class ChangeSet:
    """Adds, updates and deletes for one user, applied in order, written by `write`."""

    origin: Provenance
    changes: list[MemoryChange] = field(default_factory=list)
    _closes: list[Memory] = field(default_factory=list)
    _versions: dict[tuple[str, int], Memory] = field(default_factory=dict)
    _events: list[_Event] = field(default_factory=list)
    skipped: list[Memory] = field(default_factory=list)
    """Adds `write` left out because the user already had the text as a current memory (Postgres)."""
    revisions: tuple[int, int] | None = None
    """The user's revision (before, after) once written to Postgres (`revisions.touch_user`); None on DuckDB."""

    def add(
        self,
        text: str,
        topics: list[str],
        reason: str | None = None,
        fact: Fact | None = None,
        *,
        memory_id: str | None = None,
    ) -> Memory:
        origin, fact = self.origin, fact or Fact()
        new = Memory(
            memory_id=memory_id or clock.new_id(),
            memory=text,
            topics=topics,
            user_id=origin.user_id,
            agent_id=origin.agent_id,
            session_id=origin.session_id,
            input=origin.input,
            created_at=origin.now,
            updated_at=origin.now,
            subject=fact.subject,
            attribute=fact.attribute,
            held_from=fact.held_from,
            held_until=fact.held_until,
            learned_at=origin.learned,
        )
        self._versions[(new.memory_id, 1)] = new
        self._record("add", new.memory_id, None, new, reason)
        return new

    def update(
        self,
        old: Memory,
        text: str,
        topics: list[str],
        reason: str | None = None,
        fact: Fact | None = None,
        *,
        ends_old: bool = False,
    ) -> Memory:
        """A new version of ``old``; its key and times are ``fact``'s (default: ``old``'s).

        ``ends_old``: the old value stopped holding in the user's life (a new home city, not a typo
        fixed), so the old version is closed in event time too, where the new one starts.
        """
        origin = self.origin
        fact = fact or Fact(old.subject, old.attribute, old.held_from, old.held_until)
        if ends_old:  # the old value held until the new one started: a timeline with no gap and no overlap
            fact = replace(fact, held_from=fact.held_from or origin.learned)
            self._close(old, ended=fact.held_from)
        else:
            self._close(old)
        new = old.model_copy(
            update={
                "memory": text,
                "topics": topics,
                "version": old.version + 1,
                "updated_at": origin.now,
                "recorded_until": None,
                "agent_id": origin.agent_id or old.agent_id,
                "session_id": origin.session_id or old.session_id,
                "input": origin.input if origin.input is not None else old.input,
                "subject": fact.subject,
                "attribute": fact.attribute,
                "held_from": fact.held_from,
                "held_until": fact.held_until,
                "learned_at": origin.learned,
            }
        )
        self._versions[(new.memory_id, new.version)] = new
        self._record("update", old.memory_id, old, new, reason)
        return new

    def delete(self, old: Memory, reason: str | None = None) -> None:
        self._close(old)
        self._record("delete", old.memory_id, old, None, reason)

    def _close(self, old: Memory, *, ended: datetime | None = None) -> None:
        key = (old.memory_id, old.version)
        held = {"held_until": ended} if ended is not None else {}
        if key in self._versions:  # made in this set: insert it already closed
            self._versions[key] = self._versions[key].model_copy(update={"recorded_until": self.origin.now, **held})
        else:
            self._closes.append(old.model_copy(update=held) if held else old)

    def _record(
        self, op: Operation, memory_id: str, old: Memory | None, new: Memory | None, reason: str | None
    ) -> None:
        self._events.append(_Event(op, memory_id, old, new, reason or None))
        shown = new or old
        self.changes.append(
            MemoryChange(
                operation=op,
                memory_id=memory_id,
                memory=new.memory if new else None,
                old_memory=old.memory if old else None,
                topics=shown.topics if shown else [],
                reason=reason or None,
            )
        )

    def touched_ids(self) -> list[str]:
        """Every memory id this set closes or versions."""
        ids = [m.memory_id for m in self._closes] + [memory_id for memory_id, _ in self._versions]
        return list(dict.fromkeys(ids))

    def current_versions(self) -> list[Memory]:
        """The versions this set writes that are current once it commits."""
        return [m for m in self._versions.values() if m.recorded_until is None]

    def write(self, conn: Connection) -> None:
        """Write everything inside the caller's transaction; refuse if a target changed meanwhile."""
        if not self._events:
            return
        lock_user(conn, self.origin.user_id)
        if self._closes:
            self._write_closes(conn)
        if self._versions:
            if dialect(conn) == "duckdb":
                refuse_second_values(conn, self.origin.user_id, self.current_versions())
            self._write_versions(conn)
        if self._events:
            self._write_events(conn)
            self.revisions = touch_user(conn, self.origin.user_id)

    def _write_closes(self, conn: Connection) -> None:
        origin = self.origin
        count = 0
        for chunk in chunks(self._closes, 2):
            match = " OR ".join(["(memory_id = ? AND version = ?)"] * len(chunk))
            params: list[Any] = [naive(origin.now), origin.user_id]
            for old in chunk:
                params += [old.memory_id, old.version]
            # No RETURNING: it costs more than the update itself (1.5 ms); the row count is enough.
            count += changed_rows(
                conn,
                f"UPDATE memories SET recorded_until = ? WHERE user_id = ? AND recorded_until IS NULL AND ({match})",
                params,
            )
        if count != len(self._closes):
            # Another writer changed one since it was read: applying on top would lose their change.
            ids = sorted({m.memory_id for m in self._closes})
            raise StorageError(f"memories {ids} changed while this change was prepared; retry")
        for old in self._closes:  # the few old values that ended in the user's life: one statement each
            if old.held_until is not None:
                conn.execute(
                    "UPDATE memories SET held_until = ? WHERE user_id = ? AND memory_id = ? AND version = ?",
                    [naive(old.held_until), origin.user_id, old.memory_id, old.version],
                )

    def _write_versions(self, conn: Connection) -> None:
        stored: set[tuple[str, int]] = set()
        for chunk in chunks(list(self._versions.values()), _COLUMNS):
            stored |= self._insert_versions(conn, chunk)
        if len(stored) != len(self._versions):
            self._skip_duplicates(stored)

    def _insert_versions(self, conn: Connection, versions: list[Memory]) -> set[tuple[str, int]]:
        """Insert ``versions``; return the keys of those stored (a held text's add may be refused)."""
        rows = self._version_rows(versions)
        columns = (
            "memory_id, version, user_id, agent_id, session_id, memory, memory_key, topics, input, created_at,"
            " recorded_from, recorded_until, subject, attribute, fact_key, held_from, held_until, learned_at"
        )
        keys = {(m.memory_id, m.version) for m in versions}
        if dialect(conn) == "postgres":
            values = ", ".join([_ROW] * len(versions))
            stored = conn.execute(
                f"INSERT INTO memories ({columns}) VALUES {values}"
                " ON CONFLICT (user_id, memory_key) WHERE recorded_until IS NULL"
                " DO NOTHING RETURNING memory_id, version",
                rows,
            ).fetchall()
            return {(str(r[0]), int(r[1])) for r in stored}
        if len(versions) == 1 and versions[0].version == 1:  # a lone add: guarded here (module docstring)
            guard = "SELECT 1 FROM memories WHERE user_id = ? AND memory_key = ? AND recorded_until IS NULL"
            select = _ROW[1:-1]
            added = changed_rows(
                conn,
                f"INSERT INTO memories ({columns}) SELECT {select} WHERE NOT EXISTS ({guard})",
                [*rows, self.origin.user_id, rows[6]],
            )
            return keys if added else set()
        values = ", ".join([_ROW] * len(versions))
        conn.execute(f"INSERT INTO memories ({columns}) VALUES {values}", rows)
        return keys

    def _version_rows(self, versions: list[Memory]) -> list[Any]:
        origin = self.origin
        rows: list[Any] = []
        for m in versions:
            rows += [
                m.memory_id,
                m.version,
                origin.user_id,
                m.agent_id,
                m.session_id,
                m.memory,
                memory_key(m.memory),
                m.topics,
                m.input,
                naive(m.created_at),
                naive(m.updated_at),
                naive(m.recorded_until) if m.recorded_until else None,
                m.subject,
                m.attribute,
                current_fact_key(m),
                clock.naive_or_none(m.held_from),
                clock.naive_or_none(m.held_until),
                clock.naive_or_none(m.learned_at),
            ]
        return rows

    def _skip_duplicates(self, stored: set[tuple[str, int]]) -> None:
        """Leave out the adds refused as held texts (Postgres's unique index, DuckDB's guard); refuse the whole
        set if an update was among them."""
        refused = [m for key, m in self._versions.items() if key not in stored]
        updates = sorted(m.memory_id for m in refused if m.version > 1)
        if updates:
            raise StorageError(
                f"the new text of memories {updates} is already another current memory of this user "
                "(stored by another writer meanwhile?); nothing was written"
            )
        ids = {m.memory_id for m in refused}
        self.skipped += refused
        self._versions = {key: m for key, m in self._versions.items() if m.memory_id not in ids}
        self._events = [e for e in self._events if e.memory_id not in ids]
        self.changes = [c for c in self.changes if c.memory_id not in ids]

    def _write_events(self, conn: Connection) -> None:
        for chunk in chunks(self._events, 17):
            self._insert_events(conn, chunk)

    def _insert_events(self, conn: Connection, events: list[_Event]) -> None:
        origin = self.origin
        rows: list[Any] = []
        for e in events:
            rows += [
                clock.new_id(),
                e.memory_id,
                origin.user_id,
                e.operation,
                e.old.memory if e.old else None,
                e.new.memory if e.new else None,
                e.old.topics if e.old else None,
                e.new.topics if e.new else None,
                e.reason,
                origin.source,
                origin.agent_id,
                origin.session_id,
                origin.call_id,
                origin.model,
                naive(origin.now),
                *_key_of(e.new or e.old),
            ]
        values = ", ".join(["(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"] * len(events))
        # One multi-row INSERT assigns the sequence in row order, so events keep their order.
        conn.execute(
            "INSERT INTO memory_events (event_id, memory_id, user_id, operation, old_memory, new_memory, old_topics,"
            f" new_topics, reason, source, agent_id, session_id, call_id, model, created_at, subject, attribute)"
            f" VALUES {values}",
            rows,
        )


def _key_of(memory: Memory | None) -> tuple[str | None, str | None]:
    return (None, None) if memory is None else (memory.subject, memory.attribute)


_T = TypeVar("_T")
# Postgres's wire protocol takes at most 65,535 parameters in one statement.
_MAX_PARAMS = 65_535


def chunks(items: list[_T], params_per_item: int) -> Iterator[list[_T]]:
    """``items`` in runs small enough for one statement: usually one run, so usually one statement."""
    size = (_MAX_PARAMS - 2) // params_per_item
    for start in range(0, len(items), size):
        yield items[start : start + size]
