"""The mirror cache: storing, refreshing and repairing listings other communities share."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, fields
from typing import Any

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from federation.errors import FederationError, ObjectNotFound
from federation.hosts import same_host
from federation.http_client import signed_get_json
from federation.jsonld import normalize_embedded
from federation.vocab import Note, VocabError, parse_note
from node.domain import urls
from node.domain.conversion import KINDS, MirroredFields, note_to_mirrored_fields
from node.protocol.context import FederationContext
from node.protocol.remote_media import sync_remote_images
from storage.models import Community, RemoteListing
from storage.repositories import CommunityRepository
from storage.repositories.partnerships import PartnershipRepository
from storage.repositories.remote_listings import (
    MirrorItem,
    NotTheOrigin,
    PageWrite,
    RemoteListingRepository,
)
from storage.states import Audience, Visibility

log = logging.getLogger(__name__)


class NotMirrored(Exception):
    """The note is not a listing we may keep (wrong origin, not ours to see, not a listing)."""


def check_origin(note: Note, origin: Community) -> None:
    """A community may only speak for listings it hosts and attributes to itself."""
    if note.attributed_to != origin.ap_id:
        raise NotMirrored(f"{note.id} is attributed to {note.attributed_to}, not {origin.ap_id}")
    if not note.id.startswith(origin.base_url.rstrip("/") + "/"):
        raise NotMirrored(f"{note.id} is not hosted by {origin.ap_id}")
    if note.kind not in KINDS:
        raise NotMirrored(f"{note.id} is not a listing (kind={note.kind!r})")


async def _check_not_anothers(session: AsyncSession, note: Note, origin: Community) -> None:
    """A listing under another community's actor id is that community's, even on one host."""
    others = await _other_owners(session, [(note, origin)])
    if note.id in others:
        raise NotMirrored(f"{note.id} belongs to {others[note.id]}, not {origin.ap_id}")


async def _other_owners(
    session: AsyncSession, notes: Sequence[tuple[Note, Community]]
) -> dict[str, str]:
    """Note id -> the other community (than the one sending it) whose actor id is a
    prefix of it, for a whole page in one query (a page's ids share a handful of
    prefixes)."""
    prefixes = {note.id: _path_prefixes(note.id) for note, _ in notes}
    senders = {note.id: origin.id for note, origin in notes}
    wanted = sorted({prefix for found in prefixes.values() for prefix in found})
    communities = CommunityRepository(session)
    owners: dict[str, int] = {}
    for start in range(0, len(wanted), _PREFIX_CHUNK):
        for owner in await communities.get_by_ap_ids(wanted[start : start + _PREFIX_CHUNK]):
            owners[owner.ap_id] = owner.id
    others = {}
    for note_id, found in prefixes.items():
        sender = senders[note_id]
        other = next((p for p in found if p in owners and owners[p] != sender), None)
        if other is not None:
            others[note_id] = other
    return others


_PREFIX_CHUNK = 500


def _path_prefixes(url: str) -> list[str]:
    """`https://h/c/a/listings/1` -> `https://h/c/a/listings`, `https://h/c/a`, `https://h/c`."""
    prefixes = []
    head, sep, _ = url.rstrip("/").rpartition("/")
    while sep and "/" in head.partition("://")[2]:
        prefixes.append(head)
        head, sep, _ = head.rpartition("/")
    return prefixes


async def mirror_note(
    session: AsyncSession,
    note: Note,
    origin: Community,
    audience: str,
    per_source_images: int = 2000,
) -> RemoteListing:
    """Cache `note` as `origin` shared it; refused if `origin` does not own it.

    Ownership: the note is attributed to `origin`, lives on its host and not
    under another community's id, and, if already cached, was cached from
    `origin` (a Delete is held to the same rule in `handlers.on_delete`).
    """
    check_origin(note, origin)
    await _check_not_anothers(session, note, origin)
    values = _row_fields(note)
    try:
        cached = await RemoteListingRepository(session).upsert(note.id, origin, audience, values)
    except NotTheOrigin as exc:
        raise NotMirrored(str(exc)) from exc
    newer = values["remote_updated_at"]
    if newer is None or cached.remote_updated_at is None or newer >= cached.remote_updated_at:
        await sync_remote_images(session, cached, note.attachments, per_source_images)
    return cached


_MIRRORED = tuple(field.name for field in fields(MirroredFields))


def _row_fields(note: Note) -> dict[str, Any]:
    """The cleaned fields as a row's values; a shallow copy (`asdict` deep-copies,
    which cost a backfill as much as parsing the note)."""
    mirrored = note_to_mirrored_fields(note)
    return {name: getattr(mirrored, name) for name in _MIRRORED}


def _note_from_item(item: Any, page: dict[str, Any]) -> Note | None:
    """Outbox items are Create activities (ours) or bare Notes (some servers)."""
    if not isinstance(item, dict):
        return None
    obj = item.get("object") if item.get("type") == "Create" else item
    if not isinstance(obj, dict):
        return None
    try:
        return parse_note(normalize_embedded(obj, page))
    except (VocabError, FederationError) as exc:
        log.info("skipping outbox item: %s", exc)
        return None


async def _pages(
    ctx: FederationContext, url: str, viewer: Community, max_pages: int
) -> AsyncGenerator[dict[str, Any], None]:
    """Yield the pages of an OrderedCollection one at a time, following `first` then `next`.

    Never more than `max_pages`, never a page twice (a `next` loop ends the
    walk), and never a page on another host: a collection cannot make us sign
    and send a fetch to a server of its choosing.
    """
    collection = await _get(ctx, url, viewer)
    page: Any = collection.get("first")
    if page is None and collection.get("orderedItems") is not None:
        yield collection
        return
    seen: set[str] = set()
    fetched = 0
    while isinstance(page, str | dict) and fetched < max_pages:
        if isinstance(page, str):
            if page in seen:
                return
            if not same_host(page, url):
                log.info("collection %s names a page on another host: %s", url, page[:200])
                return
            seen.add(page)
            page = await _get(ctx, page, viewer)
        fetched += 1
        yield page
        page = page.get("next")


async def _get(ctx: FederationContext, url: str, viewer: Community) -> dict[str, Any]:
    return await signed_get_json(
        ctx.http,
        url,
        key_id=viewer.key_id,
        private_key_pem=viewer.private_key_pem,
        allow_private=ctx.config.allow_private_addresses,
        limits=ctx.limits,
    )


@dataclass(frozen=True)
class SyncLimits:
    """How much one sync may take from one source, whatever the source offers.

    A partner or followed community decides how big its collection is; these
    bounds keep what it can make us fetch and store proportionate. A walk
    that reaches one stops there and keeps what it has, and says which limit
    it reached.
    """

    max_pages: int = 2_500
    max_items: int = 50_000
    max_bytes: int = 200 * 1024 * 1024


@dataclass
class SyncProgress:
    """How far a sync got: shown to stewards while it runs and after it ends."""

    pages: int = 0
    items: int = 0
    bytes: int = 0
    kept: int = 0
    removed: int = 0
    stopped_by: str | None = None


ProgressReport = Callable[[SyncProgress], Awaitable[None]]


async def _mirror_page(
    ctx: FederationContext, origin: Community, notes: list[Note], audience: str
) -> set[str]:
    """One short transaction per page, so the inbox never waits long on the database,
    and a handful of statements per page whatever its size (`mirror_notes`)."""
    candidates = [note for note in notes if audience_of(note) == audience]
    async with ctx.sessions() as session:
        written = await mirror_notes(
            session, origin, audience, candidates, ctx.config.remote_images_per_source
        )
        await session.commit()
    for ap_id, reason in written.refused.items():
        log.info("sync from %s skipped %s: %s", origin.ap_id, ap_id, reason)
    return written.kept


async def mirror_notes(
    session: AsyncSession,
    origin: Community,
    audience: str,
    notes: Sequence[Note],
    per_source_images: int = 2000,
) -> PageWrite:
    """`mirror_note` for many notes of one origin and audience at once (`mirror_many`)."""
    return await mirror_many(
        session, [(note, origin, audience) for note in notes], per_source_images
    )


async def mirror_many(
    session: AsyncSession,
    notes: Sequence[tuple[Note, Community, str]],
    per_source_images: int = 2000,
) -> PageWrite:
    """`mirror_note` for many (note, origin, audience) at once, in order, by the same
    rules: ownership for all of them in one query, then
    `RemoteListingRepository.upsert_many`, then the photos of every note not older
    than its cached copy. `refused_at` says why each note left out (by its
    position in `notes`) was left out; `refused`, the same by note id."""
    refusals: dict[int, str] = {}
    candidates: list[tuple[int, Note, Community, str]] = []
    for at, (note, origin, audience) in enumerate(notes):
        try:
            check_origin(note, origin)
        except NotMirrored as exc:
            refusals[at] = str(exc)
            continue
        candidates.append((at, note, origin, audience))
    others = await _other_owners(session, [(note, origin) for _, note, origin, _ in candidates])
    items: list[MirrorItem] = []
    positions: list[int] = []
    for at, note, origin, audience in candidates:
        if note.id in others:
            refusals[at] = f"{note.id} belongs to {others[note.id]}, not {origin.ap_id}"
            continue
        items.append(MirrorItem(note.id, origin.id, origin.ap_id, audience, _row_fields(note)))
        positions.append(at)
    written = await RemoteListingRepository(session).upsert_many(items)
    current = {ap_id: notes[positions[at]][0] for ap_id, at in written.current.items()}
    await _sync_page_images(session, current, per_source_images, fresh=written.fresh)
    for at, reason in written.refused_at.items():
        refusals[positions[at]] = reason
    written.refused_at = refusals
    written.refused = {notes[at][0].id: reason for at, reason in sorted(refusals.items())}
    return written


async def _sync_page_images(
    session: AsyncSession, current: dict[str, Note], per_source: int, *, fresh: set[str]
) -> None:
    """`mirror_note`'s photo rule for a page: every note not older than what is
    cached (written or unchanged) brings its listing's photos up to date. The
    rows come in one query; a note with no attachments whose listing has no
    photos has nothing to do, and its row is not even loaded (`fresh`: listings
    this page inserted, which have none)."""
    if not current:
        return
    repo = RemoteListingRepository(session)
    bare = [ap_id for ap_id, note in current.items() if not note.attachments]
    bare = [ap_id for ap_id in bare if ap_id not in fresh]
    with_photos = await repo.with_images(bare) if bare else set()
    wanted = [ap_id for ap_id, note in current.items() if note.attachments or ap_id in with_photos]
    if not wanted:
        return
    for cached in await repo.get_many(wanted):
        note = current[cached.ap_id]
        if not note.attachments and not cached.images:
            continue
        await sync_remote_images(session, cached, note.attachments, per_source)


async def _drop_unlisted(
    ctx: FederationContext, origin: Community, audience: str, kept: set[str]
) -> int:
    """The repair for a missed Delete or a listing made less visible."""
    async with ctx.sessions() as session:
        repo = RemoteListingRepository(session)
        cached = await repo.ap_ids_from_origin(origin.id, audience)
        removed = await repo.remove_many([ap_id for ap_id in cached if ap_id not in kept])
        await session.commit()
    return removed


def _limit_reached(progress: SyncProgress, limits: SyncLimits) -> str | None:
    if progress.items >= limits.max_items:
        return f"item limit ({limits.max_items})"
    if progress.bytes >= limits.max_bytes:
        return f"size limit ({limits.max_bytes} bytes)"
    if progress.pages >= limits.max_pages:
        return f"page limit ({limits.max_pages})"
    return None


async def sync_collection(
    ctx: FederationContext,
    origin: Community,
    viewer: Community,
    url: str,
    audience: str,
    *,
    limits: SyncLimits | None = None,
    report: ProgressReport | None = None,
) -> SyncProgress:
    """Stream a collection into the mirror page by page; drop what it no longer lists.

    Only the ids seen so far, the page being written and the next one are held
    in memory. Cached copies the collection
    no longer lists are dropped only after a complete walk: a walk cut short
    by a limit cannot tell "gone" from "not reached".
    """
    limits = limits or SyncLimits()
    progress = SyncProgress()
    kept: set[str] = set()
    pages = _pages(ctx, url, viewer, limits.max_pages)
    upcoming: asyncio.Task[dict[str, Any] | None] | None = asyncio.create_task(_next(pages))
    try:
        while upcoming is not None and (page := await upcoming) is not None:
            upcoming = None
            items = page.get("orderedItems") or page.get("items") or []
            items = items if isinstance(items, list) else []
            batch = items[: limits.max_items - progress.items]
            progress.pages += 1
            progress.items += len(batch)
            progress.bytes += len(orjson.dumps(page))
            more = len(batch) < len(items) or page.get("next") is not None
            progress.stopped_by = _limit_reached(progress, limits) if more else None
            if more and progress.stopped_by is None:
                # The page the walk would fetch next anyway, fetched while this one is
                # written: one page ahead at most, never past a limit.
                upcoming = asyncio.create_task(_next(pages))
            found = (_note_from_item(item, page) for item in batch)
            kept |= await _mirror_page(ctx, origin, [n for n in found if n is not None], audience)
            progress.kept = len(kept)
            if report is not None:
                await report(progress)
            if progress.stopped_by is not None:
                break
    finally:
        if upcoming is not None:
            upcoming.cancel()
            await asyncio.wait([upcoming])
        await pages.aclose()
    if progress.stopped_by is None:
        progress.removed = await _drop_unlisted(ctx, origin, audience, kept)
    log.info(
        "synced %d %s listings from %s (%d pages%s)",
        progress.kept,
        audience,
        origin.ap_id,
        progress.pages,
        f", stopped by the {progress.stopped_by}" if progress.stopped_by else "",
    )
    return progress


async def _next(pages: AsyncIterator[dict[str, Any]]) -> dict[str, Any] | None:
    return await anext(pages, None)


def audience_of(note: Note) -> str | None:
    """`public` for notes addressed to everyone, `partners` for partner-only ones."""
    if note.is_public:
        return Audience.PUBLIC
    return Audience.PARTNERS if note.visibility == Visibility.PARTNERS else None


async def backfill(
    ctx: FederationContext,
    origin: Community,
    viewer: Community,
    *,
    limits: SyncLimits | None = None,
    report: ProgressReport | None = None,
) -> dict[str, SyncProgress]:
    """Everything `origin` shares with `viewer`: its public outbox, and, for an
    active partner, its partner collection (a signed fetch only partners pass).

    Run it from a job (`node.protocol.job_handlers`), never while someone waits.
    """
    async with ctx.sessions() as session:
        partnered = await PartnershipRepository(session).active_between(viewer.id, origin.ap_id)
    done: dict[str, SyncProgress] = {}
    if origin.outbox_url:
        done[Audience.PUBLIC.value] = await sync_collection(
            ctx, origin, viewer, origin.outbox_url, Audience.PUBLIC, limits=limits, report=report
        )
    if partnered:
        url = urls.partner_collection(origin.ap_id)
        try:
            done[Audience.PARTNERS.value] = await sync_collection(
                ctx, origin, viewer, url, Audience.PARTNERS, limits=limits, report=report
            )
        except ObjectNotFound:
            # Right after our steward approves, the partner has not yet handled our
            # Accept and serves its collection to partners only. It pushes its
            # partner listings when it does; reconciliation pages them later.
            log.info("%s does not share its partner collection with us (yet)", origin.ap_id)
    return done
