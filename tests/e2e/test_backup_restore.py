"""`commons-node backup` of a serving node, and `restore` into a node that works."""

from __future__ import annotations

import asyncio
import tarfile
from pathlib import Path

import aiohttp

from tests.e2e.conftest import Cluster, steward
from tests.support.processes import cli, serve_node


async def test_a_backup_taken_while_serving_restores_into_a_working_node(
    cluster: Cluster, http: aiohttp.ClientSession, tmp_path: Path
) -> None:
    node = cluster.start("river")
    client = await steward(node, http)
    titles = {f"Drill {n}" for n in range(5)} | {"Private ladder"}
    for title in sorted(titles):
        visibility = "community" if title.startswith("Private") else "public"
        listing = {"kind": "offer", "title": title, "visibility": visibility}
        await client.ok("POST", "/api/v1/listings", 201, json=listing)

    archive = tmp_path / "river.backup"
    # Taken while the node serves and is written to.
    writing = asyncio.gather(
        *(
            client.ok("POST", "/api/v1/listings", 201, json={"kind": "need", "title": f"Late {n}"})
            for n in range(5)
        )
    )
    made = await asyncio.to_thread(cli, "backup", "--data", str(node.data), "--out", str(archive))
    await writing
    assert made.returncode == 0, made.stderr
    assert archive.stat().st_mode & 0o077 == 0  # it holds the community's private key
    with tarfile.open(archive) as opened:
        assert sorted(opened.getnames()) == ["commons.db", "config.toml"]

    again = await asyncio.to_thread(cli, "backup", "--data", str(node.data), "--out", str(archive))
    assert again.returncode == 1 and "--force" in again.stderr

    # Restoring over a running node is refused, with or without --force.
    refused = await asyncio.to_thread(
        cli, "restore", "--data", str(node.data), "--from", str(archive), "--force"
    )
    assert refused.returncode == 1 and "running" in refused.stderr
    cluster.stop("river")

    elsewhere = tmp_path / "restored"
    restored = await asyncio.to_thread(
        cli, "restore", "--data", str(elsewhere), "--from", str(archive)
    )
    assert restored.returncode == 0, restored.stderr
    overwrite = await asyncio.to_thread(
        cli, "restore", "--data", str(elsewhere), "--from", str(archive)
    )
    assert overwrite.returncode == 1 and "--force" in overwrite.stderr

    revived = serve_node(elsewhere, node.base_url)
    try:
        client = await steward(revived, http)
        found = await client.titles()
        assert titles <= found  # everything from before the backup, private ones included
        assert {t for t in found if t.startswith("Late")} <= {f"Late {n}" for n in range(5)}
        await client.ok("POST", "/api/v1/listings", 201, json={"kind": "offer", "title": "New"})
        status, actor = await client.call(
            "GET", "/c/river", headers={"Accept": "application/activity+json"}
        )
        assert status == 200 and actor["id"] == f"{node.base_url}/c/river"
    finally:
        revived.stop()


async def test_a_backup_of_a_postgresql_node_says_to_use_pg_dump(tmp_path: Path) -> None:
    data = tmp_path / "pg-node"
    data.mkdir()
    (data / "config.toml").write_text(
        'base_url = "https://commons.example"\nslug = "c"\nname = "C"\n'
        'database_url = "postgresql+asyncpg://commons:hunter2-secret@db.example/commons"\n'
        'secret_key = "0123456789abcdef0123"\n'
    )
    result = await asyncio.to_thread(
        cli, "backup", "--data", str(data), "--out", str(tmp_path / "x")
    )
    assert result.returncode == 1
    assert "pg_dump" in result.stderr
    assert "hunter2-secret" not in result.stderr
    assert not (tmp_path / "x").exists()
