"""`commons-node demo`: three federated nodes with sample data, stopped cleanly."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
from pathlib import Path

import aiohttp
import pytest

from tests.support.api import ApiClient, eventually

pytestmark = pytest.mark.e2e


def free_port_run(count: int) -> int:
    """A base port with `count` free ports after it."""
    for base in range(20000, 60000, 97):
        try:
            sockets = []
            for port in range(base, base + count):
                sock = socket.socket()
                sockets.append(sock)
                sock.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
        finally:
            for sock in sockets:
                sock.close()
    raise RuntimeError("no free run of ports")


def start_demo(data: Path, base: int, log_path: Path) -> subprocess.Popen[bytes]:
    log = log_path.open("w")
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "node.cli",
            "demo",
            "--nodes",
            "3",
            "--base-port",
            str(base),
            "--data",
            str(data),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )


async def test_demo_starts_federated_nodes_and_stops_on_sigterm(tmp_path: Path) -> None:
    data = tmp_path / "demo"
    base = free_port_run(3)
    process = start_demo(data, base, tmp_path / "demo.log")
    try:
        async with aiohttp.ClientSession() as http:

            async def announced() -> dict[str, object]:
                assert process.poll() is None, (tmp_path / "demo.log").read_text()
                assert (data / "demo.json").exists()
                return dict(json.loads((data / "demo.json").read_text()))

            demo = await eventually(announced, within=60)
            nodes = demo["nodes"]
            assert isinstance(nodes, list)
            assert [n["base_url"] for n in nodes] == [
                f"http://127.0.0.1:{base + i}" for i in range(3)
            ]
            clients = [
                await ApiClient(node["base_url"], http).login(
                    node["member"]["username"], node["member"]["password"]
                )
                for node in nodes
            ]

            async def federated() -> None:
                origins = []
                for client in clients:
                    body = await client.ok(
                        "GET", "/api/v1/listings?include_public=true&include_partners=true"
                    )
                    origins.append(sorted({item["origin"] for item in body["items"]}))
                    assert not any(
                        "Spare key" in item["title"] and item["origin"] != "local"
                        for item in body["items"]
                    )
                assert origins == [
                    ["local", "partner", "public"],
                    ["local", "partner", "public"],
                    ["local", "public"],
                ]

            await eventually(federated, within=30)
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=30)
    assert code == 0, (tmp_path / "demo.log").read_text()
