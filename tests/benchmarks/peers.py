"""Fake peer inboxes for the delivery benchmarks, run in a process of their own.

`python -m tests.benchmarks.peers --inboxes 200 --slow 1 --delay-ms 50` serves
that many inboxes on 127.0.0.1, each on its own port (so each is a host of its
own to the node), the first `--slow` of them answering `202` only after the
delay, the rest at once. They read the body and do nothing else: verifying
signatures would spend the peers' CPU, on a machine the node shares. A
control port takes `POST /expect?count=N` (forget earlier arrivals, wait for
N) and `GET /wait` (answers once N have arrived: each arrival's port and
`time.monotonic()`, a clock every process on the machine shares). On start
it prints one JSON line: `{"control": port, "inboxes": [port, ...]}`.

`PeerProcess` starts one from a benchmark and talks to its control port.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parents[2]


class _Peers:
    def __init__(self, delays: dict[int, float]) -> None:
        self.delays = delays
        self.arrivals: list[tuple[int, float]] = []
        self.expected = 0
        self.done = asyncio.Event()

    async def inbox(self, request: web.Request) -> web.Response:
        await request.read()
        port = request.transport.get_extra_info("sockname")[1] if request.transport else 0
        delay = self.delays.get(port)
        if delay:
            await asyncio.sleep(delay)
        self.arrivals.append((port, time.monotonic()))
        if self.expected and len(self.arrivals) >= self.expected:
            self.done.set()
        return web.Response(status=202)

    async def expect(self, request: web.Request) -> web.Response:
        self.arrivals = []
        self.expected = int(request.query["count"])
        self.done = asyncio.Event()
        return web.json_response({"expected": self.expected})

    async def wait(self, request: web.Request) -> web.Response:
        await asyncio.wait_for(self.done.wait(), float(request.query.get("timeout", "600")))
        return web.json_response({"arrivals": self.arrivals})


async def _serve(inboxes: int, slow: int, delay: float) -> None:
    peers = _Peers({})
    inbox_app = web.Application()
    inbox_app.router.add_post("/{tail:.*}", peers.inbox)
    runner = web.AppRunner(inbox_app, access_log=None)
    await runner.setup()
    ports = []
    for n in range(inboxes):
        site = web.TCPSite(runner, "127.0.0.1", 0, backlog=1024)
        await site.start()
        server = site._server
        assert server is not None
        port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        ports.append(port)
        if n < slow:
            peers.delays[port] = delay
    control_app = web.Application()
    control_app.router.add_post("/expect", peers.expect)
    control_app.router.add_get("/wait", peers.wait)
    control = web.AppRunner(control_app, access_log=None)
    await control.setup()
    site = web.TCPSite(control, "127.0.0.1", 0)
    await site.start()
    assert site._server is not None
    control_port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    print(json.dumps({"control": control_port, "inboxes": ports}), flush=True)
    await asyncio.Event().wait()


class PeerProcess:
    """The peers' process, seen from a benchmark."""

    def __init__(self, inboxes: int, *, slow: int = 0, delay_ms: float = 0.0) -> None:
        command = [sys.executable, "-m", "tests.benchmarks.peers", "--inboxes", str(inboxes)]
        command += ["--slow", str(slow), "--delay-ms", str(delay_ms)]
        self.process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, text=True)
        assert self.process.stdout is not None
        started: dict[str, Any] = json.loads(self.process.stdout.readline())
        self.control = f"http://127.0.0.1:{started['control']}"
        self.ports: list[int] = started["inboxes"]

    def inbox(self, n: int, path: str = "/inbox") -> str:
        return f"http://127.0.0.1:{self.ports[n]}{path}"

    async def expect(self, http: aiohttp.ClientSession, count: int) -> None:
        async with http.post(f"{self.control}/expect", params={"count": count}) as resp:
            resp.raise_for_status()

    async def arrivals(self, http: aiohttp.ClientSession) -> list[tuple[int, float]]:
        """Once all that were expected have arrived: (port, monotonic time) of each."""
        timeout = aiohttp.ClientTimeout(total=900)
        async with http.get(f"{self.control}/wait", timeout=timeout) as resp:
            resp.raise_for_status()
            return [(port, at) for port, at in (await resp.json())["arrivals"]]

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--inboxes", type=int, default=1)
    parser.add_argument("--slow", type=int, default=0)
    parser.add_argument("--delay-ms", type=float, default=0.0)
    args = parser.parse_args()
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.inboxes, args.slow, args.delay_ms / 1000))


if __name__ == "__main__":
    main()
