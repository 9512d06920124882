"""The operator's commands of `commons-node`: backup, restore, move-to-postgres, rotate-key.

Kept apart from `node.cli` (which creates and runs a node) because each is
a maintenance task with its own failure modes; `node.cli` adds their parsers
and dispatches to them.
"""

from __future__ import annotations

import argparse
import asyncio
from collections.abc import Callable
from pathlib import Path

from sqlalchemy.exc import SQLAlchemyError

from node.backup import BackupError, backup, restore
from node.config import load_config
from node.datalock import LockError
from node.key_rotation import RotationError, rotate_keys
from node.move_database import MoveError, move_to_database

OperatorCommand = Callable[[argparse.Namespace], None]


class OperatorError(Exception):
    """Printed as `error: ...`; the command exits with status 1."""


def _data(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data", required=True, type=Path, metavar="DIR", help="the node's data folder"
    )


def add_operator_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    take = sub.add_parser(
        "backup",
        help="back up a node on SQLite into one file, while it runs",
        description="Write the node's database (a consistent copy, taken while the node "
        "serves) and its config.toml into one archive. The archive holds the community's "
        "private key: keep it as safe as the node. For a node on PostgreSQL this prints "
        "how to use pg_dump instead and exits with status 1.",
    )
    _data(take)
    take.add_argument("--out", required=True, type=Path, metavar="FILE", help="archive to write")
    take.add_argument("--force", action="store_true", help="replace FILE if it exists")

    give = sub.add_parser(
        "restore",
        help="restore a node from a backup (the node must be stopped)",
        description="Make DIR the node saved in a `commons-node backup` archive. Refuses "
        "while a serve or worker runs on DIR, and refuses to replace an existing node "
        "without --force. Run `commons-node migrate` afterwards if the backup came from "
        "an older version.",
    )
    _data(give)
    give.add_argument(
        "--from", dest="source", required=True, type=Path, metavar="FILE", help="the archive"
    )
    give.add_argument(
        "--force", action="store_true", help="replace the node DIR holds with the backup"
    )

    move = sub.add_parser(
        "move-to-postgres",
        help="copy a node's SQLite database into PostgreSQL and switch to it",
        description="With the node stopped: bring the (empty) PostgreSQL database to the "
        "current schema, copy every table into it, check that every table has the same "
        "number of rows on both sides, then point config.toml at it. The SQLite file is "
        "left as it was, as a way back. Refuses a target that already holds data.",
    )
    _data(move)
    move.add_argument(
        "--database-url",
        required=True,
        metavar="URL",
        help="the PostgreSQL database, e.g. postgresql+asyncpg://commons:SECRET@127.0.0.1/commons",
    )

    rotate = sub.add_parser(
        "rotate-key",
        help="give a community a new key pair and tell its followers and partners",
        description="Generate a new key pair for a community, announce it with an Update "
        "of the community actor to its followers and partners, and keep the old public "
        "key published for key_grace_days (default 7) so that messages signed with it "
        "still verify. A running node picks the new key up at its next delivery.",
    )
    _data(rotate)
    rotate.add_argument(
        "--slug", metavar="SLUG", help="the community (default: the node's own); --all for every"
    )
    rotate.add_argument("--all", action="store_true", help="rotate every community this node hosts")


def cmd_backup(args: argparse.Namespace) -> None:
    config = load_config(args.data)
    try:
        backup(config, args.out, force=args.force)
    except (BackupError, OSError) as exc:
        raise OperatorError(str(exc)) from exc
    print(f"Backed up {config.base_url} to {args.out}")


def cmd_restore(args: argparse.Namespace) -> None:
    try:
        config = restore(args.data, args.source, force=args.force)
    except (BackupError, LockError, OSError) as exc:
        raise OperatorError(str(exc)) from exc
    print(f"Restored {config.base_url} into {args.data}")
    print(f"Next: commons-node migrate --data {args.data}, then start the node")


def cmd_move(args: argparse.Namespace) -> None:
    config = load_config(args.data)
    try:
        counts = asyncio.run(move_to_database(config, args.database_url))
    except (MoveError, LockError, SQLAlchemyError, OSError) as exc:
        raise OperatorError(str(exc)) from exc
    for table, count in counts.items():
        print(f"  {table}: {count} rows")
    print(f"Moved {config.base_url} to PostgreSQL; config.toml now points there.")


def cmd_rotate(args: argparse.Namespace) -> None:
    config = load_config(args.data)
    slugs = None if args.all else [args.slug or config.slug]
    try:
        rotated = asyncio.run(rotate_keys(config, slugs))
    except (RotationError, SQLAlchemyError, OSError) as exc:
        raise OperatorError(str(exc)) from exc
    for line in rotated:
        print(line)


OPERATOR_COMMANDS: dict[str, OperatorCommand] = {
    "backup": cmd_backup,
    "restore": cmd_restore,
    "move-to-postgres": cmd_move,
    "rotate-key": cmd_rotate,
}
