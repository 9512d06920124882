"""Serving a folder of files, with a missing file answered by the error middleware.

aiohttp's own static route decides "not found" only while sending the answer,
after every middleware has run, so a mistyped asset URL got an empty 404 rather
than the node's error page. Here the file is looked up first; a name outside
the folder (`..`, an absolute path, a symlink leading out) is not found either.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

FILENAME = "filename"


def _existing_file(root: Path, name: str) -> Path | None:
    try:
        path = (root / name).resolve()
    except (OSError, ValueError):  # a NUL byte, a symlink loop
        return None
    if root not in path.parents or not path.is_file():
        return None
    return path


def file_handler(folder: Path) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    """A GET handler serving `{filename}` from `folder` and nothing outside it."""
    root = folder.resolve()

    async def serve_file(request: web.Request) -> web.StreamResponse:
        path = await asyncio.to_thread(_existing_file, root, request.match_info[FILENAME])
        if path is None:
            raise web.HTTPNotFound()
        return web.FileResponse(path)

    return serve_file


def add_folder(app: web.Application, prefix: str, folder: Path, name: str) -> None:
    """Serve `folder` under `prefix` (no trailing slash)."""
    app.router.add_get(f"{prefix}/{{{FILENAME}:.+}}", file_handler(folder), name=name)
