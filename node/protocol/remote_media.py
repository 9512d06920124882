"""Photos of mirrored listings: recorded when a listing arrives, fetched by a job.

A member's browser never loads a file from another node: that would tell
the other node who looks at what, and let it change what we show. So a
remote listing's `Image` attachments are recorded as rows with no file, and
a `fetch_image` job fetches each one through the address guard (type and
size limits, signed so a partner-only listing's photo is served to us),
re-encodes it as an upload would be, and stores it; pages show our copy,
and nothing until it exists. An attachment the listing no longer carries
is deleted with its files; so is every photo of a listing that goes.

Per source: only images on the listing's own host are taken (a note cannot
make us fetch from a third server), at most `MAX_PER_LISTING` a listing,
and at most `remote_images_per_source` cached for one origin community.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from federation.errors import FetchError, ObjectGone, ObjectNotFound, ResponseTooLarge
from federation.hosts import same_host
from federation.http_client import HttpLimits, get_media
from federation.vocab import Attachment
from node.media.imaging import ACCEPTED_MEDIA_TYPES, MAX_IMAGE_BYTES, ImageRefused, reencode
from node.media.store import MediaStore
from node.protocol.context import FederationContext
from node.protocol.jobs import JobFailed, JobHandler, JobRun, RetryJob, enqueue_job
from storage.models import Community, ListingImage, RemoteListing, new_id
from storage.repositories import CommunityRepository
from storage.repositories.images import ImageRepository
from storage.repositories.partnerships import PartnershipRepository

log = logging.getLogger(__name__)

FETCH_IMAGE = "fetch_image"
MAX_PER_LISTING = 4
MAX_DESCRIPTION = 500
MEDIA_LIMITS = HttpLimits(total_timeout=60.0, max_response_bytes=MAX_IMAGE_BYTES)


async def _cached_for_origin(session: AsyncSession, origin_id: int) -> int:
    result = await session.execute(
        select(func.count())
        .select_from(ListingImage)
        .join(RemoteListing, RemoteListing.id == ListingImage.remote_listing_id)
        .where(RemoteListing.origin_community_id == origin_id)
    )
    return int(result.scalar_one())


def _wanted(cached: RemoteListing, attachments: tuple[Attachment, ...]) -> list[Attachment]:
    seen: set[str] = set()
    wanted = []
    for attachment in attachments:
        if attachment.url in seen or not same_host(attachment.url, cached.ap_id):
            continue
        seen.add(attachment.url)
        wanted.append(attachment)
    return wanted[:MAX_PER_LISTING]


async def sync_remote_images(
    session: AsyncSession,
    cached: RemoteListing,
    attachments: tuple[Attachment, ...],
    per_source: int,
) -> None:
    """Make the cached listing's photos what the note carries now (caller's transaction)."""
    await session.refresh(cached, ["images"])
    wanted = _wanted(cached, attachments)
    by_url = {image.source_url: image for image in cached.images}
    keep = {attachment.url for attachment in wanted}
    repo = ImageRepository(session)
    for url, image in list(by_url.items()):
        if url not in keep:
            await repo.remove(image)
            cached.images.remove(image)
    room = per_source - await _cached_for_origin(session, cached.origin_community_id)
    for position, attachment in enumerate(wanted):
        description = " ".join((attachment.name or "").split())[:MAX_DESCRIPTION]
        known = by_url.get(attachment.url)
        if known is not None:
            known.position, known.description = position, description
            continue
        if room <= 0:
            log.info("not caching more images from %s: per-source limit", cached.ap_id)
            break
        room -= 1
        image = ListingImage(
            id=new_id(), position=position, description=description, source_url=attachment.url
        )
        cached.images.append(image)
        await session.flush()
        await enqueue_job(
            session,
            FETCH_IMAGE,
            {"image_id": image.id},
            dedupe_key=f"{FETCH_IMAGE}:{image.id}",
            subject=attachment.url,
        )


async def _signer(session: AsyncSession, origin_id: int) -> Community | None:
    """A community here that may see the origin's partner-only photos, else any of ours."""
    communities = CommunityRepository(session)
    origin = await communities.get(origin_id)
    local = await communities.list_local()
    if origin is not None:
        for community in local:
            if await PartnershipRepository(session).active_between(community.id, origin.ap_id):
                return community
    return local[0] if local else None


def run_fetch_image(ctx: FederationContext) -> JobHandler:
    store = MediaStore.of(ctx.config)

    async def handle(run: JobRun) -> None:
        image_id = str(run.payload.get("image_id", ""))
        async with ctx.sessions() as session:
            image = await ImageRepository(session).get(image_id)
            if image is None or image.storage_key or not image.source_url:
                return  # gone since, or fetched already
            cached = await session.get(RemoteListing, image.remote_listing_id)
            signer = await _signer(session, cached.origin_community_id) if cached else None
            url = image.source_url
        try:
            media = await get_media(
                ctx.http,
                url,
                key_id=signer.key_id if signer else None,
                private_key_pem=signer.private_key_pem if signer else None,
                allow_private=ctx.config.allow_private_addresses,
                limits=MEDIA_LIMITS,
                accept=ACCEPTED_MEDIA_TYPES,
            )
            encoded = await asyncio.to_thread(reencode, media.data)
        except (ObjectGone, ObjectNotFound, ResponseTooLarge, ImageRefused) as exc:
            await _record_error(ctx, image_id, str(exc))
            raise JobFailed(str(exc)) from exc
        except FetchError as exc:
            if exc.status is not None and 400 <= exc.status < 500 and exc.status != 429:
                await _record_error(ctx, image_id, str(exc))
                raise JobFailed(str(exc)) from exc
            raise RetryJob(str(exc)) from exc
        key = await asyncio.to_thread(store.write, encoded)
        display = encoded.display
        async with ctx.sessions() as session:
            stored = await ImageRepository(session).set_stored(
                image_id, key, encoded.media_type, display.width, display.height
            )
            await session.commit()
        if not stored:  # gone since, or another fetch stored it first
            await asyncio.to_thread(store.remove, [key])
        await run.report(stored=stored)

    return handle


async def _record_error(ctx: FederationContext, image_id: str, error: str) -> None:
    async with ctx.sessions() as session:
        image = await ImageRepository(session).get(image_id)
        if image is not None:
            image.last_error = error[:500]
            await session.commit()


def media_handlers(ctx: FederationContext) -> dict[str, JobHandler]:
    return {FETCH_IMAGE: run_fetch_image(ctx)}


async def sweep_media(ctx: FederationContext) -> int:
    """Remove files no image row names (left by a crash or a failed commit)."""
    async with ctx.sessions() as session:
        known = await ImageRepository(session).all_keys()
    return await asyncio.to_thread(MediaStore.of(ctx.config).sweep, known)
