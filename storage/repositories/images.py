"""Listing images: rows for our photos and for cached copies of remote ones.

The files belong to the node's media folder, not to the database; what this
module does to rows that had files is to note their `storage_key`s in the
session (`ORPHANED_MEDIA`), so that the node removes the files once the
transaction that dropped the rows has committed, and never before.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import ColumnElement, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import ListingImage, RemoteListing

ORPHANED_MEDIA = "orphaned_media"
"""Session-info key: storage keys whose rows this transaction deletes."""


def note_orphaned(session: AsyncSession, keys: Iterable[str | None]) -> None:
    """Files under `keys` are to go once this session commits."""
    found = [key for key in keys if key]
    if found:
        session.info.setdefault(ORPHANED_MEDIA, []).extend(found)


class ImageRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, image_id: str) -> ListingImage | None:
        return await self.session.get(ListingImage, image_id)

    async def by_key(self, storage_key: str) -> ListingImage | None:
        result = await self.session.execute(
            select(ListingImage).where(ListingImage.storage_key == storage_key)
        )
        return result.scalar_one_or_none()

    async def _where(self, condition: ColumnElement[bool]) -> list[ListingImage]:
        result = await self.session.execute(
            select(ListingImage)
            .where(condition)
            .order_by(ListingImage.position, ListingImage.created_at)
        )
        return list(result.scalars())

    async def for_listing(self, listing_id: str) -> list[ListingImage]:
        return await self._where(ListingImage.listing_id == listing_id)

    async def for_remote(self, remote_listing_id: str) -> list[ListingImage]:
        return await self._where(ListingImage.remote_listing_id == remote_listing_id)

    async def for_many(self, ids: Sequence[str]) -> list[ListingImage]:
        """Images of any of these listings (ours or mirrored: ids never collide)."""
        if not ids:
            return []
        return await self._where(
            ListingImage.listing_id.in_(ids) | ListingImage.remote_listing_id.in_(ids)
        )

    async def count_for_listing(self, listing_id: str) -> int:
        result = await self.session.execute(
            select(func.count())
            .select_from(ListingImage)
            .where(ListingImage.listing_id == listing_id)
        )
        return int(result.scalar_one())

    async def add(self, image: ListingImage) -> ListingImage:
        self.session.add(image)
        await self.session.flush()
        return image

    async def remove(self, image: ListingImage) -> None:
        note_orphaned(self.session, [image.storage_key])
        await self.session.delete(image)
        await self.session.flush()

    async def forget_listing(self, listing_id: str) -> None:
        """Before a listing row goes (its images cascade with it): note their files."""
        note_orphaned(self.session, [i.storage_key for i in await self.for_listing(listing_id)])

    async def forget_remote(self, condition: ColumnElement[bool]) -> None:
        """Before remote listings matching `condition` are deleted: note their images' files."""
        result = await self.session.execute(
            select(ListingImage.storage_key)
            .join(RemoteListing, RemoteListing.id == ListingImage.remote_listing_id)
            .where(condition, ListingImage.storage_key.is_not(None))
        )
        note_orphaned(self.session, result.scalars())

    async def set_stored(
        self, image_id: str, key: str, media_type: str, width: int, height: int
    ) -> bool:
        """Record the files of a fetched image, unless another fetch got there first
        (one conditional UPDATE: two fetches of one image cannot both win)."""
        result = await self.session.execute(
            update(ListingImage)
            .where(ListingImage.id == image_id, ListingImage.storage_key.is_(None))
            .values(
                storage_key=key, media_type=media_type, width=width, height=height, last_error=None
            )
        )
        return bool(getattr(result, "rowcount", 0))

    async def all_keys(self) -> set[str]:
        result = await self.session.execute(
            select(ListingImage.storage_key).where(ListingImage.storage_key.is_not(None))
        )
        return {key for key in result.scalars() if key}

    async def delete_ids(self, ids: Sequence[str]) -> None:
        if ids:
            await self.session.execute(delete(ListingImage).where(ListingImage.id.in_(ids)))
