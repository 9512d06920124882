"""Stewards managing people, and each member's own profile.

Deactivating someone takes effect at once: every token and browser session
of theirs is deleted (and any left over would be refused, see
`accounts.resolve_token`), and their open listings are closed through the
listing service, so partners and the public receive the Update as for any
close. A community always keeps one active steward.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from node.domain.people import RESET_LIFETIME, clean_bio, clean_display_name
from node.errors import BadRequest, Conflict, NotFound, ValidationFailed
from node.services.accounts import (
    check_password,
    find_member,
    hash_password,
    token_digest,
)
from node.services.listings import close_listings_of
from storage.models import Member, PasswordReset, utcnow
from storage.paging import Position
from storage.repositories import MemberRepository, TokenRepository
from storage.repositories.invitations import PasswordResetRepository
from storage.states import Role

INVALID_RESET = "this password link is unknown, used or expired; ask a steward for a new one"


async def list_members(
    session: AsyncSession, steward: Member, search: str | None, after: Position | None, limit: int
) -> list[Member]:
    text = (search or "").strip()
    return await MemberRepository(session).page(steward.community_id, text or None, after, limit)


async def member_of_community(session: AsyncSession, steward: Member, username: str) -> Member:
    member = await find_member(session, steward.community, username)
    if member is None:
        raise NotFound("no such member")
    return member


async def _keep_a_steward(session: AsyncSession, member: Member) -> None:
    """409 when `member` is the community's last active steward."""
    stewards = await MemberRepository(session).lock_active_stewards(member.community_id)
    if [s.id for s in stewards] == [member.id]:
        raise Conflict(
            "the community needs at least one active steward: make someone else a steward first"
        )


async def update_member(
    session: AsyncSession,
    steward: Member,
    username: str,
    *,
    role: str | None = None,
    active: bool | None = None,
) -> Member:
    """Change someone's role or whether they may sign in; returns them as they now are."""
    member = await member_of_community(session, steward, username)
    if role is not None and role not in (Role.MEMBER, Role.STEWARD):
        raise ValidationFailed("role must be member or steward")
    loses_steward = (
        member.is_steward
        and member.is_active
        and ((role is not None and role != Role.STEWARD) or active is False)
    )
    if loses_steward:
        await _keep_a_steward(session, member)
    if role is not None:
        member.role = role
    if active is False and member.is_active:
        member.is_active = False
        await TokenRepository(session).delete_for_member(member.id)
        await PasswordResetRepository(session).delete_unused_for_member(member.id)
        await close_listings_of(session, member)
    elif active is True:
        member.is_active = True
    await session.flush()
    return member


async def update_profile(
    session: AsyncSession, member: Member, *, display_name: str | None, bio: str | None
) -> Member:
    try:
        if display_name is not None:
            member.display_name = clean_display_name(display_name)
        if bio is not None:
            member.bio = clean_bio(bio)
    except ValueError as exc:
        raise ValidationFailed(str(exc)) from exc
    await session.flush()
    return member


async def sign_out_everywhere(session: AsyncSession, member: Member, *, keep_id: int | None) -> int:
    """Every token and browser session of the member but `keep_id`; how many ended."""
    return await TokenRepository(session).delete_for_member(member.id, keep_id=keep_id)


@dataclass(frozen=True)
class IssuedReset:
    member: Member
    secret: str
    url: str
    expires_at: datetime


def reset_url(member: Member, secret: str) -> str:
    return f"{member.community.base_url.rstrip('/')}/reset/{secret}"


async def issue_reset(session: AsyncSession, steward: Member, username: str) -> IssuedReset:
    """A one-time link for `username` to choose a new password; earlier links stop working."""
    member = await member_of_community(session, steward, username)
    if not member.is_active:
        raise Conflict("reactivate this member before making a password link")
    resets = PasswordResetRepository(session)
    await resets.delete_unused_for_member(member.id)
    secret = secrets.token_urlsafe(32)
    now = utcnow()
    reset = await resets.add(
        PasswordReset(
            member_id=member.id,
            token_hash=token_digest(secret),
            created_by_id=steward.id,
            created_at=now,
            expires_at=now + RESET_LIFETIME,
        )
    )
    return IssuedReset(member, secret, reset_url(member, secret), reset.expires_at)


async def usable_reset(session: AsyncSession, secret: str) -> PasswordReset | None:
    if not secret or len(secret) > 256:
        return None
    reset = await PasswordResetRepository(session).get_usable(token_digest(secret), utcnow())
    return reset if reset is not None and reset.member.is_active else None


async def use_reset(session: AsyncSession, secret: str, new_password: str) -> Member:
    """Set the password and end every session and token the member had."""
    if await usable_reset(session, secret) is None:
        raise BadRequest(INVALID_RESET)
    try:
        check_password(new_password)
    except ValueError as exc:
        raise ValidationFailed(str(exc)) from exc
    claimed = await PasswordResetRepository(session).claim(token_digest(secret), utcnow())
    if claimed is None:
        raise BadRequest(INVALID_RESET)
    member = claimed.member
    member.password_hash = hash_password(new_password)
    await TokenRepository(session).delete_for_member(member.id)
    await session.flush()
    return member
