"""What in deploy/ cannot run here is still checked: it parses, and names only what exists."""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

import yaml

from node.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"
OFFICIAL_IMAGES = {"postgres", "caddy", "nginx"}
OUR_IMAGE = "commons-node:local"


def compose() -> dict[str, Any]:
    document = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    assert isinstance(document, dict)
    return document


def subcommands() -> set[str]:
    parser = build_parser()
    actions = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return set(actions[0].choices)


def subcommand_of(command: list[str]) -> str:
    """The first word that is not an option (or an option's value) of `commons-node`."""
    words = iter(command)
    for word in words:
        if word == "--log-level":
            next(words)
        elif not word.startswith("-"):
            return word
    raise AssertionError(f"no subcommand in {command}")


def test_compose_names_only_our_image_and_official_ones() -> None:
    services = compose()["services"]
    assert {"postgres", "caddy", "riverside", "hillside", "lakeside"} <= set(services)
    for name, service in services.items():
        image = service["image"]
        if "build" in service:
            assert image == OUR_IMAGE, name
            assert service["build"]["dockerfile"] == "deploy/Dockerfile", name
            assert (DEPLOY / service["build"]["context"] / "deploy" / "Dockerfile").is_file()
        else:
            repository, _, tag = image.partition(":")
            assert repository in OFFICIAL_IMAGES and tag, f"{name}: {image}"


def test_compose_runs_only_commands_the_cli_has() -> None:
    known = subcommands()
    parser = build_parser()
    ran = set()
    for name, service in compose()["services"].items():
        if "build" not in service:
            continue
        command = service.get("command", ["serve", "--data", "/data", "--host", "0.0.0.0"])
        assert subcommand_of(command) in known, name
        parser.parse_args(command)  # exits (SystemExit) on an option the CLI does not have
        ran.add(subcommand_of(command))
    assert ran == {"serve", "worker"}


def test_every_file_compose_mounts_exists() -> None:
    for name, service in compose()["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":", 1)[0]
            if source.startswith("."):
                assert (DEPLOY / source).is_file(), f"{name}: {source}"


def test_the_image_installs_the_wheel_the_way_ci_does() -> None:
    """Both build a wheel with `python -m build --wheel --outdir DIR .` and install
    exactly that wheel with `python -m pip install DIR/*.whl` into a fresh venv."""
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    ci = (ROOT / ".ci" / "run").read_text()
    build = re.compile(r"-m build --wheel --outdir (\S+) \.")
    install = re.compile(r"-m pip install (?:--quiet )?(\S+)/\*\.whl")
    for text in (dockerfile, ci):
        built = build.search(text)
        installed = install.search(text)
        assert built and installed, text
        assert built.group(1) == installed.group(1)
        assert "python -m venv" in text or "python3 -m venv" in text
    assert "USER commons" in dockerfile


def test_systemd_units_start_commands_the_cli_has() -> None:
    known = subcommands()
    units = sorted(DEPLOY.glob("*.service"))
    assert {unit.name for unit in units} >= {"commons-node.service", "commons-node-worker.service"}
    for unit in units:
        for line in unit.read_text().splitlines():
            if line.startswith(("ExecStart=", "ExecStartPre=")):
                words = line.split("=", 1)[1].split()
                assert words[0].endswith("/commons-node"), line
                assert subcommand_of(words[1:]) in known, line
                build_parser().parse_args(words[1:])
