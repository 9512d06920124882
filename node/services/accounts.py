"""Members, passwords and tokens. Passwords are argon2id; tokens are stored hashed."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import AuthToken, Community, Member, utcnow
from storage.repositories import MemberRepository, TokenRepository

ROLES = ("member", "steward")
API_TOKEN_LIFETIME = timedelta(days=90)
SESSION_LIFETIME = timedelta(days=14)

_hasher = PasswordHasher()
# Verifying against this keeps unknown-user logins as slow as wrong-password ones.
_DUMMY_HASH = _hasher.hash("not a real password")


class AccountError(ValueError):
    """A member cannot be created as asked (duplicate name, bad role)."""


@dataclass(frozen=True)
class IssuedToken:
    secret: str
    csrf_token: str | None
    expires_at: datetime


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def token_digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


async def create_member(
    session: AsyncSession, community: Community, username: str, password: str, role: str
) -> Member:
    if role not in ROLES:
        raise AccountError(f"unknown role {role!r}")
    members = MemberRepository(session)
    if await members.get_by_username(community.id, username) is not None:
        raise AccountError(f"member {username!r} already exists")
    member = Member(
        community_id=community.id,
        username=username,
        role=role,
        password_hash=hash_password(password),
    )
    return await members.add(member)


async def authenticate(
    session: AsyncSession, community: Community, username: str, password: str
) -> Member | None:
    member = await MemberRepository(session).get_by_username(community.id, username)
    if member is None:
        verify_password(_DUMMY_HASH, password)
        return None
    return member if verify_password(member.password_hash, password) else None


async def issue_token(session: AsyncSession, member: Member, kind: str) -> IssuedToken:
    secret = secrets.token_urlsafe(32)
    lifetime = SESSION_LIFETIME if kind == "session" else API_TOKEN_LIFETIME
    expires_at = utcnow() + lifetime
    csrf = secrets.token_urlsafe(24) if kind == "session" else None
    await TokenRepository(session).add(
        AuthToken(
            member_id=member.id,
            token_hash=token_digest(secret),
            kind=kind,
            csrf_token=csrf,
            expires_at=expires_at,
        )
    )
    return IssuedToken(secret=secret, csrf_token=csrf, expires_at=expires_at)


async def resolve_token(session: AsyncSession, secret: str, kind: str) -> AuthToken | None:
    return await TokenRepository(session).get_valid(token_digest(secret), kind, utcnow())


async def revoke_token(session: AsyncSession, secret: str) -> None:
    await TokenRepository(session).delete(token_digest(secret))
