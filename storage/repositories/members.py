from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, delete, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.dialect import lock_rows
from storage.models import AuthToken, Member
from storage.paging import Position, page_after
from storage.states import Role


def _like_pattern(text: str) -> str:
    """A LIKE pattern matching `text` anywhere, its own % and _ taken literally."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


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

    async def page(
        self, community_id: int, search: str | None, after: Position | None, limit: int
    ) -> list[Member]:
        """Alphabetical by username; `search` matches inside username or display name."""
        query = select(Member).where(Member.community_id == community_id)
        if search:
            pattern = _like_pattern(search.lower())
            query = query.where(
                or_(
                    Member.username.like(pattern, escape="\\"),
                    func.lower(Member.display_name).like(pattern, escape="\\"),
                )
            )
        query = page_after(query, Member.username, Member.id, after, limit, descending=False)
        return list((await self.session.execute(query)).scalars().all())

    async def lock_active_stewards(self, community_id: int) -> list[Member]:
        """The community's active stewards, locked (PostgreSQL) until the transaction ends.

        Two stewards demoting each other at once: the second waits for the
        first, then sees one steward fewer, so the last one is never lost.
        """
        query = select(Member.id).where(
            Member.community_id == community_id,
            Member.role == Role.STEWARD,
            Member.is_active.is_(True),
        )
        ids = list((await self.session.execute(lock_rows(self.session, query))).scalars().all())
        if not ids:
            return []
        result = await self.session.execute(select(Member).where(Member.id.in_(ids)))
        return list(result.scalars().all())


_TOKEN_BY_HASH = select(AuthToken).where(
    AuthToken.token_hash == bindparam("token_hash"), AuthToken.kind == bindparam("kind")
)
"""Made once: every API request looks its token up, and building the statement anew
each time cost about as much as running it."""


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
            _TOKEN_BY_HASH, {"token_hash": token_hash, "kind": kind}
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
