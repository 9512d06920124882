from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import AuthToken, Member


class MemberRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, member_id: int) -> Member | None:
        return await self.session.get(Member, member_id)

    async def get_by_username(self, community_id: int, username: str) -> Member | None:
        result = await self.session.execute(
            select(Member).where(Member.community_id == community_id, Member.username == username)
        )
        return result.scalar_one_or_none()

    async def add(self, member: Member) -> Member:
        self.session.add(member)
        await self.session.flush()
        return member


class TokenRepository:
    """Tokens are looked up by the SHA-256 of the secret; the secret is never stored."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, token: AuthToken) -> AuthToken:
        self.session.add(token)
        await self.session.flush()
        return token

    async def get_valid(self, token_hash: str, kind: str, now: datetime) -> AuthToken | None:
        result = await self.session.execute(
            select(AuthToken).where(AuthToken.token_hash == token_hash, AuthToken.kind == kind)
        )
        token = result.scalar_one_or_none()
        if token is None or (token.expires_at is not None and token.expires_at <= now):
            return None
        return token

    async def delete(self, token_hash: str) -> None:
        await self.session.execute(delete(AuthToken).where(AuthToken.token_hash == token_hash))

    async def get_for_member(self, token_id: int, member_id: int) -> AuthToken | None:
        result = await self.session.execute(
            select(AuthToken).where(AuthToken.id == token_id, AuthToken.member_id == member_id)
        )
        return result.scalar_one_or_none()

    async def list_for_member(
        self, member_id: int, now: datetime, *, limit: int, before_id: int | None = None
    ) -> list[AuthToken]:
        """The member's unexpired tokens, newest first, `limit` after the cursor."""
        query = select(AuthToken).where(
            AuthToken.member_id == member_id,
            (AuthToken.expires_at.is_(None)) | (AuthToken.expires_at > now),
        )
        if before_id is not None:
            query = query.where(AuthToken.id < before_id)
        result = await self.session.execute(query.order_by(AuthToken.id.desc()).limit(limit))
        return list(result.scalars().all())

    async def delete_by_id(self, token_id: int) -> None:
        await self.session.execute(delete(AuthToken).where(AuthToken.id == token_id))

    async def delete_for_member(self, member_id: int, *, keep_id: int | None = None) -> int:
        """Every token and session of a member, but `keep_id`; returns how many went."""
        query = delete(AuthToken).where(AuthToken.member_id == member_id)
        if keep_id is not None:
            query = query.where(AuthToken.id != keep_id)
        result = await self.session.execute(query)
        return int(getattr(result, "rowcount", 0) or 0)
