"""Interactive API docs at /api/docs, served from the swagger-ui-bundle package (no CDN)."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web
from swagger_ui_bundle import swagger_ui_path

from node.static_files import add_folder

DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Commons Node API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/api/docs/static/swagger-ui.css"></head>
<body><div id="swagger-ui"></div>
<script src="/api/docs/static/swagger-ui-bundle.js"></script>
<script src="/api/docs/init.js"></script></body></html>
"""

INIT_SCRIPT = """window.ui = SwaggerUIBundle({
  url: "/api/v1/openapi.json", dom_id: "#swagger-ui", deepLinking: true,
  persistAuthorization: true, validatorUrl: null
});
"""


async def docs_page(_request: web.Request) -> web.Response:
    return web.Response(text=DOCS_PAGE, content_type="text/html")


async def docs_init(_request: web.Request) -> web.Response:
    return web.Response(text=INIT_SCRIPT, content_type="application/javascript")


def setup_docs(app: web.Application) -> None:
    app.router.add_get("/api/docs", docs_page)
    app.router.add_get("/api/docs/init.js", docs_init)
    add_folder(app, "/api/docs/static", Path(swagger_ui_path), name="swagger_static")
