"""A lock file in the data folder: which commands may run while the node is running.

`serve` and `worker` hold a shared lock on `DIR/node.lock` for as long as
they run (several may, on PostgreSQL). Commands that replace the node's
data underneath it (`restore`, `move-to-postgres`) take the lock
exclusively, without waiting, and refuse to run while anything holds it.
The operating system drops the lock when a process dies, so a crash never
leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

LOCK_FILE = "node.lock"


class LockError(Exception):
    """The data folder's lock cannot be taken; the message says why."""


class NodeRunning(LockError):
    """A `serve` or `worker` process holds the node (or a restore holds it)."""


@contextmanager
def _locked(data_dir: Path, mode: int, busy: str) -> Iterator[None]:
    path = data_dir / LOCK_FILE
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise LockError(f"cannot open the lock file {path}: {exc.strerror or exc}") from exc
    try:
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
        except BlockingIOError:
            raise NodeRunning(busy) from None
        yield
    finally:
        os.close(fd)


@contextmanager
def running(data_dir: Path) -> Iterator[None]:
    """Held by `serve` and `worker` while they run; shared, so several may."""
    busy = f"a restore or a move of the node in {data_dir} is under way; wait for it to end"
    with _locked(data_dir, fcntl.LOCK_SH, busy):
        yield


@contextmanager
def stopped(data_dir: Path) -> Iterator[None]:
    """Held by a command that must not run under a live node; refuses at once if one is."""
    busy = (
        f"the node in {data_dir} is running (a `serve` or `worker` holds "
        f"{data_dir / LOCK_FILE}): stop it first"
    )
    with _locked(data_dir, fcntl.LOCK_EX, busy):
        yield
