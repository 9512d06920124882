"""Start real `commons-node` processes on 127.0.0.1 for end-to-end and browser tests."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

# Map tiles for test nodes: a closed port on loopback, so a page with a map makes its
# browser ask 127.0.0.1 for tiles and get nothing, and no request leaves the machine.
UNREACHABLE_TILES = "http://127.0.0.1:9/tiles/{z}/{x}/{y}.png"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_port_run(count: int) -> int:
    """A base port with `count` free ports after it."""
    for base in range(20000, 60000, 97):
        sockets = []
        try:
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


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "node.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


@dataclass
class RunningNode:
    base_url: str
    data: Path
    process: subprocess.Popen[str]
    log_path: Path

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 20) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            self.process.wait(timeout=timeout)
        return self.process.returncode

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


def init_node(
    data: Path,
    *,
    slug: str,
    name: str,
    port: int,
    steward: str = "steward",
    password: str = "steward-password",
    extra: Sequence[str] = (),
) -> str:
    base_url = f"http://127.0.0.1:{port}"
    result = cli(
        "init",
        "--data",
        str(data),
        "--name",
        name,
        "--slug",
        slug,
        "--base-url",
        base_url,
        "--steward",
        steward,
        "--password",
        password,
        "--allow-private-addresses",
        *extra,
    )
    assert result.returncode == 0, result.stderr
    return base_url


def wait_until_up(url: str, process: subprocess.Popen[str], deadline: float = 60) -> None:
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if process.poll() is not None:
            raise RuntimeError(f"node exited with {process.returncode} before answering")
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except urllib.error.HTTPError:
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"{url} did not answer within {deadline}s")


def serve_node(data: Path, base_url: str) -> RunningNode:
    log_path = data / "serve.log"
    log_file = log_path.open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "node.cli", "serve", "--data", str(data)],
        env={"COMMONS_MAP_TILE_URL": UNREACHABLE_TILES, **os.environ},
        stdout=log_file,
        stderr=subprocess.STDOUT,
        text=True,
    )
    node = RunningNode(base_url, data, process, log_path)
    try:
        wait_until_up(f"{base_url}/api/v1/openapi.json", process)
    except (RuntimeError, TimeoutError):
        node.stop(signal.SIGKILL)
        raise RuntimeError(node.log()) from None
    return node
