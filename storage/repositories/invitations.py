"""Invitations and password-reset links: looked up by the hash of their secret.

Both are claimed by one conditional UPDATE that succeeds only while the link
is still good, so a link opened twice at once lets exactly one request in.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Invitation, PasswordReset
from storage.paging import Position, page_after


def _changed(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


class InvitationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, invitation: Invitation) -> Invitation:
        self.session.add(invitation)
        await self.session.flush()
        return invitation

    async def get(self, community_id: int, invitation_id: str) -> Invitation | None:
        result = await self.session.execute(
            select(Invitation).where(
                Invitation.id == invitation_id, Invitation.community_id == community_id
            )
        )
        return result.scalar_one_or_none()

    async def get_by_hash(self, token_hash: str) -> Invitation | None:
        result = await self.session.execute(
            select(Invitation).where(Invitation.token_hash == token_hash)
        )
        return result.scalar_one_or_none()

    async def page(self, community_id: int, after: Position | None, limit: int) -> list[Invitation]:
        """Newest first; up to `limit + 1` rows after `after` (see `storage.paging`)."""
        query = select(Invitation).where(Invitation.community_id == community_id)
        query = page_after(query, Invitation.created_at, Invitation.id, after, limit)
        return list((await self.session.execute(query)).scalars().all())

    async def claim(self, token_hash: str, now: datetime) -> Invitation | None:
        """Mark the invitation used if it is still unused, unrevoked and unexpired.

        One statement: on PostgreSQL a second claimant waits for the first's
        row lock and then finds `used_at` set; SQLite has one writer at a time.
        """
        result = await self.session.execute(
            update(Invitation)
            .where(
                Invitation.token_hash == token_hash,
                Invitation.used_at.is_(None),
                Invitation.revoked_at.is_(None),
                Invitation.expires_at > now,
            )
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        )
        if _changed(result) != 1:
            return None
        invitation = await self.get_by_hash(token_hash)
        if invitation is not None:
            await self.session.refresh(invitation)
        return invitation

    async def revoke(self, invitation: Invitation, now: datetime) -> bool:
        """Revoke while unused; False when it was used (or revoked) meanwhile."""
        result = await self.session.execute(
            update(Invitation)
            .where(
                Invitation.id == invitation.id,
                Invitation.used_at.is_(None),
                Invitation.revoked_at.is_(None),
            )
            .values(revoked_at=now)
            .execution_options(synchronize_session=False)
        )
        await self.session.refresh(invitation)
        return _changed(result) == 1


class PasswordResetRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, reset: PasswordReset) -> PasswordReset:
        self.session.add(reset)
        await self.session.flush()
        return reset

    async def get_by_hash(self, token_hash: str) -> PasswordReset | None:
        result = await self.session.execute(
            select(PasswordReset).where(PasswordReset.token_hash == token_hash)
        )
        return result.scalar_one_or_none()

    async def get_usable(self, token_hash: str, now: datetime) -> PasswordReset | None:
        reset = await self.get_by_hash(token_hash)
        if reset is None or reset.used_at is not None or reset.expires_at <= now:
            return None
        return reset

    async def claim(self, token_hash: str, now: datetime) -> PasswordReset | None:
        """Like `InvitationRepository.claim`: one conditional UPDATE, one winner."""
        result = await self.session.execute(
            update(PasswordReset)
            .where(
                PasswordReset.token_hash == token_hash,
                PasswordReset.used_at.is_(None),
                PasswordReset.expires_at > now,
            )
            .values(used_at=now)
            .execution_options(synchronize_session=False)
        )
        if _changed(result) != 1:
            return None
        reset = await self.get_by_hash(token_hash)
        if reset is not None:
            await self.session.refresh(reset)
        return reset

    async def delete_unused_for_member(self, member_id: int) -> int:
        """Earlier unused links of a member stop working when a new one is made."""
        result = await self.session.execute(
            delete(PasswordReset).where(
                PasswordReset.member_id == member_id, PasswordReset.used_at.is_(None)
            )
        )
        return _changed(result)
