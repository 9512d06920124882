"""The node's configuration: one typed model, unknown keys refused, environment on top."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from node.config import ConfigError, load_config, write_config


def _init(tmp_path: Path) -> Path:
    write_config(
        tmp_path,
        base_url="http://Tools.Test:8080/",
        slug="tools",
        name='Tool "Library"',
        database_url=None,
        allow_private_addresses=False,
    )
    return tmp_path / "config.toml"


def test_written_config_is_valid_toml_that_reads_back(tmp_path: Path) -> None:
    path = _init(tmp_path)
    raw = tomllib.loads(path.read_text())
    assert raw["name"] == 'Tool "Library"'
    config = load_config(tmp_path, {})
    assert config.base_url == "http://tools.test:8080"
    assert config.host == "tools.test:8080" and config.listen_port == 8080
    assert config.backfill_max_items == 50_000  # defaults fill in what the file omits
    assert path.stat().st_mode & 0o077 == 0


def test_an_unknown_setting_is_refused_by_name(tmp_path: Path) -> None:
    path = _init(tmp_path)
    path.write_text(path.read_text() + "trusted_proxys = ['127.0.0.1']\n")
    with pytest.raises(ConfigError, match="trusted_proxys: unknown setting"):
        load_config(tmp_path, {})


def test_a_setting_of_the_wrong_kind_says_which_and_why(tmp_path: Path) -> None:
    path = _init(tmp_path)
    path.write_text(path.read_text() + "backfill_max_items = -3\n")
    with pytest.raises(ConfigError, match="backfill_max_items"):
        load_config(tmp_path, {})


def test_every_setting_can_be_overridden_from_the_environment(tmp_path: Path) -> None:
    _init(tmp_path)
    config = load_config(
        tmp_path,
        {
            "COMMONS_DATABASE_URL": "postgresql+asyncpg://db/commons",
            "COMMONS_BACKFILL_MAX_ITEMS": "120",
            "COMMONS_ALLOW_PRIVATE_ADDRESSES": "true",
        },
    )
    assert config.database_url == "postgresql+asyncpg://db/commons"
    assert config.backfill_max_items == 120
    assert config.allow_private_addresses is True
    with pytest.raises(ConfigError, match="backfill_max_items"):
        load_config(tmp_path, {"COMMONS_BACKFILL_MAX_ITEMS": "many"})
