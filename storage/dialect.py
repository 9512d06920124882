"""The few statements that differ between SQLite and PostgreSQL, in one place.

Everything else in `storage/` is portable SQL. What differs is locking and
upserts: PostgreSQL has many concurrent writers and needs row locks
(`FOR UPDATE`, with `SKIP LOCKED` for queues); SQLite has exactly one writer
at a time, so a single `UPDATE` is already atomic and there is nothing to lock.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeVarTuple, cast

from sqlalchemy import CTE, ColumnElement, Select, Table, any_, bindparam, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import DeclarativeBase

_Ts = TypeVarTuple("_Ts")


def dialect_name(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


def is_postgresql(session: AsyncSession) -> bool:
    return dialect_name(session) == "postgresql"


def claimable(session: AsyncSession, query: Select[*_Ts], *, of: Any, name: str) -> CTE:
    """`query` as a CTE that a claiming `UPDATE ... FROM` joins to, evaluated once.

    On PostgreSQL the rows are locked with `SKIP LOCKED`, so several workers
    share one queue without waiting on, or double-claiming, each other's rows;
    and the CTE is `MATERIALIZED`, because as an `IN (subquery)` the planner
    may re-run it per row and, skipping rows the statement itself just
    locked, return more than its `LIMIT`. SQLite needs no lock: its single
    writer makes the claiming `UPDATE` atomic on its own.
    """
    if is_postgresql(session):
        locked = query.with_for_update(skip_locked=True, of=of)
        return locked.cte(name).prefix_with("MATERIALIZED")
    return query.cte(name)


def lock_rows(session: AsyncSession, query: Select[*_Ts]) -> Select[*_Ts]:
    """`FOR UPDATE` on PostgreSQL, so read-modify-write of a row is serialised."""
    if is_postgresql(session):
        return query.with_for_update()
    return query


def among(session: AsyncSession, column: Any, values: Sequence[Any]) -> ColumnElement[bool]:
    """`column IN (values)`. On PostgreSQL, `column = ANY(:array)`: one parameter,
    where an `IN` list is rendered anew, a parameter per value, at every execution
    (a tenth of a backfill's CPU for its few lookups by id a page)."""
    if is_postgresql(session):
        return cast(
            ColumnElement[bool],
            column == any_(bindparam(None, list(values), type_=postgresql.ARRAY(column.type))),
        )
    return cast(ColumnElement[bool], column.in_(values))


def _insert(session: AsyncSession, table: Table) -> postgresql.Insert | sqlite.Insert:
    name = dialect_name(session)
    if name == "postgresql":
        return postgresql.insert(table)
    if name == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"no upsert for database dialect {name!r}")


async def insert_ignoring_conflicts(
    session: AsyncSession,
    model: type[DeclarativeBase],
    rows: Sequence[Mapping[str, Any]],
    *,
    conflict_columns: Sequence[str],
) -> int:
    """Insert `rows`, silently skipping any that violate the unique `conflict_columns`.

    Returns how many rows were inserted. Unlike check-then-insert this is safe
    when two transactions insert the same key at once. Rows with the same keys
    go as one executemany, which SQLAlchemy sends as multi-row INSERTs from a
    cached statement: for 200 deliveries 6-45 ms, where one `.values(rows)`
    statement, compiled afresh for each number of rows, took 150-300 ms.
    """
    if not rows:
        return 0
    table = model.__table__
    assert isinstance(table, Table)
    stmt = (
        _insert(session, table)
        .on_conflict_do_nothing(index_elements=list(conflict_columns))
        .returning(*table.primary_key)
    )
    keys = rows[0].keys()
    if all(row.keys() == keys for row in rows):
        result = await session.execute(stmt, [dict(row) for row in rows])
    else:
        result = await session.execute(stmt.values(list(rows)))
    return len(result.all())


def conflict_insert(session: AsyncSession, table: Table) -> postgresql.Insert | sqlite.Insert:
    """A bare INSERT that takes `on_conflict_do_nothing`/`on_conflict_do_update`.

    For what `insert_ignoring_conflicts` does not cover: RETURNING chosen
    columns (the inbox log's "which ids were new"), executemany, upserts.
    """
    return _insert(session, table)


STALE_STATISTICS = 0.2
"""Re-analyse a table when its row count moved this much since the planner last looked."""


async def refresh_statistics(session: AsyncSession, table: str) -> bool:
    """`ANALYZE table` when its planner statistics are missing or off by a fifth.

    The browse queries lean on the planner choosing an index walk in time
    order; after a large backfill or purge, stale statistics can make it
    sort the whole mirror instead. PostgreSQL's autovacuum analyses too, on
    its own schedule; SQLite never does. Returns whether it analysed.
    """
    count = int((await session.execute(text(f"SELECT count(*) FROM {table}"))).scalar_one())
    if is_postgresql(session):
        known = (
            await session.execute(
                text("SELECT reltuples FROM pg_class WHERE relname = :t"), {"t": table}
            )
        ).scalar()
    else:
        has_stats = (
            await session.execute(
                text("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_stat1'")
            )
        ).scalar()
        stat = (
            (
                await session.execute(
                    text("SELECT stat FROM sqlite_stat1 WHERE tbl = :t LIMIT 1"), {"t": table}
                )
            ).scalar()
            if has_stats
            else None
        )
        known = int(str(stat).split()[0]) if stat else None
    if (
        known is not None
        and float(known) >= 0
        and abs(count - float(known)) <= STALE_STATISTICS * max(count, 1000)
    ):
        return False
    await session.execute(text(f"ANALYZE {table}"))
    return True
