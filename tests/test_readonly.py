"""The read-only SQL check's reference walk (memlayer._internal.db.readonly) fails closed: a table it cannot place is
refused, never let through unread. Real DuckDB parses every statement; the altered trees stand for a
DuckDB whose serialized form has changed (the walk must refuse them, not find "no tables" in them).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest

from memlayer import ConfigError
from memlayer._internal.db.readonly import _references, check_references


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    with duckdb.connect(str(tmp_path / "store.duckdb")) as c:
        c.execute("CREATE TABLE memories (memory VARCHAR)")
        (tmp_path / "x.csv").write_text("a\n1\n")
        yield c


def tree(conn: duckdb.DuckDBPyConnection, sql: str) -> dict[str, Any]:
    return dict(json.loads(conn.execute("SELECT json_serialize_sql(?)", [sql]).fetchall()[0][0]))


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1",
        "SELECT * FROM memories",
        "FROM memories SELECT memory",
        "SELECT * FROM memories a JOIN memories b USING (memory)",
        "SELECT * FROM (SELECT memory FROM memories) s, LATERAL (SELECT 1)",
        "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 3) SELECT * FROM r",
        "SELECT * FROM memories WHERE memory IN (SELECT memory FROM memories)",
        "UNPIVOT memories ON memory INTO NAME k VALUE v",
        "VALUES (1), (2)",
        "DESCRIBE memories",
        "SHOW memories",
        "SUMMARIZE memories",
        "SHOW TABLES",
        "SELECT * FROM range(3)",
        "SELECT * FROM duckdb_tables()",
    ],
)
def test_the_stores_own_tables_pass(conn: duckdb.DuckDBPyConnection, sql: str) -> None:
    check_references(conn, sql)
    conn.execute(sql).fetchall()


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM 'x.csv'",
        "SELECT * FROM memories, 'x.csv'",
        "SHOW 'x.csv'",
        "DESCRIBE 'x.csv'",
        "SUMMARIZE 'x.csv'",
        "UNPIVOT 'x.csv' ON a INTO NAME k VALUE v",
        "SELECT (SELECT count(*) FROM read_csv('x.csv'))",
    ],
)
def test_a_file_is_refused_wherever_it_is_named(conn: duckdb.DuckDBPyConnection, sql: str) -> None:
    with pytest.raises(ConfigError, match=r"not a table or view of the store|calls read_csv"):
        check_references(conn, sql)


def test_a_tree_whose_from_clause_is_unreadable_is_refused(conn: duckdb.DuckDBPyConnection) -> None:
    parsed = tree(conn, "SELECT * FROM memories JOIN 'x.csv' ON true")
    node = parsed["statements"][0]["node"]

    renamed = json.loads(json.dumps(parsed).replace('"from_table"', '"from_clause"'))
    with pytest.raises(ConfigError, match="FROM clause cannot be checked"):
        _references(renamed)

    unknown = json.loads(json.dumps(parsed))
    unknown["statements"][0]["node"]["from_table"]["type"] = "LATERAL_JOIN"
    with pytest.raises(ConfigError, match="a LATERAL_JOIN clause, which cannot be checked"):
        _references(unknown)

    moved = json.loads(json.dumps(parsed))  # the file's reference under a key the walk does not know
    join = moved["statements"][0]["node"]["from_table"]
    join["extra"], join["right"] = join["right"], node["from_table"]["left"]
    with pytest.raises(ConfigError, match="names a table where it cannot be checked"):
        _references(moved)

    with pytest.raises(ConfigError, match="cannot be found in its parsed form"):
        _references({"error": False, "statements": [{"query": {"kind": "SELECT"}}]})


def test_a_show_of_something_else_is_checked_as_a_table(conn: duckdb.DuckDBPyConnection) -> None:
    parsed = tree(conn, "SHOW TABLES")
    parsed["statements"][0]["node"]["from_table"]["table_name"] = "secrets"
    assert [ref["table_name"] for ref in _references(parsed).refs] == ["secrets"]
    parsed["statements"][0]["node"]["from_table"]["table_name"] = ""
    with pytest.raises(ConfigError, match="shows something that cannot be checked"):
        _references(parsed)
