"""Session storage: each agent run and its messages, per session, per user.

Every query takes the ``user_id``: a session id is a name the caller chose, and knowing it must not
be enough to read someone else's conversation.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .. import clock
from ..errors import ConfigError
from ..records import ChatMessage, LLMUsage
from .changes import naive
from .store import Connection

__all__ = [
    "RunRecord",
    "claim_session",
    "list_messages",
    "list_sessions",
    "recent_history",
    "session_owner",
    "write_run",
]


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    session_id: str
    user_id: str
    agent_id: str | None
    model: str
    error: str | None
    calls: list[LLMUsage]
    tool_calls: int
    created_at: datetime


def session_owner(conn: Connection, session_id: str) -> str | None:
    row = conn.execute("SELECT user_id FROM sessions WHERE session_id = ?", [session_id]).fetchone()
    return None if row is None else str(row[0])


def claim_session(conn: Connection, session_id: str, user_id: str, agent_id: str | None, now: datetime) -> bool:
    """Create the session for ``user_id`` unless it exists; True when it is (now) theirs.

    A run claims its session when it starts, not when it ends: a second run with the same id for
    another user, started while the first one waits on its model, is then refused.
    """
    ts = naive(now)
    conn.execute(
        "INSERT INTO sessions VALUES (?, ?, ?, ?, ?) ON CONFLICT (session_id) DO NOTHING",
        [session_id, user_id, agent_id, ts, ts],
    )
    return session_owner(conn, session_id) == user_id


def write_run(conn: Connection, run: RunRecord, messages: list[ChatMessage]) -> None:
    """The session (created or touched), the run's row and its messages; inside the caller's transaction."""
    now = naive(run.created_at)
    if not claim_session(conn, run.session_id, run.user_id, run.agent_id, run.created_at):
        # Raised inside the transaction, so nothing of this run is written into another user's session.
        raise ConfigError(f"session {run.session_id!r} belongs to another user; use a new session_id")
    conn.execute("UPDATE sessions SET updated_at = greatest(updated_at, ?) WHERE session_id = ?", [now, run.session_id])
    conn.execute(
        "INSERT INTO runs (run_id, session_id, user_id, agent_id, model, status, error, input_tokens, output_tokens,"
        " cost_usd, latency_ms, llm_calls, tool_calls, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            run.run_id,
            run.session_id,
            run.user_id,
            run.agent_id,
            run.model,
            "error" if run.error else "ok",
            run.error,
            sum(c.input_tokens for c in run.calls),
            sum(c.output_tokens for c in run.calls),
            _cost(run.calls),
            sum(c.latency_ms for c in run.calls),
            len(run.calls),
            run.tool_calls,
            now,
        ],
    )
    if messages:
        # One statement for all messages: each statement from Python costs about a millisecond.
        rows = [
            [
                clock.new_id(),
                run.run_id,
                run.session_id,
                run.user_id,
                run.agent_id,
                m.role,
                m.content,
                json.dumps(m.tool_calls) if m.tool_calls else None,
                m.tool_call_id,
                m.tool_name,
                naive(m.created_at or run.created_at),
            ]
            for m in messages
        ]
        conn.executemany(
            "INSERT INTO messages (message_id, run_id, session_id, user_id, agent_id, role, content, tool_calls,"
            " tool_call_id, tool_name, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows,
        )


def recent_history(conn: Connection, user_id: str, session_id: str, num_runs: int) -> list[ChatMessage]:
    """The user and assistant messages of the session's last ``num_runs`` successful runs, oldest first.

    Tool calls and results stay out: they belong to the run that made them, and a provider rejects a
    tool result whose call it was not shown.
    """
    rows = conn.execute(
        """
        WITH last_runs AS (
            SELECT run_id FROM runs
            WHERE user_id = ? AND session_id = ? AND status = 'ok'
            ORDER BY seq DESC LIMIT ?
        )
        SELECT role, content, run_id, session_id, created_at FROM messages
        WHERE user_id = ? AND session_id = ? AND run_id IN (SELECT run_id FROM last_runs)
          AND role IN ('user', 'assistant') AND content IS NOT NULL AND content <> ''
          AND tool_calls IS NULL
        ORDER BY seq
        """,
        [user_id, session_id, num_runs, user_id, session_id],
    ).fetchall()
    return [ChatMessage(role=r[0], content=r[1], run_id=r[2], session_id=r[3], created_at=r[4]) for r in rows]


def list_messages(conn: Connection, user_id: str, session_id: str | None = None) -> list[ChatMessage]:
    sql = (
        "SELECT role, content, tool_calls, tool_call_id, tool_name, run_id, session_id, created_at"
        " FROM messages WHERE user_id = ?"
    )
    params: list[Any] = [user_id]
    if session_id is not None:
        sql += " AND session_id = ?"
        params.append(session_id)
    rows = conn.execute(sql + " ORDER BY seq", params).fetchall()
    return [
        ChatMessage(
            role=r[0],
            content=r[1],
            tool_calls=json.loads(r[2]) if r[2] else None,
            tool_call_id=r[3],
            tool_name=r[4],
            run_id=r[5],
            session_id=r[6],
            created_at=r[7],
        )
        for r in rows
    ]


def list_sessions(conn: Connection, user_id: str) -> list[dict[str, Any]]:
    rows = conn.execute(
        """
        SELECT s.session_id, s.agent_id, s.created_at, s.updated_at, count(r.run_id) AS runs
        FROM sessions s LEFT JOIN runs r ON r.session_id = s.session_id AND r.user_id = s.user_id
        WHERE s.user_id = ?
        GROUP BY s.session_id, s.agent_id, s.created_at, s.updated_at ORDER BY s.updated_at DESC
        """,
        [user_id],
    ).fetchall()
    names = ("session_id", "agent_id", "created_at", "updated_at", "runs")
    return [dict(zip(names, row, strict=True)) for row in rows]


def _cost(calls: list[LLMUsage]) -> float | None:
    costs = [c.cost_usd for c in calls if c.cost_usd is not None]
    return sum(costs) if costs else None
