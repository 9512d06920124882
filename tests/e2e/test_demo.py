"""`commons-node demo`: federated nodes with sample data, reused on restart, stopped cleanly.

The demo runs as a newcomer runs it (a subprocess of the real command), with a
small `--scale` so the test is quick; the data's shape is the same as the full
demo's.
"""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.support.api import ApiClient, eventually
from tests.support.processes import free_port_run

pytestmark = pytest.mark.e2e

SCALE = "0.25"
NODES = 4  # three neighbours and the far one
STARTUP_SECONDS = 120


@dataclass
class Demo:
    data: Path
    base: int
    out: Path
    process: subprocess.Popen[bytes]

    def output(self) -> str:
        return self.out.read_text()

    def announced(self) -> dict[str, Any]:
        """demo.json, once the demo printed that it is ready."""
        deadline = time.monotonic() + STARTUP_SECONDS
        while "Press Ctrl+C" not in self.output():
            assert self.process.poll() is None, self.output()
            assert time.monotonic() < deadline, self.output()
            time.sleep(0.2)
        return dict(json.loads((self.data / "demo.json").read_text()))

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=30)


def start_demo(data: Path, base: int, out: Path, *extra: str) -> Demo:
    command = [sys.executable, "-m", "node.cli", "demo", "--nodes", "3"]
    command += ["--base-port", str(base), "--data", str(data), "--scale", SCALE, *extra]
    with out.open("w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    return Demo(data, base, out, process)


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    root = tmp_path_factory.mktemp("demo")
    running = start_demo(root / "demo", free_port_run(NODES), root / "first.out")
    try:
        running.announced()
        yield running
    finally:
        code = running.stop()
    assert code == 0, running.output()


def node(demo: Demo, slug: str) -> dict[str, Any]:
    nodes = json.loads((demo.data / "demo.json").read_text())["nodes"]
    return next(n for n in nodes if n["handle"].startswith(slug + "@"))


async def signed_in(http: aiohttp.ClientSession, entry: dict[str, Any], role: str) -> ApiClient:
    login = entry[role]
    return await ApiClient(entry["base_url"], http).login(login["username"], login["password"])


async def test_demo_prints_every_node_and_login_and_names_its_log(demo: Demo) -> None:
    nodes = json.loads((demo.data / "demo.json").read_text())["nodes"]
    assert [n["base_url"] for n in nodes] == [
        f"http://127.0.0.1:{demo.base + i}" for i in range(NODES)
    ]
    output = demo.output()
    for entry in nodes:
        assert entry["base_url"] in output
        assert f"{entry['member']['username']} / {entry['member']['password']}" in output
    log_path = demo.data.resolve() / "demo.log"
    assert f"Access log and errors: {log_path}" in output
    assert "GET /" in log_path.read_text()  # the access log went to the file, not the terminal
    async with aiohttp.ClientSession() as http:
        for entry in nodes:
            async with http.get(entry["base_url"] + "/healthz") as response:
                assert response.status == 200


async def test_a_member_sees_partner_and_public_listings_of_the_other_nodes(demo: Demo) -> None:
    async with aiohttp.ClientSession() as http:
        riverside = await signed_in(http, node(demo, "riverside"), "member")
        items = await riverside.all_items("/api/v1/discovery/browse")
        origins = {item["origin"] for item in items}
        assert origins == {"local", "partner", "public"}
        elsewhere = [item for item in items if item["origin"] != "local"]
        assert {item["community"]["handle"].split("@")[0] for item in elsewhere} == {
            "hillside",
            "lakeside",
            "clydeside",
        }
        partner = [item for item in items if item["origin"] == "partner"]
        assert {item["community"]["handle"].split("@")[0] for item in partner} == {"hillside"}
        assert all(item["visibility"] != "community" for item in elsewhere)
        # Lakeside is no partner (yet): it sees public listings only.
        lakeside = await signed_in(http, node(demo, "lakeside"), "member")
        seen = {item["origin"] for item in await lakeside.all_items("/api/v1/discovery/browse")}
        assert seen == {"local", "public"}


async def test_photos_of_the_other_nodes_are_served_by_the_members_own_node(demo: Demo) -> None:
    entry = node(demo, "riverside")
    async with aiohttp.ClientSession() as http:
        riverside = await signed_in(http, entry, "member")
        deadline = time.monotonic() + 90
        while True:
            items = await riverside.all_items("/api/v1/discovery/browse")
            shown = [
                image for item in items if item["origin"] != "local" for image in item["images"]
            ]
            if shown or time.monotonic() > deadline:
                break
            await asyncio.sleep(1)
        assert shown, "some offers of the other nodes carry their photos"
        for image in shown:
            assert image["url"].startswith(entry["base_url"] + "/"), image
            assert image["description"].startswith("A drawing of")
            bearer = {"Authorization": f"Bearer {riverside.token}"}
            async with http.get(image["thumbnail_url"], headers=bearer) as response:
                assert response.status == 200
                assert response.content_type in ("image/jpeg", "image/png")


async def test_a_distance_filter_leaves_out_the_far_community(demo: Demo) -> None:
    async with aiohttp.ClientSession() as http:
        member = await signed_in(http, node(demo, "hillside"), "member")
        near = await member.all_items(
            "/api/v1/discovery/browse", "lat=51.51&lon=-0.13&radius_km=40"
        )
        communities = {item["community"]["handle"].split("@")[0] for item in near}
        assert "clydeside" not in communities
        assert {"riverside", "lakeside"} <= communities


async def test_the_third_communitys_steward_has_a_proposal_waiting(demo: Demo) -> None:
    async with aiohttp.ClientSession() as http:
        steward = await signed_in(http, node(demo, "lakeside"), "steward")
        body = await steward.ok("GET", "/api/v1/partnerships")
        pending = [p for p in body["items"] if p["state"] == "pending"]
        assert [p["partner"]["handle"].split("@")[0] for p in pending] == ["riverside"]
        assert pending[0]["initiated_by"] == "them"


async def test_flows_count_months_of_exchanges_inside_and_across_communities(demo: Demo) -> None:
    async with aiohttp.ClientSession() as http:
        steward = await signed_in(http, node(demo, "riverside"), "steward")
        flows = await steward.ok("GET", "/api/v1/metrics/flows")
        assert flows["internal"]["count"] > 0 and flows["internal"]["hours"] > 0
        assert flows["outgoing"]["count"] > 0 and flows["incoming"]["count"] > 0
        assert 0 < flows["leakage_ratio"] < 1
        names = {row["name"] for row in flows["by_community"]}
        assert "Hillside Mutual Aid" in names
        # The history reaches back months, not just to today.
        old = await steward.ok("GET", "/api/v1/metrics/flows?until=2020-01-01T00:00:00Z")
        assert old["internal"]["count"] == 0
        months_ago = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 60 * 86400))
        earlier = await steward.ok("GET", f"/api/v1/metrics/flows?until={months_ago}")
        assert earlier["internal"]["count"] > 0
        # Each side of a cross-community exchange keeps the same record.
        hillside = await signed_in(http, node(demo, "hillside"), "steward")
        theirs = await hillside.ok("GET", "/api/v1/metrics/flows")
        ours_to_them = next(r for r in flows["by_community"] if r["name"] == "Hillside Mutual Aid")
        them_from_us = next(
            r for r in theirs["by_community"] if r["name"] == "Riverside Tool Library"
        )
        assert ours_to_them["outgoing_count"] == them_from_us["incoming_count"]


async def test_the_member_login_has_exchanges_to_answer(demo: Demo) -> None:
    async with aiohttp.ClientSession() as http:
        member = await signed_in(http, node(demo, "riverside"), "member")
        mine = await member.all_items("/api/v1/exchanges")
        assert any(x["status"] == "requested" for x in mine)


async def test_restart_reuses_the_data_and_fresh_starts_over(demo: Demo, tmp_path: Path) -> None:
    before = json.loads((demo.data / "demo.json").read_text())
    # A second demo on the same ports is refused before it touches the running one's data.
    clash = start_demo(demo.data, demo.base, tmp_path / "clash.out", "--fresh")
    assert clash.process.wait(timeout=60) == 1
    assert "already in use" in clash.output()
    assert json.loads((demo.data / "demo.json").read_text()) == before
    async with aiohttp.ClientSession() as http:
        member = await signed_in(http, node(demo, "riverside"), "member")
        listings = len(await member.all_items("/api/v1/discovery/browse"))
    assert demo.stop() == 0

    again = start_demo(demo.data, demo.base, tmp_path / "again.out")
    try:
        assert again.announced() == before
        assert "Creating the sample communities" not in again.output()
        async with aiohttp.ClientSession() as http:
            member = await signed_in(http, node(again, "riverside"), "member")
            assert len(await member.all_items("/api/v1/discovery/browse")) == listings
    finally:
        assert again.stop() == 0, again.output()

    # Fresh, and smaller to be quick: one neighbour and the far community.
    fresh = start_demo(demo.data, demo.base, tmp_path / "fresh.out", "--fresh", "--nodes", "1")
    try:
        after = fresh.announced()
        assert "Creating the sample communities" in fresh.output()
        assert [n["handle"].split("@")[0] for n in after["nodes"]] == ["riverside", "clydeside"]
        assert after["nodes"][0]["member"]["password"] != before["nodes"][0]["member"]["password"]
        assert not (demo.data / "hillside").exists()

        async def federated_again() -> None:
            async with aiohttp.ClientSession() as http:
                member = await signed_in(http, node(fresh, "riverside"), "member")
                items = await member.all_items("/api/v1/discovery/browse")
                assert {item["origin"] for item in items} == {"local", "public"}

        await eventually(federated_again, within=30)
    finally:
        assert fresh.stop() == 0, fresh.output()
