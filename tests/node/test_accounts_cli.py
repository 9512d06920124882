"""The account rules and the operator role through the real command line and server."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

from tests.support.processes import cli, free_port, init_node, serve_node


def _call(base_url: str, method: str, path: str, body: object, token: str | None = None) -> int:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(
        base_url + path, data=json.dumps(body).encode(), headers=headers, method=method
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return int(resp.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)


def _token(base_url: str, username: str, password: str) -> str:
    request = urllib.request.Request(
        f"{base_url}/api/v1/auth/token",
        data=json.dumps({"username": username, "password": password}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        return str(json.load(resp)["token"])


def add(data: Path, username: str, password: str, *flags: str) -> tuple[int, str]:
    result = cli("member", "add", "--data", str(data), "--username", username,
                 "--password", password, *flags)  # fmt: skip
    return result.returncode, result.stdout + result.stderr


def test_one_password_and_username_rule_for_init_and_member_add(tmp_path: Path) -> None:
    short = cli("init", "--data", str(tmp_path / "a"), "--name", "A", "--slug", "a",
                "--base-url", "http://127.0.0.1:8790", "--steward", "sam",
                "--password", "seven77")  # fmt: skip
    assert short.returncode == 1 and "at least 8 characters" in short.stderr
    assert not (tmp_path / "a").exists()

    data = tmp_path / "node"
    init_node(data, slug="tools", name="Tools", port=free_port())
    code, out = add(data, "ada", "x")
    assert code == 1 and "at least 8 characters" in out
    code, out = add(data, "a-d-a", "long enough")
    assert code == 1 and "username" in out
    code, out = add(data, "Ada_Lovelace", "long enough")
    assert code == 0, out


def test_the_first_steward_and_added_operators_manage_node_wide_settings(tmp_path: Path) -> None:
    data = tmp_path / "node"
    base_url = init_node(data, slug="tools", name="Tools", port=free_port())
    assert add(data, "sue", "steward-sue-pw", "--steward")[0] == 0
    code, out = add(data, "oz", "operator-oz-pw", "--operator")
    assert code == 0 and "operator" in out
    node = serve_node(data, base_url)
    try:
        block = {"domain": "spam.example"}
        first = _token(base_url, "steward", "steward-password")
        assert _call(base_url, "POST", "/api/v1/federation/blocks", block, first) == 201
        sue = _token(base_url, "sue", "steward-sue-pw")
        assert _call(base_url, "POST", "/api/v1/federation/blocks", block, sue) == 403
        oz = _token(base_url, "oz", "operator-oz-pw")
        assert _call(base_url, "DELETE", "/api/v1/federation/blocks/spam.example", {}, oz) == 204
    finally:
        assert node.stop() == 0
