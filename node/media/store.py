"""The media folder: re-encoded images on disk, named by an unguessable key.

Files are written before the row that names them commits, so an image row
never points at nothing; when a row goes, its files go only after the
transaction commits (`remove_orphans_after_commit`), so a rolled-back
delete loses nothing. A crash between the two leaves at most a stray file,
which `sweep` removes.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import time
from pathlib import Path

from sqlalchemy.orm import Session

from node.config import NodeConfig
from node.media.imaging import EXTENSIONS, SIZES, Reencoded
from storage.repositories.images import ORPHANED_MEDIA

log = logging.getLogger(__name__)

KEY_PATTERN = re.compile(r"^[0-9a-f]{32}$")
_FILE = re.compile(r"^([0-9a-f]{32})-([a-z]+)\.(jpg|png)$")
STRAY_AFTER_SECONDS = 3600.0
"""A file with no row, older than this, is a leftover (a crash, a failed commit)."""


def media_root(config: NodeConfig) -> Path:
    """`media_dir` when set (relative to the data folder), else `<data folder>/media`."""
    configured = config.media_dir
    if configured is None:
        return config.data_dir / "media"
    return configured if configured.is_absolute() else config.data_dir / configured


class MediaStore:
    def __init__(self, root: Path) -> None:
        self.root = root

    @classmethod
    def of(cls, config: NodeConfig) -> MediaStore:
        return cls(media_root(config))

    def _path(self, key: str, size: str, media_type: str) -> Path:
        return self.root / f"{key}-{size}.{EXTENSIONS[media_type]}"

    def write(self, image: Reencoded) -> str:
        """Store every size under a fresh key; returns the key. Blocking: run in a thread."""
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        key = secrets.token_hex(16)
        for variant in image.variants:
            final = self._path(key, variant.name, image.media_type)
            partial = final.with_suffix(".part")
            partial.write_bytes(variant.data)
            os.replace(partial, final)
        return key

    def file(self, key: str, size: str, media_type: str) -> Path | None:
        if not KEY_PATTERN.match(key) or size not in SIZES or media_type not in EXTENSIONS:
            return None
        path = self._path(key, size, media_type)
        return path if path.is_file() else None

    def remove(self, keys: list[str]) -> None:
        for key in keys:
            if not KEY_PATTERN.match(key):
                continue
            for path in self.root.glob(f"{key}-*"):
                try:
                    path.unlink()
                except FileNotFoundError:
                    pass
                except OSError as exc:
                    log.warning("could not remove %s: %s", path, exc)

    def sweep(self, known: set[str], *, now: float | None = None) -> int:
        """Remove files whose key no row names and that are old enough not to be
        an upload still committing. Returns how many keys were removed."""
        if not self.root.is_dir():
            return 0
        cutoff = (now if now is not None else time.time()) - STRAY_AFTER_SECONDS
        stray: set[str] = set()
        for path in self.root.iterdir():
            match = _FILE.match(path.name)
            if match and match.group(1) not in known and path.stat().st_mtime < cutoff:
                stray.add(match.group(1))
        self.remove(sorted(stray))
        return len(stray)


def remove_orphans_after_commit(config: NodeConfig, session: Session) -> None:
    """Session hook: delete the files of image rows the committed transaction removed."""
    keys = session.info.pop(ORPHANED_MEDIA, None)
    if keys:
        MediaStore.of(config).remove(list(keys))
