"""Backing up a node on SQLite, and restoring it, as one file.

A backup is a tar archive of two members: `commons.db`, a consistent copy of
the database made with SQLite's online backup API (so the node keeps
serving while it is taken), and `config.toml`, without which the database
is not a node (the base URL, the slug and the secret key are there). Both
hold secrets (the community's private key, the secret key): the archive is
written owner-only.

A node on PostgreSQL is backed up with PostgreSQL's own tools; `backup`
says how rather than pretending.
"""

from __future__ import annotations

import io
import os
import sqlite3
import tarfile
import tempfile
import tomllib
from pathlib import Path
from typing import Any

import tomli_w
from sqlalchemy.engine import make_url

from node.config import CONFIG_FILE, NodeConfig, config_from, default_database_url
from node.datalock import stopped

DATABASE_MEMBER = "commons.db"
CONFIG_MEMBER = CONFIG_FILE
MAX_CONFIG_BYTES = 1024 * 1024


class BackupError(Exception):
    """The backup or restore cannot be done; the message says why and what to do."""


def sqlite_path(database_url: str) -> Path | None:
    """The database file of a SQLite URL, or None for any other database."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return Path(url.database)


def pg_dump_advice(config: NodeConfig) -> str:
    url = make_url(config.database_url)
    target = url.set(drivername="postgresql").render_as_string(hide_password=True)
    return (
        "this node's database is PostgreSQL, which backs itself up: run\n"
        f"  pg_dump --format=custom --file=commons.dump '{target}'\n"
        "(with the password in PGPASSWORD or ~/.pgpass), restore with pg_restore, and keep "
        f"a copy of {config.data_dir / CONFIG_FILE} with it: it holds the node's base URL "
        "and secret key"
    )


def _copy_database(source: Path, target: Path) -> None:
    """SQLite's online backup: a consistent copy while writers carry on."""
    if not source.is_file():
        raise BackupError(f"the database {source} does not exist")
    src = sqlite3.connect(f"{source.resolve().as_uri()}?mode=ro", uri=True)
    try:
        dst = sqlite3.connect(target)
        try:
            src.backup(dst, pages=1024)
        finally:
            dst.close()
    finally:
        src.close()


def backup(config: NodeConfig, out: Path, *, force: bool = False) -> None:
    """Write the node's database and config.toml to the archive `out`."""
    source = sqlite_path(config.database_url)
    if source is None:
        raise BackupError(pg_dump_advice(config))
    if out.exists() and not force:
        raise BackupError(f"{out} exists; choose another --out, or --force to replace it")
    config_text = (config.data_dir / CONFIG_FILE).read_bytes()
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".commons-backup-") as work:
        copy = Path(work) / DATABASE_MEMBER
        _copy_database(source, copy)
        partial = Path(work) / "backup.tar"
        fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w") as archive:
            archive.add(copy, arcname=DATABASE_MEMBER)
            info = tarfile.TarInfo(CONFIG_MEMBER)
            info.size, info.mode = len(config_text), 0o600
            archive.addfile(info, io.BytesIO(config_text))
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(partial, out)


def _read_archive(archive_path: Path, database_target: Path) -> dict[str, Any]:
    """Extract the database to `database_target`; return the backed-up config values.

    Members are read by name, never extracted by the paths they claim, so an
    archive cannot write outside the data folder.
    """
    try:
        with tarfile.open(archive_path, mode="r") as archive:
            names = set(archive.getnames())
            if names != {DATABASE_MEMBER, CONFIG_MEMBER}:
                raise BackupError(f"{archive_path} is not a Commons Node backup")
            config_member = archive.getmember(CONFIG_MEMBER)
            db_member = archive.getmember(DATABASE_MEMBER)
            if not (config_member.isfile() and db_member.isfile()):
                raise BackupError(f"{archive_path} is not a Commons Node backup")
            if config_member.size > MAX_CONFIG_BYTES:
                raise BackupError(f"{archive_path}: its config.toml is too large")
            config_file = archive.extractfile(config_member)
            db_file = archive.extractfile(db_member)
            assert config_file is not None and db_file is not None
            values = tomllib.loads(config_file.read().decode("utf-8"))
            fd = os.open(database_target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as out:
                while chunk := db_file.read(1024 * 1024):
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
    except (tarfile.TarError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise BackupError(f"{archive_path} is not a readable Commons Node backup: {exc}") from exc
    return values


def _check_database(path: Path) -> None:
    db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
    try:
        if db.execute("PRAGMA integrity_check").fetchone() != ("ok",):
            raise BackupError("the database in the backup is damaged (integrity check failed)")
        found = db.execute("SELECT 1 FROM sqlite_master WHERE name = 'alembic_version'")
        if found.fetchone() is None:
            raise BackupError("the database in the backup holds no node")
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"the database in the backup cannot be read: {exc}") from exc
    finally:
        db.close()


def restore(data_dir: Path, archive_path: Path, *, force: bool = False) -> NodeConfig:
    """Make `data_dir` the node of the backup, refusing to replace a node without `force`.

    The node must be stopped (see `node.datalock`). The database is written
    next to its final place, checked, and only then moved over the old one,
    with the old one's write-ahead log removed so it cannot be replayed on
    top. A backup's SQLite path is rewritten to `data_dir`, so a backup can
    be restored on another machine or into another folder.
    """
    if not archive_path.is_file():
        raise BackupError(f"there is no backup at {archive_path}")
    if (data_dir / CONFIG_FILE).exists() and not force:
        raise BackupError(
            f"{data_dir} already holds a node; restoring replaces all of its data: "
            "add --force if that is what you want"
        )
    data_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    with stopped(data_dir):
        database = data_dir / DATABASE_MEMBER
        incoming = data_dir / f"{DATABASE_MEMBER}.restoring"
        try:
            values = _read_archive(archive_path, incoming)
            _check_database(incoming)
            values["database_url"] = default_database_url(data_dir)
            config = config_from(data_dir, values, environ={})
            for suffix in ("-wal", "-shm", "-journal"):
                Path(f"{database}{suffix}").unlink(missing_ok=True)
            os.replace(incoming, database)
        finally:
            incoming.unlink(missing_ok=True)
        config_path = data_dir / CONFIG_FILE
        header = "# Commons Node configuration, restored by `commons-node restore`.\n"
        config_path.write_text(header + tomli_w.dumps(values), encoding="utf-8")
        config_path.chmod(0o600)
    return config
