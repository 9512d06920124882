"""The mirror cache: storing, refreshing and repairing listings other communities share."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import asdict
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from federation.errors import FederationError
from federation.http_client import signed_get_json
from federation.jsonld import normalize_embedded
from federation.vocab import Note, VocabError, parse_note
from node.protocol.context import FederationContext
from node.services.conversion import KINDS, note_to_mirrored_fields
from storage.models import Community, RemoteListing
from storage.repositories import CommunityRepository
from storage.repositories.partnerships import PartnershipRepository
from storage.repositories.remote_listings import NotTheOrigin, RemoteListingRepository

log = logging.getLogger(__name__)
MAX_OUTBOX_PAGES = 100_000


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
    owners = await CommunityRepository(session).get_by_ap_ids(_path_prefixes(note.id))
    others = [owner.ap_id for owner in owners if owner.id != origin.id]
    if others:
        raise NotMirrored(f"{note.id} belongs to {others[0]}, not {origin.ap_id}")


def _path_prefixes(url: str) -> list[str]:
    """`https://h/c/a/listings/1` -> `https://h/c/a/listings`, `https://h/c/a`, `https://h/c`."""
    prefixes = []
    head, sep, _ = url.rstrip("/").rpartition("/")
    while sep and "/" in head.partition("://")[2]:
        prefixes.append(head)
        head, sep, _ = head.rpartition("/")
    return prefixes


async def mirror_note(
    session: AsyncSession, note: Note, origin: Community, audience: str
) -> RemoteListing:
    """Cache `note` as `origin` shared it; refused if `origin` does not own it.

    Ownership: the note is attributed to `origin`, lives on its host and not
    under another community's id, and, if already cached, was cached from
    `origin` (a Delete is held to the same rule in `handlers.on_delete`).
    """
    check_origin(note, origin)
    await _check_not_anothers(session, note, origin)
    fields = asdict(note_to_mirrored_fields(note))
    try:
        return await RemoteListingRepository(session).upsert(note.id, origin, audience, fields)
    except NotTheOrigin as exc:
        raise NotMirrored(str(exc)) from exc


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
    ctx: FederationContext, url: str, viewer: Community
) -> AsyncIterator[dict[str, Any]]:
    """Yield every page of an OrderedCollection, following `first` then `next`."""
    collection = await _get(ctx, url, viewer)
    seen: set[str] = set()
    page: Any = collection.get("first")
    if page is None and collection.get("orderedItems") is not None:
        yield collection
        return
    while page is not None and len(seen) < MAX_OUTBOX_PAGES:
        if isinstance(page, str):
            if page in seen:
                return
            seen.add(page)
            page = await _get(ctx, page, viewer)
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


async def sync_collection(
    ctx: FederationContext, origin: Community, viewer: Community, url: str, audience: str
) -> int:
    """Page a whole collection; keep what it lists, drop cached copies it no longer does.

    The drop is the repair for a missed Delete or a listing made less visible.
    """
    notes: list[Note] = []
    async for page in _pages(ctx, url, viewer):
        items = page.get("orderedItems") or page.get("items") or []
        found = (_note_from_item(item, page) for item in items)
        notes.extend(note for note in found if note is not None)
    kept: set[str] = set()
    async with ctx.sessions() as session:
        for note in notes:
            if audience_of(note) != audience:
                continue
            try:
                await mirror_note(session, note, origin, audience)
                kept.add(note.id)
            except NotMirrored as exc:
                log.info("sync from %s skipped %s: %s", origin.ap_id, note.id, exc)
        repo = RemoteListingRepository(session)
        for cached in await repo.list_from_origin(origin.id, audience):
            if cached.ap_id not in kept:
                await repo.remove(cached.ap_id)
        await session.commit()
    log.info("synced %d %s listings from %s", len(kept), audience, origin.ap_id)
    return len(kept)


def partner_collection_url(actor_id: str) -> str:
    """Where a community lists what it shares with partners (served to partners only)."""
    return f"{actor_id}/partner-listings"


def audience_of(note: Note) -> str | None:
    """`public` for notes addressed to everyone, `partners` for partner-only ones."""
    if note.is_public:
        return "public"
    return "partners" if note.visibility == "partners" else None


async def backfill(ctx: FederationContext, origin: Community, viewer: Community) -> int:
    """Everything `origin` shares with `viewer`: its public outbox, and, for an
    active partner, its partner collection (a signed fetch only partners pass)."""
    async with ctx.sessions() as session:
        partnered = await PartnershipRepository(session).active_between(viewer.id, origin.ap_id)
    count = 0
    if origin.outbox_url:
        count += await sync_collection(ctx, origin, viewer, origin.outbox_url, "public")
    if partnered:
        url = partner_collection_url(origin.ap_id)
        count += await sync_collection(ctx, origin, viewer, url, "partners")
    return count
