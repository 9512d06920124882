"""A mirrored listing's photos: recorded from its Image attachments, fetched by a job
through the address guard with type and size limits, served from our own URL, and
deleted with the attachment. On SQLite and PostgreSQL, against a loopback origin."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from sqlalchemy import select

from federation.vocab import parse_note
from node.app import init_app
from node.appkeys import CONFIG, HTTP, SESSIONS
from node.config import write_config
from node.media.store import media_root
from node.protocol.context import FederationContext
from node.protocol.jobs import JobFailed, JobRun
from node.protocol.mirror import mirror_note
from node.protocol.remote_media import FETCH_IMAGE, run_fetch_image
from storage.models import Community, Job, ListingImage
from storage.repositories.remote_listings import RemoteListingRepository
from tests.conftest import NodeHandle, create_node_community
from tests.support.images import has_metadata, phone_photo
from tests.support.inprocess import serving
from tests.support.processes import free_port

PUBLIC = "https://www.w3.org/ns/activitystreams#Public"


def origin_app(served: list[str]) -> web.Application:
    async def good(request: web.Request) -> web.Response:
        served.append(request.path)
        return web.Response(body=phone_photo(800, 600), content_type="image/jpeg")

    async def text(_request: web.Request) -> web.Response:
        return web.Response(text="<html>not an image</html>", content_type="text/html")

    async def huge(_request: web.Request) -> web.Response:
        return web.Response(
            body=b"\xff\xd8" + b"\0" * (11 * 1024 * 1024), content_type="image/jpeg"
        )

    app = web.Application()
    app.router.add_get("/media/good", good)
    app.router.add_get("/media/text", text)
    app.router.add_get("/media/huge", huge)
    return app


@pytest.fixture
async def node(tmp_path: Path, database_url: str, aiohttp_client: Any) -> NodeHandle:
    """The usual test node, with no background workers: the test steps the fetch job."""
    data = tmp_path / "node"
    data.mkdir()
    config = write_config(
        data,
        base_url="http://tools.test",
        slug="tools",
        name="Tool Library",
        database_url=database_url,
        allow_private_addresses=True,
    ).model_copy(update={"run_workers": False})
    await create_node_community(config)
    return NodeHandle(config=config, client=await aiohttp_client(init_app(config)))


@pytest.fixture
async def origin() -> AsyncIterator[tuple[str, list[str]]]:
    port = free_port()
    served: list[str] = []
    async with serving(origin_app(served), port):
        yield f"http://127.0.0.1:{port}", served


def note(base: str, attachments: list[Any], updated: str) -> Any:
    actor = f"{base}/c/far"
    return parse_note(
        {
            "id": f"{actor}/listings/1",
            "type": "Note",
            "attributedTo": actor,
            "name": "Canoe",
            "content": "<p>Canoe</p>",
            "to": [PUBLIC],
            "published": "2026-01-01T00:00:00Z",
            "updated": updated,
            "kind": "offer",
            "visibility": "public",
            "attachment": attachments,
        }
    )


def image(url: str, name: str = "") -> dict[str, Any]:
    return {"type": "Image", "url": url, "mediaType": "image/jpeg", "name": name}


async def test_remote_photos_are_fetched_once_and_served_from_our_own_url(
    node: NodeHandle, origin: tuple[str, list[str]]
) -> None:
    base, served = origin
    app = node.client.app
    ctx = FederationContext(sessions=app[SESSIONS], http=app[HTTP], config=app[CONFIG])
    attachments = [
        image(f"{base}/media/good", "A green canoe"),
        image("http://elsewhere.test/media/x.jpg", "on another server"),
        {"type": "Video", "url": f"{base}/media/clip", "mediaType": "video/mp4"},
        image(f"{base}/media/text"),
        image(f"{base}/media/huge"),
    ]
    async with ctx.sessions() as session:
        far = Community(
            ap_id=f"{base}/c/far", slug="far", host=base.split("//")[1], name="Far", base_url=base
        )
        session.add(far)
        await session.flush()
        await mirror_note(session, note(base, attachments, "2026-01-01T00:00:00Z"), far, "public")
        await session.commit()
        rows = list((await session.execute(select(ListingImage))).scalars())
        jobs = list((await session.execute(select(Job).where(Job.kind == FETCH_IMAGE))).scalars())
    assert sorted(r.source_url or "" for r in rows) == sorted(
        f"{base}/media/{name}" for name in ("good", "text", "huge")
    )
    assert len(jobs) == 3

    handle = run_fetch_image(ctx)
    failed = []
    for row in rows:
        try:
            await handle(JobRun(id="j", kind=FETCH_IMAGE, payload={"image_id": row.id}, attempts=1))
        except JobFailed as exc:
            failed.append(str(exc))
    assert len(failed) == 2
    files = sorted(media_root(node.config).iterdir())
    assert len(files) == 2  # the good one, two sizes
    assert all(not has_metadata(path.read_bytes()) for path in files)

    headers = await node.login("ada")
    body = await (
        await node.client.get("/api/v1/listings?include_public=true", headers=headers)
    ).json()
    [listing] = body["items"]
    [shown] = listing["images"]
    assert shown["description"] == "A green canoe"
    assert shown["url"].startswith("http://tools.test/media/")
    assert base not in str(listing["images"])
    fetched = await node.client.get(shown["url"][len("http://tools.test") :], headers=headers)
    assert fetched.status == 200 and fetched.content_type == "image/jpeg"
    assert (await node.client.get(shown["url"][len("http://tools.test") :])).status == 404

    await handle(JobRun(id="j", kind=FETCH_IMAGE, payload={"image_id": rows[0].id}, attempts=2))
    assert served == ["/media/good"]  # fetched once

    async with ctx.sessions() as session:
        far = (await session.execute(select(Community).where(Community.slug == "far"))).scalar_one()
        await mirror_note(session, note(base, [], "2026-01-02T00:00:00Z"), far, "public")
        await session.commit()
        assert list((await session.execute(select(ListingImage))).scalars()) == []
    assert list(media_root(node.config).iterdir()) == []


async def test_one_origin_cannot_make_us_keep_more_than_its_share(
    node: NodeHandle, origin: tuple[str, list[str]]
) -> None:
    base, _served = origin
    sessions = node.client.app[SESSIONS]
    async with sessions() as session:
        far = Community(
            ap_id=f"{base}/c/far", slug="far", host=base.split("//")[1], name="Far", base_url=base
        )
        session.add(far)
        await session.flush()
        many = [image(f"{base}/media/{n}.jpg") for n in range(6)]
        first = note(base, many, "2026-01-01T00:00:00Z")
        await mirror_note(session, first, far, "public", per_source_images=5)
        second = parse_note({**_raw(base, many), "id": f"{base}/c/far/listings/2", "name": "Kayak"})
        await mirror_note(session, second, far, "public", per_source_images=5)
        await session.commit()
        rows = list((await session.execute(select(ListingImage))).scalars())
    assert len(rows) == 5  # four on the first listing (the most one may have), one more


def _raw(base: str, attachments: list[Any]) -> dict[str, Any]:
    actor = f"{base}/c/far"
    return {
        "id": f"{actor}/listings/1",
        "type": "Note",
        "attributedTo": actor,
        "name": "Canoe",
        "content": "<p>Canoe</p>",
        "to": [PUBLIC],
        "published": "2026-01-01T00:00:00Z",
        "kind": "offer",
        "visibility": "public",
        "attachment": attachments,
    }


async def test_a_listing_its_source_stopped_listing_goes_with_its_photo_files(
    node: NodeHandle, origin: tuple[str, list[str]]
) -> None:
    """A complete sync drops what the source no longer lists (`remove_many`, in chunks):
    the photos' files go too, not only the rows."""
    base, _served = origin
    app = node.client.app
    ctx = FederationContext(sessions=app[SESSIONS], http=app[HTTP], config=app[CONFIG])
    listed = note(base, [image(f"{base}/media/good")], "2026-01-01T00:00:00Z")
    async with ctx.sessions() as session:
        far = Community(
            ap_id=f"{base}/c/far", slug="far", host=base.split("//")[1], name="Far", base_url=base
        )
        session.add(far)
        await session.flush()
        await mirror_note(session, listed, far, "public")
        await session.commit()
        [row] = list((await session.execute(select(ListingImage))).scalars())
    await run_fetch_image(ctx)(
        JobRun(id="j", kind=FETCH_IMAGE, payload={"image_id": row.id}, attempts=1)
    )
    assert len(list(media_root(node.config).iterdir())) == 2

    async with ctx.sessions() as session:
        assert await RemoteListingRepository(session).remove_many([listed.id]) == 1
        await session.commit()
        assert list((await session.execute(select(ListingImage))).scalars()) == []
    assert list(media_root(node.config).iterdir()) == []
