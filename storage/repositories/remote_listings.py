"""The mirror cache. A cached listing belongs to the community it was first
received from: only that community can change it, and its clock cannot be
used to freeze it."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, cast

from sqlalchemy import ColumnElement, Table, bindparam, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.dialect import among, insert_ignoring_conflicts
from storage.models import (
    Community,
    CommunityPartnership,
    ListingImage,
    RemoteListing,
    new_id,
    utcnow,
)
from storage.paging import Position
from storage.repositories.actors import BlockRepository, host_is_blocked
from storage.repositories.browse import Found, Source, mirror_sources, newest, own_source
from storage.repositories.images import ImageRepository
from storage.repositories.listings import ListingFilters, words_match
from storage.states import Audience, ListingStatus, PartnershipState


class NotTheOrigin(Exception):
    """Another community tried to change a listing cached from its origin."""


def _clamped(fields: dict[str, Any], now: datetime) -> dict[str, Any]:
    """A `published` or `updated` in the future is taken as now: otherwise one
    far-future stamp would make every later, honest version look older."""
    return {
        key: min(value, now) if key in _STAMPS and isinstance(value, datetime) else value
        for key, value in fields.items()
    }


_STAMPS = frozenset({"published_at", "remote_updated_at"})
_CHUNK = 500
"""Ids per `IN (...)` list: far below SQLite's and asyncpg's bound-parameter limits."""


def _chunks(values: Sequence[str]) -> Iterator[Sequence[str]]:
    for start in range(0, len(values), _CHUNK):
        yield values[start : start + _CHUNK]


def _is_older(fields: dict[str, Any], than: datetime | None) -> bool:
    """The one rule for versions: an older `updated` never replaces a newer one."""
    newer = fields.get("remote_updated_at")
    return bool(than and newer and newer < than)


@dataclass
class PageWrite:
    """What `upsert_page` did with a page: which ids are now cached from the origin
    (new, changed, or already as new), which it refused and why, and which items
    were not older than the cached version (written or unchanged: their photos
    are to be brought up to date), as id -> the item's position in the page."""

    kept: set[str] = field(default_factory=set)
    current: dict[str, int] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)
    inserted: int = 0
    updated: int = 0
    refused_at: dict[int, str] = field(default_factory=dict)
    """The refusals by the item's position (one id may come twice, once refused)."""
    fresh: set[str] = field(default_factory=set)
    """Ids this page inserted (so no photos yet); empty when any insert met a row
    written meanwhile, since which ones did is then unknown."""


@dataclass(frozen=True, slots=True)
class MirrorItem:
    """One listing for `upsert_many`: its id, who sends it, to whom, and its fields."""

    ap_id: str
    origin_id: int
    origin_ap_id: str
    audience: str
    fields: dict[str, Any]


_TABLE = cast(Table, RemoteListing.__table__)


def _unchanged(row: dict[str, Any], audience: str, fields: dict[str, Any]) -> bool:
    if row["audience"] != audience or row["is_tombstoned"]:
        return False
    return all(row.get(key) == value for key, value in fields.items())


class RemoteListingRepository:
    """The mirror cache of listings other communities shared with us."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get_by_ap_id(self, ap_id: str) -> RemoteListing | None:
        result = await self.session.execute(
            select(RemoteListing).where(RemoteListing.ap_id == ap_id)
        )
        return result.scalar_one_or_none()

    async def get_many(self, ap_ids: Sequence[str]) -> list[RemoteListing]:
        """The cached listings among `ap_ids` with their photos, as stored now (rows
        written by `upsert_page` replace any stale copy this session holds)."""
        rows: list[RemoteListing] = []
        for chunk in _chunks(ap_ids):
            result = await self.session.scalars(
                select(RemoteListing)
                .where(RemoteListing.ap_id.in_(chunk))
                .execution_options(populate_existing=True)
            )
            rows.extend(result.all())
        return rows

    async def with_images(self, ap_ids: Sequence[str]) -> set[str]:
        """Those of `ap_ids` whose cached listing has photos: ids only, in one
        query per chunk, so a page of listings without photos loads no rows."""
        found: set[str] = set()
        for chunk in _chunks(ap_ids):
            result = await self.session.scalars(
                select(RemoteListing.ap_id).where(
                    among(self.session, RemoteListing.ap_id, chunk),
                    select(ListingImage.id)
                    .where(ListingImage.remote_listing_id == RemoteListing.id)
                    .exists(),
                )
            )
            found.update(result.all())
        return found

    async def upsert(
        self, ap_id: str, origin: Community, audience: str, fields: dict[str, Any]
    ) -> RemoteListing:
        """Insert or refresh; an older version (by the origin's `updated`) never wins.

        Raises `NotTheOrigin` when `origin` is not the community the listing
        was first cached from: one actor cannot rewrite another's listing,
        even on the same host.
        """
        now = utcnow()
        fields = _clamped(fields, now)
        cached = await self.get_by_ap_id(ap_id)
        if cached is not None and cached.origin_community_id != origin.id:
            raise NotTheOrigin(f"{ap_id} was received from another community than {origin.ap_id}")
        if cached is None:
            cached = RemoteListing(ap_id=ap_id, origin_community_id=origin.id, **fields)
            cached.audience = audience
            cached.received_at = now
            cached.shown_at = cached.published_at or now
            self.session.add(cached)
        else:
            if _is_older(fields, cached.remote_updated_at):
                return cached
            for key, value in fields.items():
                setattr(cached, key, value)
            cached.audience = audience
            cached.is_tombstoned = False
            cached.updated_at = now
            cached.shown_at = cached.published_at or cached.received_at
        await self.session.flush()
        return cached

    async def upsert_page(
        self, origin: Community, audience: str, items: Sequence[tuple[str, dict[str, Any]]]
    ) -> PageWrite:
        """`upsert` for a page of (ap_id, fields) at once, by the same rules, in a
        few statements: one read of the rows already cached, one bulk insert of
        the new ones, one executemany update of the changed ones.

        Items apply in order, as if upserted one by one. A row that would not
        change (same fields and audience, not tombstoned) is not written.
        """
        return await self.upsert_many(
            [
                MirrorItem(ap_id, origin.id, origin.ap_id, audience, fields)
                for ap_id, fields in items
            ]
        )

    async def upsert_many(self, items: Sequence[MirrorItem]) -> PageWrite:
        """`upsert_page` for items of several origins and audiences (what an inbox
        receives in a burst): the same rules and statements, each item held to
        its own origin."""
        now = utcnow()
        table = _TABLE
        cached = await self._cached_rows(list(dict.fromkeys(item.ap_id for item in items)))
        stamps = {ap_id: row["remote_updated_at"] for ap_id, row in cached.items()}
        latest: dict[str, tuple[MirrorItem, dict[str, Any]]] = {}
        done = PageWrite()
        for position, item in enumerate(items):
            ap_id = item.ap_id
            row = cached.get(ap_id)
            first = latest.get(ap_id)
            owner = row["origin_community_id"] if row is not None else None
            if owner is None and first is not None:
                owner = first[0].origin_id
            if owner is not None and owner != item.origin_id:
                reason = f"{ap_id} was received from another community than {item.origin_ap_id}"
                done.refused[ap_id] = done.refused_at[position] = reason
                continue
            done.kept.add(ap_id)
            fields = _clamped(item.fields, now)
            if _is_older(fields, stamps.get(ap_id)):
                continue
            stamps[ap_id] = fields.get("remote_updated_at")
            latest[ap_id] = (item, fields)
            done.current[ap_id] = position
        inserts, updates = [], []
        for ap_id, (item, fields) in latest.items():
            row = cached.get(ap_id)
            if row is None:
                shown = fields.get("published_at") or now
                inserts.append(
                    {
                        "id": new_id(),
                        "ap_id": ap_id,
                        "origin_community_id": item.origin_id,
                        "audience": item.audience,
                        "received_at": now,
                        "updated_at": now,
                        "is_tombstoned": False,
                        **fields,
                        "shown_at": shown,
                    }
                )
                continue
            fields = {**fields, "shown_at": fields.get("published_at") or row["received_at"]}
            if not _unchanged(row, item.audience, fields):
                changed = {"audience": item.audience, "is_tombstoned": False, "updated_at": now}
                updates.append({"b_id": row["id"], "b_origin": item.origin_id, **fields, **changed})
        # A listing stored meanwhile by the inbox (its Create arriving during the
        # walk) is left as the inbox wrote it, not a unique-key error for the job.
        done.inserted = await insert_ignoring_conflicts(
            self.session, RemoteListing, inserts, conflict_columns=["ap_id"]
        )
        if done.inserted == len(inserts):
            done.fresh = {row["ap_id"] for row in inserts}
        if updates:
            await self.session.execute(
                update(table).where(
                    table.c.id == bindparam("b_id"),
                    table.c.origin_community_id == bindparam("b_origin"),
                ),
                updates,
            )
        done.updated = len(updates)
        return done

    async def _cached_rows(self, ap_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """The cached rows among `ap_ids`, as plain mappings (no ORM objects to track)."""
        rows: dict[str, dict[str, Any]] = {}
        columns = _TABLE.c
        for chunk in _chunks(ap_ids):
            result = await self.session.execute(
                select(*columns).where(among(self.session, columns.ap_id, chunk))
            )
            rows.update((row.ap_id, dict(row._mapping)) for row in result)
        return rows

    async def ap_ids_from_origin(self, origin_community_id: int, audience: str) -> list[str]:
        """Just the ids, so a complete sync can find what its source stopped listing
        without loading every cached row."""
        result = await self.session.scalars(
            select(RemoteListing.ap_id).where(
                RemoteListing.origin_community_id == origin_community_id,
                RemoteListing.audience == audience,
            )
        )
        return list(result.all())

    async def remove_many(self, ap_ids: Sequence[str]) -> int:
        removed = 0
        images = ImageRepository(self.session)
        for chunk in _chunks(ap_ids):
            await images.forget_remote(RemoteListing.ap_id.in_(chunk))
            result = await self.session.execute(
                delete(RemoteListing).where(RemoteListing.ap_id.in_(chunk))
            )
            removed += int(getattr(result, "rowcount", 0))
        return removed

    async def remove(self, ap_id: str) -> bool:
        await ImageRepository(self.session).forget_remote(RemoteListing.ap_id == ap_id)
        result = await self.session.execute(
            delete(RemoteListing).where(RemoteListing.ap_id == ap_id)
        )
        return bool(getattr(result, "rowcount", 0))

    async def remove_from_origin(self, origin_community_id: int, audience: str) -> int:
        await ImageRepository(self.session).forget_remote(
            (RemoteListing.origin_community_id == origin_community_id)
            & (RemoteListing.audience == audience)
        )
        result = await self.session.execute(
            delete(RemoteListing).where(
                RemoteListing.origin_community_id == origin_community_id,
                RemoteListing.audience == audience,
            )
        )
        return int(getattr(result, "rowcount", 0))

    async def list_visible(
        self, audiences: Sequence[str], filters: ListingFilters = ListingFilters()
    ) -> list[RemoteListing]:
        """Cached listings shared under `audiences`, hiding those from blocked domains."""
        query = select(RemoteListing).where(
            RemoteListing.audience.in_(audiences), RemoteListing.is_tombstoned.is_(False)
        )
        if filters.kind:
            query = query.where(RemoteListing.kind == filters.kind)
        if filters.category:
            query = query.where(RemoteListing.category == filters.category)
        if filters.status:
            query = query.where(RemoteListing.status == filters.status)
        query = query.order_by(RemoteListing.published_at.desc(), RemoteListing.id)
        result = await self.session.execute(query.limit(filters.limit).offset(filters.offset))
        blocked = await BlockRepository(self.session).domains()
        return [
            listing
            for listing in result.scalars().all()
            if not host_is_blocked(blocked, listing.origin_community.host)
        ]

    async def list_from_origin(
        self, origin_community_id: int, audience: str
    ) -> Sequence[RemoteListing]:
        result = await self.session.execute(
            select(RemoteListing).where(
                RemoteListing.origin_community_id == origin_community_id,
                RemoteListing.audience == audience,
            )
        )
        return result.scalars().all()

    async def _blocked_origins(self) -> list[int]:
        """Origins of cached listings whose host is blocked; the block list is usually empty."""
        blocked = await BlockRepository(self.session).domains()
        if not blocked:
            return []
        origins = await self.session.execute(
            select(Community.id, Community.host).where(
                Community.id.in_(select(RemoteListing.origin_community_id).distinct())
            )
        )
        return [origin_id for origin_id, host in origins if host_is_blocked(blocked, host)]

    @staticmethod
    def _shown_to(
        community_id: int, include_public: bool, include_partners: bool
    ) -> ColumnElement[bool] | None:
        """The mirror rows local community `community_id` may see, blocks aside.

        Public listings are for every community on the node; a partner-only
        listing only for a community in an active partnership with its origin,
        so one community's partnership ending changes nothing for another's.
        """
        shown: list[ColumnElement[bool]] = []
        if include_public:
            shown.append(RemoteListing.audience == Audience.PUBLIC)
        if include_partners:
            partnered = select(CommunityPartnership.remote_community_id).where(
                CommunityPartnership.local_community_id == community_id,
                CommunityPartnership.state == PartnershipState.ACTIVE,
            )
            shown.append(
                (RemoteListing.audience == Audience.PARTNERS)
                & RemoteListing.origin_community_id.in_(partnered)
            )
        if not shown:
            return None
        return or_(*shown) & RemoteListing.is_tombstoned.is_(False)

    async def get_visible_to(self, community_id: int, listing_id: str) -> RemoteListing | None:
        """One mirrored listing by its local id, if local community `community_id` may see it."""
        shown = self._shown_to(community_id, include_public=True, include_partners=True)
        assert shown is not None
        query = select(RemoteListing).where(RemoteListing.id == listing_id, shown)
        cached = (await self.session.scalars(query)).one_or_none()
        if cached is None:
            return None
        blocked = await BlockRepository(self.session).domains()
        return None if host_is_blocked(blocked, cached.origin_community.host) else cached

    async def page_visible_to(
        self,
        community_id: int,
        filters: ListingFilters,
        after: Position | None,
        limit: int,
        *,
        include_public: bool,
        include_partners: bool,
        include_own: bool = False,
    ) -> list[Found]:
        """What local community `community_id` may show of the mirror (and, with
        `include_own`, its own listings, whatever their visibility), newest first, paged.

        One index walk per source (our listings; each audience and status of the
        mirror), all in one statement, merged; blocked origins are left out in the
        query, before the limit.
        """
        sources: list[Source] = []
        if include_own:
            sources.append(own_source(community_id, filters.status, filters.author_id))
        if include_public or include_partners:
            statuses = [filters.status] if filters.status else list(ListingStatus)
            sources += await mirror_sources(
                self.session,
                community_id,
                public=include_public,
                partners=include_partners,
                statuses=statuses,
            )
        extra: list[tuple[str, Any]] = []
        if filters.kind:
            extra.append(("kind", filters.kind))
        if filters.category:
            extra.append(("category", filters.category))
        if filters.q:
            sources = [
                source.with_condition(
                    words_match(self.session, source.model, source.search_key, filters.q)
                )
                for source in sources
            ]
        return await newest(self.session, sources, extra, after, limit)
