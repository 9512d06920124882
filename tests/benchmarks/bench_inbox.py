"""The inbox under load: a real `commons-node serve` against bare aiohttp, in one run.

Run on demand: `python -m tests.benchmarks.bench_inbox [--quick] [--database-url URL]`.

What it does, on a two-core machine:
- starts a real node on core 0 (SQLite in a temporary folder, or a throw-away
  PostgreSQL database created next to the URL's), following 50 remote
  communities that a fake server in this process serves;
- signs `--activities` public `Create`s from those 50 actors ahead of time
  (on every core, before anything is timed);
- sends them with wrk (Debian's `wrk`, one thread, 32 connections, pinned to
  core 1), every request once, and reads back the rate and the p99 latency;
- meanwhile times how long the node takes to handle (mirror) all of them,
  counting from the first request to the last row mirrored;
- sends the same requests again: all duplicates;
- sends the same requests to a bare aiohttp server on core 0 that reads the
  body and answers 202: the baseline for both.
It prints each figure beside its baseline and the ratio, and records them in
`bench-results.json`. Never part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
from aiohttp import web
from sqlalchemy import func, insert, select

from federation.contexts import default_context
from federation.keys import generate_key_pair
from federation.signatures import sign_request
from storage.engine import create_engine
from storage.models import Community, Follow, InboxEntry, RemoteListing
from tests.benchmarks.results import record_results
from tests.benchmarks.throwaway import throwaway_database
from tests.support.inprocess import serving
from tests.support.processes import free_port, init_node, wait_until_up

ACTORS = 50
CONNECTIONS = 32
PUBLIC = "https://www.w3.org/ns/activitystreams#Public"
ACTIVITY_JSON = "application/activity+json"
NODE_CORE, LOAD_CORE = "0", "1"
WRK_SCRIPT = Path(__file__).with_name("inbox_requests.lua")


@dataclass(frozen=True)
class Remote:
    base: str
    private_key: str
    public_key: str

    def actor(self, n: int) -> str:
        return f"{self.base}/c/group{n}"

    def document(self, n: int) -> dict[str, Any]:
        actor = self.actor(n)
        return {
            "@context": default_context(),
            "id": actor,
            "type": "Group",
            "preferredUsername": f"group{n}",
            "name": f"Group {n}",
            "inbox": f"{actor}/inbox",
            "outbox": f"{actor}/outbox",
            "followers": f"{actor}/followers",
            "endpoints": {"sharedInbox": f"{self.base}/inbox"},
            "publicKey": {
                "id": f"{actor}#main-key",
                "owner": actor,
                "publicKeyPem": self.public_key,
            },
        }

    def app(self) -> web.Application:
        async def actor(request: web.Request) -> web.Response:
            n = int(request.match_info["n"])
            return web.Response(body=orjson.dumps(self.document(n)), content_type=ACTIVITY_JSON)

        async def empty(request: web.Request) -> web.Response:
            document = {"type": "OrderedCollection", "orderedItems": []}
            return web.Response(body=orjson.dumps(document), content_type=ACTIVITY_JSON)

        async def inbox(_request: web.Request) -> web.Response:
            return web.Response(status=202)

        app = web.Application()
        app.router.add_get("/c/group{n:\\d+}", actor)
        app.router.add_get("/c/group{n:\\d+}/{collection}", empty)
        app.router.add_post("/c/group{n:\\d+}/inbox", inbox)
        app.router.add_post("/inbox", inbox)
        return app


def create_activity(remote: Remote, n: int, run: str) -> dict[str, Any]:
    actor = remote.actor(n % ACTORS)
    note = f"{actor}/listings/{run}-{n}"
    return {
        "@context": default_context(),
        "id": f"{note}/create",
        "type": "Create",
        "actor": actor,
        "to": [PUBLIC],
        "object": {
            "id": note,
            "type": "Note",
            "attributedTo": actor,
            "name": f"Cordless drill number {n}",
            "content": f"<p>A drill with two batteries, offer {n}.</p>",
            "to": [PUBLIC],
            "cc": [f"{actor}/followers"],
            "published": "2026-11-01T00:00:00Z",
            "kind": "offer",
            "category": "tools",
            "status": "active",
            "visibility": "public",
        },
    }


def _signed_request(args: tuple[dict[str, Any], str, str]) -> bytes:
    """One raw HTTP/1.1 request, signed as the activity's actor would sign it."""
    activity, inbox, private_key = args
    body = orjson.dumps(activity)
    headers = sign_request(
        "POST",
        inbox,
        {"Content-Type": ACTIVITY_JSON},
        body,
        f"{activity['actor']}#main-key",
        private_key,
    )
    path = "/" + inbox.split("/", 3)[3]
    lines = [f"POST {path} HTTP/1.1"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def sign_all(remote: Remote, inbox: str, count: int) -> list[bytes]:
    run = uuid.uuid4().hex[:8]
    jobs = [(create_activity(remote, n, run), inbox, remote.private_key) for n in range(count)]
    with ProcessPoolExecutor(os.cpu_count() or 2) as pool:
        return list(pool.map(_signed_request, jobs, chunksize=200))


def write_requests(requests: list[bytes], path: Path) -> None:
    """Length-prefixed records, which the wrk script reads back. The first comes
    twice: wrk asks the script for one request up front to check it, unsent."""
    with path.open("wb") as out:
        for raw in [requests[0], *requests]:
            out.write(f"{len(raw)}\n".encode())
            out.write(raw)


@dataclass(frozen=True)
class LoadResult:
    requests: int
    rate: float
    p99_ms: float
    non_2xx: int


async def run_wrk(url: str, requests_file: Path, count: int) -> LoadResult:
    """Send every request in the file once over CONNECTIONS connections, from core 1,
    timed from the first request made to the last response received."""
    process = await asyncio.create_subprocess_exec(
        "taskset",
        "-c",
        LOAD_CORE,
        "wrk",
        "-t1",
        f"-c{CONNECTIONS}",
        "-d600s",
        "--timeout",
        "10s",
        "-s",
        str(WRK_SCRIPT),
        url,
        "--",
        str(requests_file),
        str(count),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None
    first = last = 0.0
    output: list[str] = []
    while line := (await process.stdout.readline()).decode():
        output.append(line)
        if line.startswith("FIRST"):
            first = time.monotonic()
        elif line.startswith("LAST"):
            last = time.monotonic()
            process.send_signal(signal.SIGINT)
        elif line.startswith("RESULT "):
            data = orjson.loads(line[len("RESULT ") :])
    await process.wait()
    if not last or "data" not in locals():
        raise RuntimeError(f"wrk gave no result:\n{''.join(output)}")
    return LoadResult(count, count / (last - first), data["p99_us"] / 1000, data["non_2xx"])


BARE_SERVER = """
import sys
from aiohttp import web

async def inbox(request):
    await request.read()
    return web.Response(status=202)

app = web.Application()
app.router.add_post("/inbox", inbox)
web.run_app(app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""


def start_bare(port: int) -> subprocess.Popen[bytes]:
    process = subprocess.Popen(
        ["taskset", "-c", NODE_CORE, sys.executable, "-c", BARE_SERVER, str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_for_port(port)
    return process


def wait_for_port(port: int, deadline: float = 30) -> None:
    import socket

    end = time.monotonic() + deadline
    while time.monotonic() < end:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {port}")


def start_node(data: Path, base_url: str) -> subprocess.Popen[bytes]:
    log = (data / "serve.log").open("wb")
    command = [sys.executable, "-m", "node.cli", "serve", "--data", str(data)]
    process = subprocess.Popen(
        ["taskset", "-c", NODE_CORE, *command],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    wait_until_up(f"{base_url}/healthz", process)  # type: ignore[arg-type]
    return process


def profile(pid: int) -> subprocess.Popen[bytes] | None:
    """py-spy on the node while it takes and handles a round, when BENCH_PROFILE names
    the flame graph to write (`pip install py-spy`; a `.txt` name: collapsed stacks)."""
    target = os.environ.get("BENCH_PROFILE")
    if not target:
        return None
    raw = ["--format", "raw"] if target.endswith(".txt") else []  # collapsed stacks
    return subprocess.Popen(
        ["py-spy", "record", "--pid", str(pid), "--rate", "200", *raw, "--output", target],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()


async def follow_remotes(node_db: str, remote: Remote) -> None:
    engine = create_engine(node_db)
    async with engine.begin() as conn:
        local_id = (await conn.execute(select(Community.id).where(Community.is_local))).scalar_one()
        await conn.execute(
            insert(Follow),
            [
                {
                    "direction": "out",
                    "local_community_id": local_id,
                    "remote_actor": remote.actor(n),
                    "follow_activity_id": f"{remote.actor(n)}/follows/bench",
                    "state": "active",
                }
                for n in range(ACTORS)
            ],
        )
    await engine.dispose()


async def wait_until_handled(
    node_db: str, expected_mirrored: int, deadline: float
) -> tuple[float, int]:
    """Seconds until nothing is left to handle and `expected_mirrored` rows are mirrored,
    and the most activities seen waiting to be handled meanwhile (the backlog)."""
    engine = create_engine(node_db)
    start = time.monotonic()
    most = 0
    try:
        while time.monotonic() - start < deadline:
            async with engine.connect() as conn:
                waiting = (
                    await conn.execute(select(func.count()).where(InboxEntry.state == "received"))
                ).scalar_one()
                mirrored = (await conn.execute(select(func.count(RemoteListing.id)))).scalar_one()
            most = max(most, waiting)
            if waiting == 0 and mirrored >= expected_mirrored:
                return time.monotonic() - start, most
            await asyncio.sleep(0.05)
    finally:
        await engine.dispose()
    raise TimeoutError(f"{expected_mirrored} activities were not handled within {deadline}s")


async def warm_up(remote: Remote, inbox: str) -> None:
    """One activity per actor, one at a time, so that every key is fetched and cached
    before the clock starts (a node fetches at most a couple of keys per host at once)."""
    run = uuid.uuid4().hex[:8]
    async with aiohttp.ClientSession() as http:
        for n in range(ACTORS):
            activity = create_activity(remote, n, f"warm-{run}")
            body = orjson.dumps(activity)
            for _ in range(50):
                headers = sign_request(
                    "POST",
                    inbox,
                    {"Content-Type": ACTIVITY_JSON},
                    body,
                    f"{activity['actor']}#main-key",
                    remote.private_key,
                )
                async with http.post(inbox, data=body, headers=headers) as response:
                    if response.status == 202:
                        break
                await asyncio.sleep(0.1)
            else:
                raise RuntimeError(f"the node would not take {activity['id']}")


async def measure(database_url: str | None, activities: int, rounds: int) -> dict[str, float]:
    """SQLite in a temporary folder, or a throw-away database beside `database_url`'s."""
    if database_url is None:
        return await _measure(None, activities, rounds)
    async with throwaway_database(database_url, "inbox") as url:
        return await _measure(url, activities, rounds)


async def _measure(database_url: str | None, activities: int, rounds: int) -> dict[str, float]:
    data = Path(tempfile.mkdtemp(prefix="bench-inbox-"))
    node_dir = data / "node"
    port = free_port()
    private_key, public_key = generate_key_pair()
    remote = Remote(f"http://127.0.0.1:{free_port()}", private_key, public_key)
    node_db = database_url or f"sqlite:///{data}/node.db"
    base_url = init_node(
        node_dir,
        slug="bench",
        name="Bench",
        port=port,
        extra=["--database-url", node_db],
    )
    with (node_dir / "config.toml").open("a") as config:
        # Every fake actor lives on one host: lift the per-host inbox rate.
        config.write("activity_rate_burst = 100000000\nactivity_rate_per_minute = 100000000\n")
        config.write(os.environ.get("BENCH_NODE_CONFIG", "").replace("\\n", "\n") + "\n")
    await follow_remotes(node_db, remote)
    results: dict[str, list[float]] = {}
    node = start_node(node_dir, base_url)
    try:
        async with serving(remote.app(), int(remote.base.rsplit(":", 1)[1])):
            inbox = f"{base_url}/inbox"
            # Warm up: every actor's key fetched and cached, one activity each.
            await warm_up(remote, inbox)
            await wait_until_handled(node_db, ACTORS, 120)
            mirrored = ACTORS
            for _ in range(rounds):
                requests = sign_all(remote, inbox, activities)
                write_requests(requests, data / "round.bin")
                profiler = profile(node.pid)
                intake_task = asyncio.create_task(run_wrk(base_url, data / "round.bin", activities))
                mirrored += activities
                handled_seconds, backlog = await wait_until_handled(node_db, mirrored, 900)
                intake = await intake_task
                if profiler is not None:
                    profiler.send_signal(signal.SIGINT)
                    profiler.wait(60)
                duplicates = await run_wrk(base_url, data / "round.bin", activities)
                stop_bare = start_bare(bare_port := free_port())
                try:
                    bare = await run_wrk(
                        f"http://127.0.0.1:{bare_port}", data / "round.bin", activities
                    )
                finally:
                    stop(stop_bare)
                assert intake.non_2xx == 0 and duplicates.non_2xx == 0, (intake, duplicates)
                for name, value in {
                    "intake_per_s": intake.rate,
                    "intake_p99_ms": intake.p99_ms,
                    "duplicates_per_s": duplicates.rate,
                    "duplicates_p99_ms": duplicates.p99_ms,
                    "bare_per_s": bare.rate,
                    "handled_per_s": activities / handled_seconds,
                    "most_waiting": backlog,
                }.items():
                    results.setdefault(name, []).append(value)
    finally:
        stop(node)
        if not os.environ.get("BENCH_KEEP"):
            shutil.rmtree(data, ignore_errors=True)
    figures = {name: statistics.median(values) for name, values in results.items()}
    figures["intake_ratio"] = figures["intake_per_s"] / figures["bare_per_s"]
    figures["duplicates_ratio"] = figures["duplicates_per_s"] / figures["bare_per_s"]
    figures["handled_to_intake"] = figures["handled_per_s"] / figures["intake_per_s"]
    return figures


def report(database: str, figures: dict[str, float]) -> None:
    print(f"inbox on {database}, {ACTORS} actors, {CONNECTIONS} connections (medians)")
    print(
        f"  new activities   {figures['intake_per_s']:8.0f}/s  "
        f"p99 {figures['intake_p99_ms']:6.1f} ms"
        f"   bare aiohttp {figures['bare_per_s']:8.0f}/s   ratio {figures['intake_ratio']:.2f}"
    )
    print(
        f"  duplicates       {figures['duplicates_per_s']:8.0f}/s  "
        f"p99 {figures['duplicates_p99_ms']:6.1f} ms"
        f"   bare aiohttp {figures['bare_per_s']:8.0f}/s   ratio {figures['duplicates_ratio']:.2f}"
    )
    print(
        f"  handled          {figures['handled_per_s']:8.0f}/s"
        f"   of the intake rate: {figures['handled_to_intake']:.2f}"
        f"   most waiting at once: {figures['most_waiting']:.0f}"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--quick", action="store_true", help="2,000 activities, one round (else a minute's worth)"
    )
    parser.add_argument("--activities", type=int)
    parser.add_argument("--rounds", type=int)
    parser.add_argument(
        "--database-url",
        default=os.environ.get("COMMONS_TEST_POSTGRES_URL"),
        help="a PostgreSQL server URL to measure on as well (a throw-away database is made)",
    )
    args = parser.parse_args(argv)
    if shutil.which("wrk") is None or shutil.which("taskset") is None:
        sys.exit("bench_inbox needs wrk and taskset (apt-get install wrk util-linux)")
    # The full run sends enough for about a minute of sustained intake at what the node
    # accepts on one core, to show whether handling keeps up and the backlog stays bounded.
    activities = args.activities or (2_000 if args.quick else 60_000)
    rounds = args.rounds or 1
    databases: list[tuple[str, str | None]] = [("sqlite", None)]
    if args.database_url:
        databases.append(("postgresql", args.database_url))
    for name, url in databases:
        figures = asyncio.run(measure(url, activities, rounds))
        report(name, figures)
        record_results({f"inbox.{name}.{key}": value for key, value in figures.items()})


if __name__ == "__main__":
    main()
