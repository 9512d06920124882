"""`commons-node`: create and run a Commons Node.

Commands: init (create a node), serve (run it), worker (its background work
in a process of its own), member add (add a member or steward), migrate
(upgrade the database after upgrading the code), demo (several federated
sample nodes on this machine), and the operator's commands in
`node.operator_cli`: backup, restore, move-to-postgres, rotate-key.
"""

from __future__ import annotations

import argparse
import asyncio
import errno
import getpass
import ipaddress
import logging
import os
import re
import shutil
import socket
import sys
from collections.abc import Sequence
from pathlib import Path

from aiohttp import web
from sqlalchemy.engine import make_url
from sqlalchemy.exc import SQLAlchemyError

from node.app import init_app
from node.config import DATABASE_ENV, ConfigError, NodeConfig, load_config, write_config
from node.datalock import LockError, running
from node.demo import run_demo
from node.domain import urls
from node.operator_cli import OPERATOR_COMMANDS, OperatorError, add_operator_parsers
from node.ops.logs import AccessLogger, configure_logging
from node.services.accounts import AccountError, check_new_account, create_member
from node.services.communities import CommunityError, parse_location
from node.services.provisioning import Person, provision_node
from node.worker import run_worker
from storage.engine import create_engine, create_session_factory
from storage.migrate import current_revision, head_revision, upgrade_to_head
from storage.repositories import CommunityRepository

log = logging.getLogger("commons_node")


class CliError(Exception):
    """Printed to stderr as `error: ...`; the command exits with status 1."""


EPILOG = """\
examples:
  commons-node init --data /var/lib/commons --name "Riverside Tool Library" \\
      --slug riverside --base-url https://riverside.example --steward alice
  commons-node serve --data /var/lib/commons --host 127.0.0.1 --port 8000
  commons-node backup --data /var/lib/commons --out commons-backup.tar
  commons-node member add --data /var/lib/commons --username bob
  commons-node demo

Run `commons-node COMMAND --help` for the options of each command.
"""

DESCRIPTION = "Create and run a Commons Node, the server a sharing community runs for itself."


def _port(text: str) -> int:
    """An argparse type: a TCP port, so that 70000 is a usage error, not a traceback."""
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not a port number (1-65535)")
    return port


def _add_password_options(parser: argparse.ArgumentParser, whose: str) -> None:
    """`--password` or `--password-file`; with neither, the command prompts (twice)."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "--password",
        help=f"{whose}'s password, given on the command line, where the process list "
        "and shell history show it; with neither this nor --password-file you are "
        "prompted for it",
    )
    group.add_argument(
        "--password-file",
        metavar="PATH",
        type=Path,
        help=f"read {whose}'s password from the first line of PATH (without its "
        "newline; '-' reads standard input), for scripts and mounted secrets",
    )


def _add_init_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    init = sub.add_parser(
        "init",
        help="create a node's data folder, database and first steward",
        description="Create a node: its data folder (config.toml, SQLite database unless "
        "told otherwise), the community with its key pair, and the first steward. "
        "Refuses a folder that already holds a node.",
    )
    init.add_argument(
        "--data", required=True, type=Path, metavar="DIR", help="the data folder to create"
    )
    init.add_argument("--name", required=True, help="the community's display name")
    init.add_argument(
        "--slug",
        required=True,
        help="the community's short name in URLs and handles (slug@host): lower-case "
        "letters, digits, '-' and '_', at most 63",
    )
    init.add_argument(
        "--base-url",
        required=True,
        metavar="URL",
        help="the public URL, http(s)://host[:port] without a path; part of every "
        "identifier the node gives out, so it cannot change later",
    )
    init.add_argument(
        "--steward", required=True, metavar="USERNAME", help="user name of the first steward"
    )
    _add_password_options(init, "the steward")
    init.add_argument(
        "--description", default="", help="a few words about the community (plain text)"
    )
    init.add_argument(
        "--location",
        metavar="LAT,LON",
        help="the community's rough location in degrees, e.g. 51.5,-0.12; only "
        "about 1 km precision ever leaves the node",
    )
    init.add_argument(
        "--allow-private-addresses",
        action="store_true",
        help="federate with nodes on loopback and private addresses (development, "
        "demos and tests only; never on a public node)",
    )
    init.add_argument(
        "--database-url",
        metavar="URL",
        help="store the node in this database instead of SQLite in DIR, e.g. "
        "postgresql+asyncpg://user:password@host/db (COMMONS_DATABASE_URL "
        "overrides it at any time)",
    )


def _add_serve_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = sub.add_parser(
        "serve",
        help="run the node",
        description="Serve the web pages, the API and federation until SIGINT or SIGTERM.",
    )
    serve.add_argument(
        "--data", required=True, type=Path, metavar="DIR", help="the node's data folder"
    )
    serve.add_argument(
        "--host",
        help="the address to listen on (default: the base URL's host), e.g. "
        "127.0.0.1 behind a reverse proxy or 0.0.0.0 in a container",
    )
    serve.add_argument(
        "--port", type=_port, help="the port to listen on (default: the base URL's port)"
    )
    serve.add_argument(
        "--no-workers",
        action="store_true",
        help="only answer requests; deliveries, jobs and received activities are left "
        "to `commons-node worker` processes sharing the database (run_workers = false "
        "in config.toml does the same)",
    )


def _add_worker_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    worker = sub.add_parser(
        "worker",
        help="run the node's background work without serving pages",
        description="Deliver activities, handle received ones and run background jobs until "
        "SIGINT or SIGTERM, without the web server: for a node that runs `serve --no-workers` "
        "processes and separate workers on one PostgreSQL database.",
    )
    worker.add_argument(
        "--data", required=True, type=Path, metavar="DIR", help="the node's data folder"
    )
    worker.add_argument(
        "--metrics-host",
        default="127.0.0.1",
        metavar="HOST",
        help="address for --metrics-port (default: 127.0.0.1)",
    )
    worker.add_argument(
        "--metrics-port",
        type=_port,
        metavar="PORT",
        help="also answer /healthz, /readyz and /metrics on this port (the worker's "
        "delivery counters are its own)",
    )


def _add_member_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    member = sub.add_parser("member", help="manage members", description="Manage members.")
    member_sub = member.add_subparsers(dest="member_command", required=True, metavar="COMMAND")
    add = member_sub.add_parser(
        "add",
        help="add a member to the node's community",
        description="Add a member (or, with --steward, a steward) to a community of the node.",
    )
    add.add_argument(
        "--data", required=True, type=Path, metavar="DIR", help="the node's data folder"
    )
    add.add_argument("--username", required=True, help="the new member's user name")
    _add_password_options(add, "the member")
    add.add_argument(
        "--steward", action="store_true", help="make the member a steward of the community"
    )
    add.add_argument(
        "--operator",
        action="store_true",
        help="a steward who may also change node-wide settings (domain blocks, retries)",
    )
    add.add_argument(
        "--community",
        metavar="SLUG",
        help="the community's slug, when the node hosts several (default: the node's own)",
    )


def _add_demo_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    demo = sub.add_parser(
        "demo",
        help="several federated nodes on loopback with sample data",
        description="Start sample communities on 127.0.0.1, each a full node with its own "
        "database: three neighbours and one far away, with members, listings and months of "
        "exchanges, following each other (the first two are partners, the third has a "
        "proposal waiting). Prints the logins and writes them to DIR/demo.json; the access "
        "log and errors go to DIR/demo.log; Ctrl+C stops them all.",
    )
    demo.add_argument(
        "--nodes",
        type=int,
        default=3,
        help="how many neighbouring communities to start, 1 to 3 (default: 3); the far "
        "one always starts too, on the port after them",
    )
    demo.add_argument(
        "--base-port",
        type=_port,
        default=8701,
        metavar="PORT",
        help="port of the first node; the others follow it (default: 8701)",
    )
    demo.add_argument(
        "--data",
        type=Path,
        default=Path("demo-data"),
        metavar="DIR",
        help="where the nodes keep their data; re-running reuses them (default: demo-data)",
    )
    demo.add_argument(
        "--fresh", action="store_true", help="delete the demo's earlier nodes and start over"
    )
    demo.add_argument(
        "--scale",
        type=float,
        default=1.0,
        help="a fraction of the sample data, for quick tests (default: 1, all of it)",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="commons-node",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--log-level",
        default="INFO",
        type=str.upper,
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="how much the node logs to stderr (default: INFO); goes before the command",
    )
    sub = parser.add_subparsers(dest="command", required=True, title="commands", metavar="COMMAND")
    _add_init_parser(sub)
    _add_serve_parser(sub)
    _add_worker_parser(sub)
    _add_member_parser(sub)
    _add_demo_parser(sub)
    migrate = sub.add_parser(
        "migrate",
        help="upgrade the database to the current schema",
        description="Upgrade the database to the schema this version expects; run it after "
        "upgrading the code, once, before starting the node.",
    )
    migrate.add_argument(
        "--data", required=True, type=Path, metavar="DIR", help="the node's data folder"
    )
    add_operator_parsers(sub)
    return parser


# --- passwords: never required on the command line ---------------------------------


def password_from(args: argparse.Namespace, whose: str) -> str:
    """`--password`, else the first line of `--password-file`, else a prompt.

    A password on the command line shows in the process list and in shell
    history; the file is for scripts and secrets mounted as files, the
    prompt for people.
    """
    if args.password is not None:
        return str(args.password)
    if args.password_file is not None:
        return _read_password_file(args.password_file)
    return _prompt_password(whose)


def _read_password_file(path: Path) -> str:
    try:
        text = sys.stdin.readline() if str(path) == "-" else path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise CliError(f"cannot read the password file {path}: {reason}") from exc
    lines = text.splitlines()
    if not lines or not lines[0]:
        raise CliError(f"the password file {path} is empty: the password is its first line")
    return lines[0]


def _prompt_password(whose: str) -> str:
    try:
        first = getpass.getpass(f"Password for {whose}: ")
        second = getpass.getpass("The same password again: ")
    except EOFError:
        raise CliError(
            "no password given: type it at the prompt, or pass --password-file PATH"
        ) from None
    if first != second:
        raise CliError("the two passwords do not match; nothing was changed")
    if not first:
        raise CliError("the password cannot be empty")
    return first


async def _init_database(config: NodeConfig, args: argparse.Namespace) -> None:
    """The database at head, the community, and its first steward, who operates the node."""
    await provision_node(
        config,
        description=args.description,
        location=parse_location(args.location) if args.location else None,
        people=[Person(args.steward, args.password, "steward", operator=True)],
    )


def cmd_init(args: argparse.Namespace) -> None:
    data: Path = args.data
    if (data / "config.toml").exists():
        raise CliError(f"{data} already holds a node; refusing to overwrite it")
    args.password = password_from(args, f"the steward {args.steward}")
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
    print(f"Node ready in {data}: {urls.actor_id(config.base_url, config.slug)}")
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


_HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


def _listen_host(host: str) -> str:
    """The host to bind, IPv6 brackets removed; refuses what is neither an IP address
    nor a host name before the resolver answers it with a traceback or a DNS query."""
    literal = host.removeprefix("[").removesuffix("]")
    try:
        return str(ipaddress.ip_address(literal))
    except ValueError:
        pass
    name = host.removesuffix(".")
    labels = name.split(".")
    if not name or len(name) > 253 or not all(_HOST_LABEL.fullmatch(label) for label in labels):
        raise CliError(f"--host {host!r} is not an IP address or a host name")
    return host


def _listen_error(exc: OSError, host: str, port: int) -> CliError:
    """One line that says why the node could not listen, and what to do about it."""
    if isinstance(exc, socket.gaierror):
        return CliError(f"cannot resolve --host {host!r}: {exc.strerror or exc}")
    if exc.errno == errno.EADDRINUSE:
        return CliError(
            f"port {port} on {host} is already in use: stop whatever listens there "
            "or choose another --port"
        )
    if exc.errno == errno.EADDRNOTAVAIL:
        return CliError(
            f"{host} is not an address of this machine: listen on one of its own "
            "addresses, 127.0.0.1 or 0.0.0.0 (--host)"
        )
    if exc.errno == errno.EACCES:
        return CliError(
            f"not allowed to listen on port {port}: ports below 1024 need privileges; "
            "choose another --port and put a reverse proxy in front"
        )
    return CliError(f"cannot listen on {host}:{port}: {exc.strerror or exc}")


def cmd_serve(args: argparse.Namespace) -> None:
    config = load_config(args.data)
    configure_logging(args.log_level, config.log_format)
    _check_schema(config)
    host = _listen_host(args.host or config.listen_host)
    port = args.port or config.listen_port
    workers = False if args.no_workers else None
    try:
        with running(args.data):
            _run_app(config, host, port, workers)
    except LockError as exc:
        raise CliError(str(exc)) from exc
    except OSError as exc:
        raise _listen_error(exc, host, port) from exc


def _run_app(config: NodeConfig, host: str, port: int, workers: bool | None) -> None:
    web.run_app(
        init_app(config, workers=workers),
        host=host,
        port=port,
        # aiohttp calls this once every socket is bound: log only what is true.
        print=lambda _banner: log.info("serving %s on http://%s:%s", config.base_url, host, port),
        shutdown_timeout=10,
        access_log=logging.getLogger("commons_node.access"),
        access_log_class=AccessLogger,
    )


def cmd_worker(args: argparse.Namespace) -> None:
    config = load_config(args.data)
    configure_logging(args.log_level, config.log_format)
    _check_schema(config)
    host = _listen_host(args.metrics_host)
    try:
        with running(args.data):
            asyncio.run(run_worker(config, host=host, port=args.metrics_port))
    except LockError as exc:
        raise CliError(str(exc)) from exc
    except OSError as exc:
        raise _listen_error(exc, host, args.metrics_port or 0) from exc


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
    args.password = password_from(args, args.username)
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
        asyncio.run(
            run_demo(args.nodes, args.base_port, args.data, fresh=args.fresh, scale=args.scale)
        )
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            last = args.base_port + args.nodes
            raise CliError(
                f"a port from {args.base_port} to {last} is already in use (is a demo "
                "already running?): stop it or choose other ports with --base-port"
            ) from exc
        raise CliError(f"cannot start the demo: {exc.strerror or exc}") from exc
    except ValueError as exc:
        raise CliError(str(exc)) from exc


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    configure_logging(args.log_level)
    commands = {
        "init": cmd_init,
        "serve": cmd_serve,
        "worker": cmd_worker,
        "migrate": cmd_migrate,
        "demo": cmd_demo,
        **OPERATOR_COMMANDS,
    }
    handler = cmd_member_add if args.command == "member" else commands[args.command]
    try:
        handler(args)
    except (CliError, ConfigError, OperatorError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(file=sys.stderr)  # end the line of an interrupted prompt
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
