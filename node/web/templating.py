"""The Jinja2 environment and the one function that turns a template into a response.

Autoescaping is always on (every template here is HTML). Undefined variables
raise, so a typo in a template fails a test instead of rendering blank.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from aiohttp import web
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from node import __version__
from node.appkeys import CONFIG, TEMPLATES
from node.web.flash import clear_flash, read_flash
from node.web.sessions import CSRF_FIELD, WebSession

PACKAGE_DIR = Path(__file__).resolve().parent.parent
TEMPLATE_DIR = PACKAGE_DIR / "templates"
STATIC_DIR = PACKAGE_DIR / "static"


@cache
def _static_fingerprint(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def static_url(name: str) -> str:
    """`/static/NAME?v=HASH`: browsers may cache static files, yet see every change."""
    path = (STATIC_DIR / name).resolve()
    if STATIC_DIR not in path.parents or not path.is_file():
        raise ValueError(f"no static file {name!r}")
    return f"/static/{name}?v={_static_fingerprint(path)}"


def format_date(value: datetime) -> str:
    return f"{value.day} {value:%b %Y}"


def build_environment() -> Environment:
    env = Environment(
        loader=FileSystemLoader(TEMPLATE_DIR),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(static_url=static_url, version=__version__, csrf_field=CSRF_FIELD)
    env.filters["date"] = format_date
    return env


def render(
    request: web.Request,
    name: str,
    session: WebSession | None,
    status: int = 200,
    **context: Any,
) -> web.Response:
    """Render a page with what every page shows: who is signed in, where, and any flash."""
    member = session.member if session else None
    flash = read_flash(request)
    common = {
        "member": member,
        "community_name": member.community.name if member else request.app[CONFIG].name,
        "csrf_token": session.csrf_token if session else "",
        "flash": flash,
        "current_path": request.path,
    }
    html = request.app[TEMPLATES].get_template(name).render(common | context)
    response = web.Response(text=html, status=status, content_type="text/html")
    response.headers["Cache-Control"] = "no-store"
    if flash is not None:
        clear_flash(response)
    return response
