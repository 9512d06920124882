"""The command line as API.md writes it, run as real processes."""

from __future__ import annotations

import json
import signal
import sqlite3
import urllib.error
import urllib.request
from pathlib import Path

from tests.support.processes import cli, free_port, init_node, serve_node


def _token(base_url: str, username: str, password: str) -> int | str:
    request = urllib.request.Request(
        f"{base_url}/api/v1/auth/token",
        data=json.dumps({"username": username, "password": password}).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(request, timeout=5) as resp:
            return str(json.load(resp)["token"])
    except urllib.error.HTTPError as exc:
        return exc.code


def test_init_creates_a_node_and_refuses_to_overwrite_it(tmp_path: Path) -> None:
    data = tmp_path / "node"
    init_node(data, slug="tools", name="Tool Library", port=8799, extra=["--location", "51.5,-0.1"])
    assert (data / "config.toml").is_file()
    assert (data / "commons.db").is_file()
    assert oct((data / "config.toml").stat().st_mode & 0o777) == "0o600"
    assert oct((data / "commons.db").stat().st_mode & 0o777) == "0o600"
    db = sqlite3.connect(data / "commons.db")
    community = db.execute(
        "SELECT slug, name, latitude, private_key_pem IS NOT NULL FROM communities"
    ).fetchall()
    assert community == [("tools", "Tool Library", 51.5, 1)]
    before = (data / "config.toml").read_text()

    again = cli(
        "init",
        "--data",
        str(data),
        "--name",
        "Other",
        "--slug",
        "other",
        "--base-url",
        "http://127.0.0.1:8798",
        "--steward",
        "eve",
        "--password",
        "password123",
    )
    assert again.returncode == 1
    assert "refusing to overwrite" in again.stderr
    assert (data / "config.toml").read_text() == before
    assert db.execute("SELECT count(*) FROM communities").fetchone() == (1,)


def test_init_rejects_bad_input_without_leaving_a_half_node(tmp_path: Path) -> None:
    data = tmp_path / "node"
    bad = cli(
        "init",
        "--data",
        str(data),
        "--name",
        "X",
        "--slug",
        "Not A Slug",
        "--base-url",
        "http://127.0.0.1:8797",
        "--steward",
        "sam",
        "--password",
        "password123",
    )
    assert bad.returncode == 1
    assert "slug" in bad.stderr
    assert not data.exists()
    bad_url = cli(
        "init",
        "--data",
        str(data),
        "--name",
        "X",
        "--slug",
        "x",
        "--base-url",
        "ftp://example",
        "--steward",
        "sam",
        "--password",
        "password123",
    )
    assert bad_url.returncode == 1
    assert not (data / "config.toml").exists()


def test_serve_answers_and_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    data = tmp_path / "node"
    base_url = init_node(data, slug="tools", name="Tool Library", port=free_port())
    added = cli(
        "member", "add", "--data", str(data), "--username", "ada", "--password", "pw-ada-123"
    )
    assert added.returncode == 0, added.stderr
    duplicate = cli(
        "member", "add", "--data", str(data), "--username", "ADA", "--password", "pw-other-1"
    )
    assert duplicate.returncode == 1
    assert "already exists" in duplicate.stderr

    node = serve_node(data, base_url)
    try:
        assert isinstance(_token(base_url, "steward", "steward-password"), str)
        assert isinstance(_token(base_url, "ada", "pw-ada-123"), str)
        assert _token(base_url, "ada", "wrong") == 401
    finally:
        code = node.stop(signal.SIGTERM)
    assert code == 0, node.log()


def test_migrate_is_idempotent_and_serve_refuses_an_old_schema(tmp_path: Path) -> None:
    data = tmp_path / "node"
    init_node(data, slug="tools", name="Tool Library", port=8796)
    result = cli("migrate", "--data", str(data))
    assert result.returncode == 0, result.stderr
    db = sqlite3.connect(data / "commons.db")
    db.execute("UPDATE alembic_version SET version_num = '0001'")
    db.commit()
    refused = cli("serve", "--data", str(data))
    assert refused.returncode == 1
    assert "migrate" in refused.stderr


def test_commands_on_a_folder_that_is_no_node_fail_clearly(tmp_path: Path) -> None:
    result = cli("serve", "--data", str(tmp_path))
    assert result.returncode == 1
    assert "not a Commons Node data folder" in result.stderr
