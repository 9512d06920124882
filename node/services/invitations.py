"""Joining by invitation: a steward makes a single-use link, a person signs up with it.

The link carries a random secret; only its SHA-256 is stored, as for API
tokens, so a copy of the database cannot be used to sign anyone up. A list
shows invitations by id, and revoking takes either the id or the secret.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from node.domain.people import (
    INVITE_DEFAULT_HOURS,
    INVITE_MAX_HOURS,
    InvitationState,
    clean_display_name,
    invitation_state,
)
from node.errors import BadRequest, Conflict, NotFound, ValidationFailed
from node.services.accounts import check_new_account, hash_password, token_digest
from storage.models import Community, Invitation, Member, utcnow
from storage.paging import Position
from storage.repositories import MemberRepository
from storage.repositories.invitations import InvitationRepository
from storage.states import Role

INVALID_INVITE = "this invitation is unknown, used, revoked or expired; ask a steward for a new one"
INVITE_ID_LENGTH = 32


def join_url(community: Community, secret: str) -> str:
    return f"{community.base_url.rstrip('/')}/join/{secret}"


@dataclass(frozen=True)
class IssuedInvitation:
    invitation: Invitation
    secret: str
    url: str


async def create_invitation(
    session: AsyncSession, steward: Member, role: str, expires_in_hours: int | None
) -> IssuedInvitation:
    if role not in (Role.MEMBER, Role.STEWARD):
        raise ValidationFailed("role must be member or steward")
    hours = INVITE_DEFAULT_HOURS if expires_in_hours is None else expires_in_hours
    if not 1 <= hours <= INVITE_MAX_HOURS:
        raise ValidationFailed(f"an invitation lasts from 1 to {INVITE_MAX_HOURS} hours")
    secret = secrets.token_urlsafe(32)
    now = utcnow()
    invitation = await InvitationRepository(session).add(
        Invitation(
            community_id=steward.community_id,
            token_hash=token_digest(secret),
            role=role,
            created_by_id=steward.id,
            created_at=now,
            expires_at=now + timedelta(hours=hours),
        )
    )
    return IssuedInvitation(invitation, secret, join_url(steward.community, secret))


async def list_invitations(
    session: AsyncSession, steward: Member, after: Position | None, limit: int
) -> list[Invitation]:
    return await InvitationRepository(session).page(steward.community_id, after, limit)


async def find_invitation(session: AsyncSession, steward: Member, key: str) -> Invitation | None:
    """By id (what the list shows) or by the secret (what the link carries)."""
    repo = InvitationRepository(session)
    if len(key) == INVITE_ID_LENGTH and all(c in "0123456789abcdef" for c in key):
        found = await repo.get(steward.community_id, key)
        if found is not None:
            return found
    found = await repo.get_by_hash(token_digest(key))
    return found if found is not None and found.community_id == steward.community_id else None


async def revoke_invitation(session: AsyncSession, steward: Member, key: str) -> Invitation:
    """Revoked from now on; revoking twice is harmless, a used invitation cannot be."""
    invitation = await find_invitation(session, steward, key)
    if invitation is None:
        raise NotFound("no such invitation")
    if invitation.revoked_at is not None:
        return invitation
    revoked = await InvitationRepository(session).revoke(invitation, utcnow())
    if not revoked and invitation.used_at is not None:
        raise Conflict("this invitation has been used already; deactivate the member instead")
    return invitation


async def usable_invitation(session: AsyncSession, secret: str) -> Invitation | None:
    """The invitation a sign-up link names, while it can still be used."""
    if not secret or len(secret) > 256:
        return None
    invitation = await InvitationRepository(session).get_by_hash(token_digest(secret))
    if invitation is None or invitation_state(invitation, utcnow()) != InvitationState.UNUSED:
        return None
    return invitation


async def register(
    session: AsyncSession, secret: str, username: str, password: str, display_name: str
) -> Member:
    """Create the member the invitation allows, or nothing at all.

    The invitation is checked first (a bad link is the first thing to tell),
    then the account rules, then it is claimed in one conditional UPDATE and
    the member added in the same transaction: if the name turns out to be
    taken, the caller's rollback leaves the invitation unused.
    """
    invitation = await usable_invitation(session, secret)
    if invitation is None:
        raise BadRequest(INVALID_INVITE)
    try:
        normal = check_new_account(username, password)
        shown = clean_display_name(display_name)
    except ValueError as exc:  # AccountError is one
        raise ValidationFailed(str(exc)) from exc
    members = MemberRepository(session)
    if await members.get_by_username(invitation.community_id, normal) is not None:
        raise Conflict(f"the username {normal!r} is taken; choose another")
    now = utcnow()
    claimed = await InvitationRepository(session).claim(invitation.token_hash, now)
    if claimed is None:
        raise BadRequest(INVALID_INVITE)
    member = Member(
        community_id=claimed.community_id,
        username=normal,
        display_name=shown,
        role=claimed.role,
        password_hash=hash_password(password),
        created_at=now,
    )
    try:
        async with session.begin_nested():  # a lost race on the name leaves the session usable
            await members.add(member)
    except IntegrityError as exc:
        raise Conflict(f"the username {normal!r} is taken; choose another") from exc
    claimed.used_by_id = member.id
    await session.flush()
    await session.refresh(member, ["community"])
    return member
