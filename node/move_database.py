"""Moving a node from its SQLite file to PostgreSQL, with every row, checked.

The node must be stopped. The target is brought to the current schema by
the same migrations as any database, so it is exactly what `init` would
have made; then every table is copied in an order where a row's foreign
keys already exist, in batches, inside one transaction, so that a failure
leaves the target as empty as it was. The row counts of every table are
compared on both sides before `config.toml` is pointed at the new
database. The SQLite file is not touched: it is the way back.
"""

from __future__ import annotations

import asyncio
import os
import tomllib
from pathlib import Path

import tomli_w
from sqlalchemy import Integer, Table, func, insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from node.config import CONFIG_FILE, DATABASE_ENV, NodeConfig
from node.datalock import stopped
from storage.engine import create_engine, normalize_url
from storage.migrate import current_revision, head_revision, upgrade_to_head
from storage.models import Base

BATCH_ROWS = 1000


class MoveError(Exception):
    """The move cannot be made; nothing was changed."""


def _tables() -> list[Table]:
    """Every table of the schema, parents before the children that refer to them."""
    return list(Base.metadata.sorted_tables)


async def _counts(connection: AsyncConnection) -> dict[str, int]:
    counts = {}
    for table in _tables():
        counts[table.name] = int(
            (await connection.execute(select(func.count()).select_from(table))).scalar_one()
        )
    return counts


async def _check_target_empty(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        existing = await connection.run_sync(lambda sync: set(sync.dialect.get_table_names(sync)))
        for table in _tables():
            if table.name not in existing:
                continue
            rows = await connection.execute(select(func.count()).select_from(table))
            if rows.scalar_one():
                raise MoveError(
                    f"the target database already holds data (table {table.name}); "
                    "a move needs an empty database"
                )


async def _copy_table(source: AsyncConnection, target: AsyncConnection, table: Table) -> None:
    order = list(table.primary_key.columns) or list(table.columns)
    result = await source.stream(select(table).order_by(*order))
    async for batch in result.mappings().partitions(BATCH_ROWS):
        await target.execute(insert(table), [dict(row) for row in batch])


async def _reset_sequences(target: AsyncConnection) -> None:
    """Explicit ids leave PostgreSQL's sequences at 1: move each past the largest id."""
    for table in _tables():
        columns = [c for c in table.primary_key.columns if isinstance(c.type, Integer)]
        if len(columns) != 1 or not columns[0].autoincrement:
            continue
        column = columns[0].name
        await target.execute(
            text(
                f"SELECT setval(pg_get_serial_sequence('{table.name}', '{column}'), "
                f'COALESCE(MAX("{column}"), 1), MAX("{column}") IS NOT NULL) '
                f'FROM "{table.name}"'
            )
        )


def _point_config_at(config: NodeConfig, url: str) -> None:
    path = config.data_dir / CONFIG_FILE
    values = tomllib.loads(path.read_text(encoding="utf-8"))
    values["database_url"] = url
    partial = path.with_suffix(".toml.moving")
    header = (
        "# Commons Node configuration; moved to PostgreSQL by `commons-node move-to-postgres`.\n"
    )
    partial.write_text(header + tomli_w.dumps(values), encoding="utf-8")
    partial.chmod(0o600)
    os.replace(partial, path)


async def _copy_all(source_url: str, target_url: str) -> dict[str, int]:
    source = create_engine(source_url)
    target = create_engine(target_url)
    try:
        await _check_target_empty(target)
        await asyncio.to_thread(upgrade_to_head, target_url)
        await _check_target_empty(target)
        async with source.connect() as src, target.begin() as dst:
            for table in _tables():
                await _copy_table(src, dst, table)
            await _reset_sequences(dst)
        async with source.connect() as src, target.connect() as dst:
            before, after = await _counts(src), await _counts(dst)
        if before != after:
            wrong = [name for name in before if before[name] != after.get(name)]
            raise MoveError(
                f"row counts differ after the copy in {', '.join(wrong)}; config.toml "
                "was not changed, and the target should be dropped and the move repeated"
            )
        return before
    finally:
        await source.dispose()
        await target.dispose()


async def move_to_database(config: NodeConfig, target_url: str) -> dict[str, int]:
    """Copy the stopped node's SQLite database to `target_url`; returns rows per table."""
    if make_url(config.database_url).get_backend_name() != "sqlite":
        raise MoveError("this node is not on SQLite; nothing to move")
    try:
        target_url = normalize_url(target_url)
        backend = make_url(target_url).get_backend_name()
    except Exception as exc:  # noqa: BLE001 - sqlalchemy raises several kinds for a bad URL
        raise MoveError(f"--database-url is not a database URL: {exc}") from None
    if backend != "postgresql":
        raise MoveError("--database-url must name a PostgreSQL database (postgresql://...)")
    if os.environ.get(DATABASE_ENV):
        raise MoveError(
            f"{DATABASE_ENV} is set and would override config.toml; unset it for the move"
        )
    if await current_revision(config.database_url) != head_revision():
        raise MoveError("the SQLite database is not at the current schema: run migrate first")
    with stopped(Path(config.data_dir)):
        counts = await _copy_all(config.database_url, target_url)
        _point_config_at(config, target_url)
    return counts
