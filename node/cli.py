"""`commons-node`: init, serve, member add, migrate."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from aiohttp import web
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from node.app import init_app
from node.config import DATABASE_ENV, ConfigError, NodeConfig, load_config, write_config
from node.demo import run_demo
from node.services.accounts import AccountError, check_new_account, create_member
from node.services.communities import CommunityError, create_local_community, parse_location
from storage.engine import create_engine, create_session_factory
from storage.migrate import current_revision, head_revision, upgrade_to_head
from storage.repositories import CommunityRepository

log = logging.getLogger("commons_node")


class CliError(Exception):
    """Printed to stderr as `error: ...`; the command exits with status 1."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="commons-node", description=__doc__)
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING, ERROR")
    sub = parser.add_subparsers(dest="command", required=True)

    init = sub.add_parser("init", help="create a node's data folder, database and first steward")
    init.add_argument("--data", required=True, type=Path)
    init.add_argument("--name", required=True)
    init.add_argument("--slug", required=True)
    init.add_argument("--base-url", required=True)
    init.add_argument("--steward", required=True, metavar="USERNAME")
    init.add_argument("--password", required=True)
    init.add_argument("--description", default="")
    init.add_argument("--location", metavar="LAT,LON")
    init.add_argument("--allow-private-addresses", action="store_true")
    init.add_argument("--database-url")

    serve = sub.add_parser("serve", help="run the node")
    serve.add_argument("--data", required=True, type=Path)
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)

    member = sub.add_parser("member", help="manage members")
    member_sub = member.add_subparsers(dest="member_command", required=True)
    add = member_sub.add_parser("add", help="add a member to the node's community")
    add.add_argument("--data", required=True, type=Path)
    add.add_argument("--username", required=True)
    add.add_argument("--password", required=True)
    add.add_argument("--steward", action="store_true")
    add.add_argument(
        "--operator",
        action="store_true",
        help="a steward who may also change node-wide settings (domain blocks, retries)",
    )
    add.add_argument("--community", help="slug, when the node hosts several communities")

    demo = sub.add_parser("demo", help="several federated nodes on loopback with sample data")
    demo.add_argument("--nodes", type=int, default=3)
    demo.add_argument("--base-port", type=int, default=8701)
    demo.add_argument("--data", type=Path, default=Path("demo-data"))

    migrate = sub.add_parser("migrate", help="upgrade the database to the current schema")
    migrate.add_argument("--data", required=True, type=Path)
    return parser


async def _init_database(config: NodeConfig, args: argparse.Namespace) -> None:
    await asyncio.to_thread(upgrade_to_head, config.database_url)
    engine = create_engine(config.database_url)
    try:
        async with create_session_factory(engine)() as session:
            location = parse_location(args.location) if args.location else None
            community = await create_local_community(
                session,
                config,
                slug=args.slug,
                name=args.name,
                description=args.description,
                location=location,
            )
            await create_member(
                session, community, args.steward, args.password, "steward", is_operator=True
            )
            await session.commit()
    finally:
        await engine.dispose()


def cmd_init(args: argparse.Namespace) -> None:
    data: Path = args.data
    if (data / "config.toml").exists():
        raise CliError(f"{data} already holds a node; refusing to overwrite it")
    try:
        check_new_account(args.steward, args.password)
    except AccountError as exc:
        raise CliError(f"steward: {exc}") from exc
    created = not data.exists()
    data.mkdir(mode=0o700, parents=True, exist_ok=True)
    try:
        config = write_config(
            data,
            base_url=args.base_url,
            slug=args.slug,
            name=args.name,
            database_url=args.database_url or os.environ.get(DATABASE_ENV),
            allow_private_addresses=args.allow_private_addresses,
        )
        asyncio.run(_init_database(config, args))
        _restrict_database_file(config)
    except (ConfigError, CommunityError, AccountError, SQLAlchemyError, OSError) as exc:
        (data / "config.toml").unlink(missing_ok=True)
        if created:
            shutil.rmtree(data, ignore_errors=True)
        raise CliError(str(exc)) from exc
    print(f"Node ready in {data}: {config.base_url}/c/{config.slug}")
    print(f"Steward: {args.steward}. Start it with: commons-node serve --data {data}")


def _restrict_database_file(config: NodeConfig) -> None:
    """The database holds the community's private key: owner-only, like config.toml."""
    url = make_url(config.database_url)
    if url.get_backend_name() == "sqlite" and url.database:
        Path(url.database).chmod(0o600)


def _check_schema(config: NodeConfig) -> None:
    try:
        current = asyncio.run(current_revision(config.database_url))
    except (SQLAlchemyError, OSError) as exc:
        raise CliError(f"cannot reach the database: {exc}") from exc
    if current != head_revision():
        raise CliError(
            f"database schema is at {current or 'nothing'}, code expects {head_revision()}: "
            "run `commons-node migrate --data DIR` first"
        )


def cmd_serve(args: argparse.Namespace) -> None:
    config = load_config(args.data)
    _check_schema(config)
    host = args.host or config.listen_host
    port = args.port or config.listen_port
    log.info("serving %s on http://%s:%s", config.base_url, host, port)
    web.run_app(
        init_app(config),
        host=host,
        port=port,
        print=None,
        shutdown_timeout=10,
        access_log=logging.getLogger("commons_node.access"),
    )


async def _add_member(config: NodeConfig, args: argparse.Namespace) -> None:
    engine = create_engine(config.database_url)
    try:
        async with create_session_factory(engine)() as session:
            slug = args.community or config.slug
            community = await CommunityRepository(session).get_local_by_slug(slug)
            if community is None:
                raise CliError(f"no community {slug!r} on this node")
            role = "steward" if args.steward or args.operator else "member"
            await create_member(
                session, community, args.username, args.password, role, is_operator=args.operator
            )
            await session.commit()
    finally:
        await engine.dispose()


def cmd_member_add(args: argparse.Namespace) -> None:
    config = load_config(args.data)
    _check_schema(config)
    try:
        asyncio.run(_add_member(config, args))
    except AccountError as exc:
        raise CliError(str(exc)) from exc
    kind = "operator" if args.operator else "steward" if args.steward else "member"
    print(f"Added {kind} {args.username}")


def cmd_migrate(args: argparse.Namespace) -> None:
    config = load_config(args.data)
    try:
        upgrade_to_head(config.database_url)
    except (SQLAlchemyError, OSError) as exc:
        raise CliError(f"cannot migrate the database: {exc}") from exc
    print(f"Database at {head_revision()}")


def cmd_demo(args: argparse.Namespace) -> None:
    try:
        asyncio.run(run_demo(args.nodes, args.base_port, args.data))
    except (ValueError, OSError) as exc:
        raise CliError(str(exc)) from exc


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    commands = {"init": cmd_init, "serve": cmd_serve, "migrate": cmd_migrate, "demo": cmd_demo}
    handler = cmd_member_add if args.command == "member" else commands[args.command]
    try:
        handler(args)
    except (CliError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
