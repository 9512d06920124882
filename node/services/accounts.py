"""Members, passwords and tokens. Passwords are argon2id; tokens are stored hashed."""

from __future__ import annotations

import functools
import hashlib
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import AuthToken, Community, Member, utcnow
from storage.repositories import MemberRepository, TokenRepository

ROLES = ("member", "steward")
USERNAME_PATTERN = re.compile(r"[a-z0-9_]{2,32}")
MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024
MAX_USERNAME_LENGTH = 64  # what sign-in looks up; names made before the rule may be longer
API_TOKEN_LIFETIME = timedelta(days=90)
SESSION_LIFETIME = timedelta(days=14)

_hasher = PasswordHasher()


@functools.cache
def _dummy_hash() -> str:
    """Verifying against this keeps unknown-user logins as slow as wrong-password ones.

    Made on first use rather than at import: hashing is deliberately slow.
    """
    return _hasher.hash("not a real password")


class AccountError(ValueError):
    """A member cannot be created as asked (duplicate name, bad role, weak password)."""


def normalize_username(username: str) -> str:
    """Usernames are compared lower-cased: `Ada` and `ada` are one person."""
    return username.strip().lower()


def check_username(username: str) -> str:
    """The rule for a new username; returns it as it is stored."""
    normal = normalize_username(username)
    if not USERNAME_PATTERN.fullmatch(normal):
        raise AccountError("a username has 2 to 32 characters: letters a-z, digits and underscores")
    return normal


def check_password(password: str) -> None:
    """The one password rule, for every way a password is set (CLI, API)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise AccountError(f"a password needs at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise AccountError(f"a password has at most {MAX_PASSWORD_LENGTH} characters")
    if "\x00" in password:
        raise AccountError("a password cannot contain NUL characters")


def check_new_account(username: str, password: str) -> str:
    """Both rules at once, before anything is created; returns the stored username."""
    normal = check_username(username)
    check_password(password)
    return normal


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
    session: AsyncSession,
    community: Community,
    username: str,
    password: str,
    role: str,
    *,
    is_operator: bool = False,
) -> Member:
    if role not in ROLES:
        raise AccountError(f"unknown role {role!r}")
    username = check_new_account(username, password)
    members = MemberRepository(session)
    if await members.get_by_username(community.id, username) is not None:
        raise AccountError(f"member {username!r} already exists")
    member = Member(
        community_id=community.id,
        username=username,
        role=role,
        password_hash=hash_password(password),
        is_operator=is_operator,
    )
    return await members.add(member)


def _plausible(username: str, password: str) -> bool:
    """Input no account can match is refused before it reaches the database
    (PostgreSQL rejects NUL in text, and a 10 kB "username" helps nobody)."""
    return (
        0 < len(username) <= MAX_USERNAME_LENGTH
        and 0 < len(password) <= MAX_PASSWORD_LENGTH
        and username.isprintable()
        and "\x00" not in password
    )


async def find_member(session: AsyncSession, community: Community, username: str) -> Member | None:
    """By the lower-cased name; names stored before that rule are still found as typed."""
    members = MemberRepository(session)
    member = await members.get_by_username(community.id, normalize_username(username))
    if member is None and username != normalize_username(username):
        member = await members.get_by_username(community.id, username)
    return member


async def authenticate(
    session: AsyncSession, community: Community, username: str, password: str
) -> Member | None:
    member = None
    if _plausible(username, password):
        member = await find_member(session, community, username)
    if member is None:
        verify_password(_dummy_hash(), password)
        return None
    if not verify_password(member.password_hash, password):
        return None
    return member if member.is_active else None


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
    """The live token for `secret`; none for a deactivated member, whatever is left of theirs."""
    token = await TokenRepository(session).get_valid(token_digest(secret), kind, utcnow())
    if token is None or not token.member.is_active:
        return None
    return token


async def revoke_token(session: AsyncSession, secret: str) -> None:
    await TokenRepository(session).delete(token_digest(secret))


async def revoke_token_of(session: AsyncSession, member: Member, token_id: int) -> bool:
    """Only the member's own: someone else's token id is as good as unknown."""
    tokens = TokenRepository(session)
    if await tokens.get_for_member(token_id, member.id) is None:
        return False
    await tokens.delete_by_id(token_id)
    return True


async def change_password(
    session: AsyncSession, member: Member, current: str, new: str, *, keep: AuthToken | None
) -> bool:
    """False when `current` is wrong. Otherwise the new password holds and every
    token and session of the member but `keep` (the one asking) stops working:
    whoever knew the old password may have made some."""
    if not verify_password(member.password_hash, current):
        return False
    check_password(new)
    member.password_hash = hash_password(new)
    await TokenRepository(session).delete_for_member(
        member.id, keep_id=keep.id if keep is not None else None
    )
    return True
