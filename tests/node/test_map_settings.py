"""Map tiles: a setting, checked when the node starts, that the pages' CSP follows."""

from __future__ import annotations

from pathlib import Path

import pytest

from node.config import ConfigError, load_config, tile_origin, write_config


@pytest.fixture
def data(tmp_path: Path) -> Path:
    write_config(
        tmp_path,
        base_url="http://127.0.0.1:8700",
        slug="tools",
        name="Tools",
        database_url=None,
        allow_private_addresses=False,
    )
    return tmp_path


def test_openstreetmap_tiles_with_their_credit_by_default(data: Path) -> None:
    config = load_config(data, {})
    assert config.map_tile_url == "https://tile.openstreetmap.org/{z}/{x}/{y}.png"
    assert "OpenStreetMap contributors" in config.map_tile_attribution
    assert tile_origin(config.map_tile_url) == "https://tile.openstreetmap.org"


def test_another_tile_server_or_none_can_be_configured(data: Path) -> None:
    own = load_config(data, {"COMMONS_MAP_TILE_URL": "https://{s}.tiles.example/{z}/{x}/{y}.png"})
    assert tile_origin(own.map_tile_url) == "https://*.tiles.example"
    assert load_config(data, {"COMMONS_MAP_TILE_URL": ""}).map_tile_url == ""


@pytest.mark.parametrize(
    "template",
    [
        "javascript:alert(1)//{z}/{x}/{y}",
        "https://tiles.example/{z}/{x}.png",
        "https://tiles.example'; script-src *; /{z}/{x}/{y}.png",
        "tiles.example/{z}/{x}/{y}.png",
    ],
)
def test_a_tile_url_that_is_not_a_tile_template_stops_the_node(data: Path, template: str) -> None:
    with pytest.raises(ConfigError, match="map_tile_url"):
        load_config(data, {"COMMONS_MAP_TILE_URL": template})


def test_the_attribution_link_must_be_a_web_address(data: Path) -> None:
    with pytest.raises(ConfigError, match="map_tile_attribution_url"):
        load_config(data, {"COMMONS_MAP_TILE_ATTRIBUTION_URL": "javascript:alert(1)"})
