"""The command line as API.md writes it, run as real processes."""

from __future__ import annotations

import argparse
import json
import signal
import socket
import sqlite3
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from argon2 import PasswordHasher
from argon2.exceptions import VerificationError

from node import cli as commons_cli
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


# --- what a newcomer hits: errors in one line, help for every option, passwords off argv ---


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


def test_serve_on_a_busy_port_says_so_in_one_line(tmp_path: Path) -> None:
    data = tmp_path / "node"
    port = free_port()
    init_node(data, slug="tools", name="Tool Library", port=port)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        result = cli("serve", "--data", str(data))
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    [line] = _error_lines(result.stderr)
    assert f"port {port}" in line
    assert "already in use" in line


def test_serve_with_a_bad_host_says_so_in_one_line(tmp_path: Path) -> None:
    data = tmp_path / "node"
    init_node(data, slug="tools", name="Tool Library", port=free_port())
    # 192.0.2.1 is a documentation address: no interface of this machine has it.
    for host, reason in [
        ("192.0.2.1", "not an address of this machine"),
        ("no such host!", "not an IP address or a host name"),
        ("a" * 64 + ".example", "not an IP address or a host name"),
    ]:
        result = cli("serve", "--data", str(data), "--host", host)
        assert result.returncode == 1, host
        assert "Traceback" not in result.stderr, host
        [line] = _error_lines(result.stderr)
        assert reason in line, line


def test_serve_explains_an_unresolvable_host(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "node"
    init_node(data, slug="tools", name="Tool Library", port=free_port())

    def unresolvable(*_args: object, **_kwargs: object) -> None:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(commons_cli.web, "run_app", unresolvable)
    assert commons_cli.main(["serve", "--data", str(data), "--host", "nowhere.example"]) == 1
    [line] = _error_lines(capsys.readouterr().err)
    assert "cannot resolve --host 'nowhere.example'" in line


def _subcommand_parsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    """Every (sub)command's parser by its full name, `member add` included."""
    found = {}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                found[name] = sub
                found.update({f"{name} {k}": v for k, v in _subcommand_parsers(sub).items()})
    return found


def test_every_option_of_every_command_is_described_in_its_help() -> None:
    parsers = _subcommand_parsers(commons_cli.build_parser())
    assert {"init", "serve", "member add", "migrate", "demo"} <= set(parsers)
    for name, parser in parsers.items():
        text = parser.format_help()
        for action in parser._actions:
            if not action.option_strings or action.help == argparse.SUPPRESS:
                continue
            option = action.option_strings[-1]
            assert action.help and len(action.help) > 10, f"{name} {option} has no help"
            assert option in text and action.help.split()[0] in text, (name, option)


def test_top_level_help_lists_every_command_and_init_help_every_option() -> None:
    top = cli("--help")
    assert top.returncode == 0
    for command in ("init", "serve", "member", "migrate", "demo"):
        assert command in top.stdout
    init_help = cli("init", "--help")
    assert init_help.returncode == 0
    for option in (
        "--data",
        "--name",
        "--slug",
        "--base-url",
        "--steward",
        "--password",
        "--password-file",
        "--description",
        "--location",
        "--allow-private-addresses",
        "--database-url",
    ):
        assert option in init_help.stdout, option
    assert "prompt" in init_help.stdout


def _init_args(data: Path, *password: str) -> list[str]:
    return [
        "init",
        "--data",
        str(data),
        "--name",
        "Tool Library",
        "--slug",
        "tools",
        "--base-url",
        f"http://127.0.0.1:{free_port()}",
        "--steward",
        "alice",
        *password,
    ]


def _password_of(data: Path, username: str) -> str:
    db = sqlite3.connect(data / "commons.db")
    try:
        [(stored,)] = db.execute(
            "SELECT password_hash FROM members WHERE username = ?", (username,)
        ).fetchall()
    finally:
        db.close()
    return str(stored)


def _verifies(stored_hash: str, password: str) -> bool:
    try:
        return PasswordHasher().verify(stored_hash, password)
    except VerificationError:
        return False


def test_password_file_gives_the_first_line_without_its_newline(tmp_path: Path) -> None:
    secret = tmp_path / "steward-password"
    secret.write_text("correct horse battery\nsecond line is ignored\n")
    data = tmp_path / "node"
    result = cli(*_init_args(data, "--password-file", str(secret)))
    assert result.returncode == 0, result.stderr
    stored = _password_of(data, "alice")
    assert _verifies(stored, "correct horse battery")
    assert not _verifies(stored, "correct horse battery\n")

    bob_secret = tmp_path / "bob-password"
    bob_secret.write_text("bobs-password-1\r\n")
    added = cli(
        "member",
        "add",
        "--data",
        str(data),
        "--username",
        "bob",
        "--password-file",
        str(bob_secret),
    )
    assert added.returncode == 0, added.stderr
    assert _verifies(_password_of(data, "bob"), "bobs-password-1")


def test_a_missing_or_empty_password_file_is_refused_clearly(tmp_path: Path) -> None:
    data = tmp_path / "node"
    missing = cli(*_init_args(data, "--password-file", str(tmp_path / "nope")))
    assert missing.returncode == 1
    assert "Traceback" not in missing.stderr
    [line] = _error_lines(missing.stderr)
    assert "password file" in line
    empty = tmp_path / "empty"
    empty.write_text("\n")
    refused = cli(*_init_args(data, "--password-file", str(empty)))
    assert refused.returncode == 1
    assert "empty" in refused.stderr
    assert not data.exists()


def _cli_with_input(*args: str, stdin: str) -> subprocess.CompletedProcess[str]:
    """Run the CLI with no controlling terminal, so getpass reads the piped stdin."""
    return subprocess.run(
        [sys.executable, "-m", "node.cli", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
        start_new_session=True,
    )


def test_without_password_init_and_member_add_prompt_twice(tmp_path: Path) -> None:
    data = tmp_path / "node"
    created = _cli_with_input(*_init_args(data), stdin="prompted-pass-1\nprompted-pass-1\n")
    assert created.returncode == 0, created.stderr
    assert _verifies(_password_of(data, "alice"), "prompted-pass-1")

    added = _cli_with_input(
        "member",
        "add",
        "--data",
        str(data),
        "--username",
        "bob",
        stdin="bob-pass-12\nbob-pass-12\n",
    )
    assert added.returncode == 0, added.stderr
    assert _verifies(_password_of(data, "bob"), "bob-pass-12")


def test_a_prompted_password_that_differs_or_is_absent_creates_nothing(tmp_path: Path) -> None:
    data = tmp_path / "node"
    differ = _cli_with_input(*_init_args(data), stdin="first-password\nsecond-password\n")
    assert differ.returncode == 1
    assert "Traceback" not in differ.stderr
    [line] = _error_lines(differ.stderr)
    assert "do not match" in line
    assert not data.exists()

    nothing = _cli_with_input(*_init_args(data), stdin="")
    assert nothing.returncode == 1
    assert "Traceback" not in nothing.stderr
    assert "--password-file" in nothing.stderr
    assert not data.exists()


def test_member_add_prompts_through_getpass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "node"
    init_node(data, slug="tools", name="Tool Library", port=free_port())
    prompts: list[str] = []

    def fake_getpass(prompt: str = "") -> str:
        prompts.append(prompt)
        return "typed-password-9"

    monkeypatch.setattr(commons_cli.getpass, "getpass", fake_getpass)
    code = commons_cli.main(["member", "add", "--data", str(data), "--username", "carol"])
    assert code == 0, capsys.readouterr().err
    assert len(prompts) == 2
    assert "carol" in prompts[0]
    assert _verifies(_password_of(data, "carol"), "typed-password-9")
