"""Leaflet and the map script are served by the node itself, and the CSP admits only
them and the configured tile server."""

from __future__ import annotations

from pathlib import Path

import pytest

from node.app import init_app
from node.config import load_config
from tests.web.conftest import Browser, ClientFactory


@pytest.mark.parametrize(
    ("path", "content_type", "marker"),
    [
        ("/static/vendor/leaflet/leaflet.js", "application/javascript", 'version="1.9.4"'),
        ("/static/vendor/leaflet/leaflet.css", "text/css", ".leaflet-container"),
        ("/static/map.js", "application/javascript", "data-markers-from"),
    ],
)
async def test_map_assets_are_served_from_the_node(
    browser: Browser, path: str, content_type: str, marker: str
) -> None:
    response = await browser.get(path)
    assert response.status == 200
    assert response.content_type in (content_type, "text/javascript")
    assert marker in await response.text()


async def test_leaflet_marker_images_are_served(browser: Browser) -> None:
    for name in ("marker-icon.png", "marker-icon-2x.png", "marker-shadow.png"):
        response = await browser.get(f"/static/vendor/leaflet/images/{name}")
        assert response.status == 200 and response.content_type == "image/png", name


async def test_pages_allow_images_from_the_tile_server_and_nothing_else_from_elsewhere(
    browser: Browser,
) -> None:
    csp = (await browser.get("/signin")).headers["Content-Security-Policy"]
    assert "img-src 'self' data: https://tile.openstreetmap.org;" in csp
    assert "script-src 'self';" in csp and "style-src 'self';" in csp


async def test_a_node_without_tiles_allows_no_other_origin(
    aiohttp_client: ClientFactory, node_config: object, tmp_path: Path
) -> None:
    config = load_config(tmp_path, {"COMMONS_MAP_TILE_URL": ""})
    client = await aiohttp_client(init_app(config))
    csp = (await client.get("/signin")).headers["Content-Security-Policy"]
    assert "img-src 'self' data:;" in csp
