"""The server-rendered web pages: one entry point that node/app.py calls."""

from __future__ import annotations

from aiohttp import web

from node.appkeys import TEMPLATES
from node.static_files import add_folder
from node.web import (
    account_pages,
    auth_pages,
    community_pages,
    discovery_pages,
    exchange_pages,
    federation_pages,
    flow_pages,
    listings_pages,
    media_files,
    network_listings_pages,
    partnership_pages,
    people_pages,
    photo_pages,
    steward_pages,
)
from node.web.nav_alerts import setup_nav_alerts
from node.web.templating import STATIC_DIR, build_environment

ROUTE_TABLES = (
    auth_pages.routes,
    listings_pages.routes,
    network_listings_pages.routes,
    steward_pages.routes,
    partnership_pages.routes,
    community_pages.routes,
    flow_pages.routes,
    exchange_pages.routes,
    people_pages.routes,
    federation_pages.routes,
    account_pages.routes,
    discovery_pages.routes,
    media_files.routes,
    photo_pages.routes,
)


def setup_pages(app: web.Application) -> None:
    """Register the Jinja2 environment, the page routes and /static."""
    app[TEMPLATES] = build_environment()
    setup_nav_alerts(app)
    for table in ROUTE_TABLES:
        app.router.add_routes(table)
    add_folder(app, "/static", STATIC_DIR, name="static")
