"""JSON logs with request ids, and nothing secret or private in them."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestServer

from node.app import init_app
from node.config import config_from, write_config
from node.ops.logs import (
    AccessLogger,
    JsonFormatter,
    RequestIdFilter,
    mask_secrets,
    quiet_libraries,
)
from node.services.provisioning import Person, provision_node

PASSWORD = "correct horse battery"
PRIVATE_TEXT = "the spare key is under the blue flowerpot"


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    """Everything logged during the test, as the JSON formatter writes it."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    quiet_libraries()  # as `commons-node serve` does, whatever other tests left set
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(level)


async def test_json_logs_carry_the_request_id_and_no_secrets(
    tmp_path: Path, aiohttp_client: Any, json_log: io.StringIO
) -> None:
    config = write_config(
        tmp_path,
        base_url="http://tools.test",
        slug="tools",
        name="Tools",
        database_url=None,
        allow_private_addresses=True,
    )
    await provision_node(config, people=[Person("ana", PASSWORD, "steward")])
    server = TestServer(init_app(config))
    await server.start_server(
        access_log_class=AccessLogger, access_log=logging.getLogger("commons_node.access")
    )
    client = await aiohttp_client(server)
    resp = await client.post("/api/v1/auth/token", json={"username": "ana", "password": PASSWORD})
    token = (await resp.json())["token"]
    login_id = resp.headers["X-Request-Id"]
    headers = {"Authorization": f"Bearer {token}", "X-Request-Id": "proxy-given-id-123"}
    listing = {"kind": "offer", "title": "Ladder", "description": PRIVATE_TEXT}
    resp = await client.post("/api/v1/listings", json=listing, headers=headers)
    assert resp.status == 201
    assert resp.headers["X-Request-Id"] == "proxy-given-id-123"
    listing_id = (await resp.json())["id"]
    resp = await client.get(f"/api/v1/listings/{listing_id}?secret=x", headers=headers)
    assert resp.status == 200
    resp = await client.get("/api/v1/listings", headers={"X-Request-Id": "bad id with spaces"})
    assert resp.status == 401
    assert resp.headers["X-Request-Id"] != "bad id with spaces"

    lines = [orjson.loads(line) for line in json_log.getvalue().splitlines()]
    access = [line for line in lines if line["logger"] == "commons_node.access"]
    assert {line["request_id"] for line in access} >= {login_id, "proxy-given-id-123"}
    fetched = next(line for line in access if line.get("route") == "/api/v1/listings/{id}")
    assert fetched["status"] == 200
    assert fetched["path"] == f"/api/v1/listings/{listing_id}"  # no query string
    everything = json_log.getvalue()
    for secret in (PASSWORD, token, PRIVATE_TEXT, config.secret_key, "secret=x"):
        assert secret not in everything


def test_secrets_in_messages_are_masked() -> None:
    text = mask_secrets(
        "cannot connect to postgresql+asyncpg://commons:s3cret@db:5432/commons; "
        "header Authorization: Bearer abc.def-123"
    )
    assert "s3cret" not in text and "abc.def-123" not in text
    assert "postgresql+asyncpg://commons:***@db:5432/commons" in text


def test_log_format_is_a_checked_setting(tmp_path: Path) -> None:
    values = {
        "base_url": "https://x.example",
        "slug": "x",
        "name": "X",
        "database_url": "sqlite:///x.db",
        "secret_key": "0123456789abcdef",
    }
    assert config_from(tmp_path, {**values, "log_format": "json"}, environ={}).log_format == "json"
    with pytest.raises(Exception, match="log_format"):
        config_from(tmp_path, {**values, "log_format": "xml"}, environ={})
