"""The documented analytics views (README: "Analytics and the command line"), as each store writes them.

Each names its columns (no SELECT *), so a later column added to a table does not change what a view
returns. The two lists give the same names and columns: Postgres divides integers as integers and
rounds only numerics, hence its casts; DuckDB's list functions become array operators and a lateral
unnest there. ``topic_events`` has one row per event and topic it touched: the topics before and after
(an update that moves a memory from "home" to "travel" changed both).
"""

from __future__ import annotations

__all__ = ["DUCKDB_VIEWS", "KEYED_VIEWS", "POSTGRES_VIEWS", "RECORD_TIME_VIEWS", "TIMELINE_VIEWS"]

DUCKDB_VIEWS = [
    """
    CREATE VIEW memory_history AS
    SELECT memory_id, version, user_id, agent_id, session_id, memory, topics, input,
           created_at, valid_from, valid_to, valid_to IS NULL AS is_current,
           coalesce(valid_to, timezone('UTC', now())) - valid_from AS valid_for
    FROM memories
    """,
    """
    CREATE VIEW events_by_day AS
    SELECT created_at::DATE AS day, operation, count(*) AS events,
           count(DISTINCT user_id) AS users, count(DISTINCT memory_id) AS memories
    FROM memory_events GROUP BY ALL
    """,
    """
    CREATE VIEW topic_counts AS
    SELECT topic, count(*) AS memories, count(DISTINCT user_id) AS users
    FROM (SELECT unnest(topics) AS topic, user_id FROM memories WHERE valid_to IS NULL)
    GROUP BY topic
    """,
    """
    CREATE VIEW topic_events AS
    SELECT event_id, seq,
           unnest(list_distinct(list_concat(coalesce(old_topics, []), coalesce(new_topics, [])))) AS topic,
           operation,
           memory_id, user_id, agent_id, session_id, source, call_id, model, created_at
    FROM memory_events
    """,
    """
    CREATE VIEW memory_churn AS
    SELECT user_id,
           count(*) FILTER (WHERE operation = 'add') AS adds,
           count(*) FILTER (WHERE operation = 'update') AS updates,
           count(*) FILTER (WHERE operation = 'delete') AS deletes,
           count(DISTINCT memory_id) AS memories_ever,
           (SELECT count(*) FROM memories m WHERE m.user_id = e.user_id AND m.valid_to IS NULL)
               AS memories_now,
           round(count(*) FILTER (WHERE operation <> 'add') / count(DISTINCT memory_id), 3)
               AS changes_per_memory,
           min(created_at) AS first_event, max(created_at) AS last_event
    FROM memory_events e GROUP BY user_id
    """,
    """
    CREATE VIEW llm_usage AS
    SELECT created_at::DATE AS day, user_id, agent_id, model, purpose,
           count(*) AS calls,
           count(*) FILTER (WHERE status = 'error') AS failed_calls,
           sum(attempts) AS attempts,
           sum(input_tokens) AS input_tokens,
           sum(output_tokens) AS output_tokens,
           sum(input_tokens + output_tokens) AS total_tokens,
           sum(cost_usd) AS cost_usd,
           count(*) FILTER (WHERE cost_usd IS NULL) AS unpriced_calls,
           round(avg(latency_ms), 1) AS avg_latency_ms
    FROM llm_calls GROUP BY ALL
    """,
    """
    CREATE VIEW session_summary AS
    SELECT s.session_id, s.user_id, s.agent_id, s.created_at, s.updated_at,
           (SELECT count(*) FROM runs r WHERE r.session_id = s.session_id) AS runs,
           (SELECT count(*) FROM messages m WHERE m.session_id = s.session_id) AS messages,
           (SELECT count(*) FROM messages m WHERE m.session_id = s.session_id AND m.role = 'user')
               AS user_messages,
           (SELECT coalesce(sum(r.input_tokens + r.output_tokens), 0) FROM runs r
             WHERE r.session_id = s.session_id) AS total_tokens,
           (SELECT sum(r.cost_usd) FROM runs r WHERE r.session_id = s.session_id) AS cost_usd
    FROM sessions s
    """,
    """
    CREATE VIEW session_messages AS
    SELECT m.session_id, m.run_id, m.seq, m.message_id, m.user_id, m.agent_id, m.role, m.content,
           m.tool_name, m.tool_call_id, m.tool_calls, m.created_at, r.model, r.status AS run_status
    FROM messages m LEFT JOIN runs r ON r.run_id = m.run_id
    """,
]

POSTGRES_VIEWS = [
    """
    CREATE VIEW memory_history AS
    SELECT memory_id, version, user_id, agent_id, session_id, memory, topics, input,
           created_at, valid_from, valid_to, valid_to IS NULL AS is_current,
           coalesce(valid_to, timezone('UTC', now())) - valid_from AS valid_for
    FROM memories
    """,
    """
    CREATE VIEW events_by_day AS
    SELECT created_at::DATE AS day, operation, count(*) AS events,
           count(DISTINCT user_id) AS users, count(DISTINCT memory_id) AS memories
    FROM memory_events GROUP BY created_at::DATE, operation
    """,
    """
    CREATE VIEW topic_counts AS
    SELECT topic, count(*) AS memories, count(DISTINCT user_id) AS users
    FROM (SELECT unnest(topics) AS topic, user_id FROM memories WHERE valid_to IS NULL) AS current_topics
    GROUP BY topic
    """,
    """
    CREATE VIEW topic_events AS
    SELECT e.event_id, e.seq, t.topic, e.operation,
           e.memory_id, e.user_id, e.agent_id, e.session_id, e.source, e.call_id, e.model, e.created_at
    FROM memory_events e
    CROSS JOIN LATERAL (
        SELECT DISTINCT topic
        FROM unnest(coalesce(e.old_topics, '{}'::VARCHAR[]) || coalesce(e.new_topics, '{}'::VARCHAR[])) AS topic
    ) t
    """,
    """
    CREATE VIEW memory_churn AS
    SELECT user_id,
           count(*) FILTER (WHERE operation = 'add') AS adds,
           count(*) FILTER (WHERE operation = 'update') AS updates,
           count(*) FILTER (WHERE operation = 'delete') AS deletes,
           count(DISTINCT memory_id) AS memories_ever,
           (SELECT count(*) FROM memories m WHERE m.user_id = e.user_id AND m.valid_to IS NULL)
               AS memories_now,
           round((count(*) FILTER (WHERE operation <> 'add'))::NUMERIC / count(DISTINCT memory_id), 3)::DOUBLE PRECISION
               AS changes_per_memory,
           min(created_at) AS first_event, max(created_at) AS last_event
    FROM memory_events e GROUP BY user_id
    """,
    """
    CREATE VIEW llm_usage AS
    SELECT created_at::DATE AS day, user_id, agent_id, model, purpose,
           count(*) AS calls,
           count(*) FILTER (WHERE status = 'error') AS failed_calls,
           sum(attempts) AS attempts,
           sum(input_tokens) AS input_tokens,
           sum(output_tokens) AS output_tokens,
           sum(input_tokens + output_tokens) AS total_tokens,
           sum(cost_usd) AS cost_usd,
           count(*) FILTER (WHERE cost_usd IS NULL) AS unpriced_calls,
           round(avg(latency_ms)::NUMERIC, 1)::DOUBLE PRECISION AS avg_latency_ms
    FROM llm_calls GROUP BY created_at::DATE, user_id, agent_id, model, purpose
    """,
    """
    CREATE VIEW session_summary AS
    SELECT s.session_id, s.user_id, s.agent_id, s.created_at, s.updated_at,
           (SELECT count(*) FROM runs r WHERE r.session_id = s.session_id) AS runs,
           (SELECT count(*) FROM messages m WHERE m.session_id = s.session_id) AS messages,
           (SELECT count(*) FROM messages m WHERE m.session_id = s.session_id AND m.role = 'user')
               AS user_messages,
           (SELECT coalesce(sum(r.input_tokens + r.output_tokens), 0) FROM runs r
             WHERE r.session_id = s.session_id) AS total_tokens,
           (SELECT sum(r.cost_usd) FROM runs r WHERE r.session_id = s.session_id) AS cost_usd
    FROM sessions s
    """,
    """
    CREATE VIEW session_messages AS
    SELECT m.session_id, m.run_id, m.seq, m.message_id, m.user_id, m.agent_id, m.role, m.content,
           m.tool_name, m.tool_call_id, m.tool_calls, m.created_at, r.model, r.status AS run_status
    FROM messages m LEFT JOIN runs r ON r.run_id = m.run_id
    """,
]


# m008 (`memlayer._internal.db.migrations.fact_keys_and_times`) gives the memory views each memory's key and its two
# times, in SQL both stores accept: ``held_from`` / ``held_until`` (when the fact held in the user's
# life), ``learned_at`` (the conversation's time) beside ``valid_from`` / ``valid_to`` (record time).
KEYED_VIEWS = [
    "DROP VIEW current_memories",
    """
    CREATE VIEW current_memories AS
    SELECT memory_id, user_id, agent_id, session_id, memory, topics, input, version,
           created_at, valid_from AS updated_at, subject, attribute, held_from, held_until, learned_at
    FROM memories WHERE valid_to IS NULL
    """,
    "DROP VIEW memory_history",
    """
    CREATE VIEW memory_history AS
    SELECT memory_id, version, user_id, agent_id, session_id, memory, topics, input,
           created_at, valid_from, valid_to, valid_to IS NULL AS is_current,
           coalesce(valid_to, timezone('UTC', now())) - valid_from AS valid_for,
           subject, attribute, held_from, held_until, learned_at
    FROM memories
    """,
]


# m009 (`memlayer._internal.db.migrations.m009_record_time_names`) renames record time: ``valid_from`` / ``valid_to``
# become ``recorded_from`` / ``recorded_until``, so that nobody reads them as the time a fact held in the
# user's life (``held_from`` / ``held_until``). These views are dropped before the rename and made again
# after it, per store: DuckDB keeps a view as SQL text (bound at each query), so every view naming a
# renamed column must be rewritten there; Postgres follows a rename in its views by itself, but
# ``memory_history`` shows the columns under their names, so it is made again on both.
_HISTORY = """
    CREATE VIEW memory_history AS
    SELECT memory_id, version, user_id, agent_id, session_id, memory, topics, input,
           created_at, recorded_from, recorded_until, recorded_until IS NULL AS is_current,
           coalesce(recorded_until, timezone('UTC', now())) - recorded_from AS recorded_for,
           subject, attribute, held_from, held_until, learned_at
    FROM memories
    """
_CURRENT = """
    CREATE VIEW current_memories AS
    SELECT memory_id, user_id, agent_id, session_id, memory, topics, input, version,
           created_at, recorded_from AS updated_at, subject, attribute, held_from, held_until, learned_at
    FROM memories WHERE recorded_until IS NULL
    """
RECORD_TIME_VIEWS: dict[str, list[str]] = {
    "duckdb": [
        _CURRENT,
        _HISTORY,
        DUCKDB_VIEWS[2].replace("valid_to", "recorded_until"),  # topic_counts
        DUCKDB_VIEWS[4].replace("valid_to", "recorded_until"),  # memory_churn
    ],
    "postgres": [_CURRENT, _HISTORY],
}
# The views each store drops before the rename (the others need no change).
RECORD_TIME_DROPPED: dict[str, list[str]] = {
    "duckdb": ["current_memories", "memory_history", "topic_counts", "memory_churn"],
    "postgres": ["current_memories", "memory_history"],
}

# A user's facts along event time (m009): every value memlayer knows of, now, as it held in the user's
# life. That is each current version, and each version closed because its fact ended (it has a
# ``held_until``: the old home after a move); not a version corrected or deleted, which never held.
# ``starts_at`` is when it held from, or, when the user never said, the conversation that stated it.
TIMELINE_VIEWS = [
    """
    CREATE VIEW memory_timeline AS
    SELECT user_id, subject, attribute, memory, memory_id, version,
           coalesce(held_from, learned_at) AS starts_at, held_from, held_until, learned_at,
           recorded_until IS NULL AS is_current,
           held_until IS NULL OR held_until > timezone('UTC', now()) AS holds_now
    FROM memories
    WHERE recorded_until IS NULL OR held_until IS NOT NULL
    """
]
