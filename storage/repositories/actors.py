"""Remote actors we have fetched, and the domains we refuse to talk to.

Remote actors live in `communities` beside our own (`is_local` False), told
apart by `actor_type`, so that a Mastodon user who follows us and a partner
community are found by the same key-id and actor-id lookups. Writing one is an
upsert that can never touch a local community: a remote document that claims
one of our ids must not replace our keys.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import cast
from urllib.parse import urlsplit

from sqlalchemy import Table, delete, event, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from storage import dialect
from storage.models import BlockedDomain, Community, utcnow

MAX_URL_LENGTH = 2048
MAX_HOST_LENGTH = 255
MAX_SLUG_LENGTH = 64
MAX_NAME_LENGTH = 200
_COMMUNITIES = cast(Table, Community.__table__)
_BLOCKS = cast(Table, BlockedDomain.__table__)


@dataclass(frozen=True)
class RemoteActorData:
    """What we keep of a remote actor document; `node` fills it from a parsed Actor."""

    ap_id: str
    actor_type: str
    inbox_url: str
    preferred_username: str | None = None
    name: str | None = None
    description: str = ""
    latitude: float | None = None
    longitude: float | None = None
    shared_inbox_url: str | None = None
    outbox_url: str | None = None
    followers_url: str | None = None
    key_id: str | None = None
    public_key_pem: str | None = None
    public_offer_count: int = 0
    public_need_count: int = 0
    discoverable: bool = False
    """Listed in directories only when the actor says `discoverable: true` (as Mastodon)."""


def _clean(text: str | None, limit: int | None = None) -> str:
    """Remote text fit for any column: no NUL (PostgreSQL refuses it), bounded length."""
    value = (text or "").replace("\x00", "")
    return value[:limit] if limit is not None else value


def _url(value: str | None, what: str) -> str | None:
    """URLs are ids: truncating one would make it another's, so refuse instead."""
    if value is None:
        return None
    if len(value) > MAX_URL_LENGTH or "\x00" in value:
        raise ValueError(f"{what} is not a storable URL")
    return value


def _derived_slug(ap_id: str, preferred_username: str | None) -> str:
    """preferredUsername, else the last path segment of the id, else the host."""
    if preferred_username and preferred_username.strip():
        return _clean(preferred_username.strip(), MAX_SLUG_LENGTH)
    parts = urlsplit(ap_id)
    segments = [segment for segment in parts.path.split("/") if segment]
    return _clean(segments[-1] if segments else parts.hostname, MAX_SLUG_LENGTH)


def _row_values(data: RemoteActorData, fetched_at: datetime) -> dict[str, object]:
    parts = urlsplit(data.ap_id)
    host = parts.netloc.rpartition("@")[2].lower()
    if not host or len(host) > MAX_HOST_LENGTH:
        raise ValueError(f"actor id {data.ap_id[:200]!r} has no storable host")
    slug = _derived_slug(data.ap_id, data.preferred_username)
    return {
        "ap_id": _url(data.ap_id, "actor id"),
        "is_local": False,
        "actor_type": _clean(data.actor_type, 32),
        "slug": slug,
        "host": host,
        "name": _clean(data.name or slug, MAX_NAME_LENGTH),
        "description": _clean(data.description),
        "latitude": data.latitude,
        "longitude": data.longitude,
        "base_url": f"{parts.scheme}://{host}",
        "inbox_url": _url(data.inbox_url, "inbox"),
        "shared_inbox_url": _url(data.shared_inbox_url, "shared inbox"),
        "outbox_url": _url(data.outbox_url, "outbox"),
        "followers_url": _url(data.followers_url, "followers"),
        "key_id": _url(data.key_id, "key id"),
        "public_key_pem": _clean(data.public_key_pem) if data.public_key_pem else None,
        "public_offer_count": data.public_offer_count,
        "public_need_count": data.public_need_count,
        "is_discoverable": data.discoverable,
        "fetched_at": fetched_at,
        "updated_at": fetched_at,
    }


class RemoteActorRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def upsert(
        self, data: RemoteActorData, *, fetched_at: datetime | None = None
    ) -> Community:
        """Insert or refresh a remote actor; race-safe, and never rewrites a local row.

        Returns the stored row: the refreshed remote actor, or, when `ap_id`
        is one of our own communities, that community unchanged. Raises
        `ValueError` for a document whose ids cannot be stored as they are.
        """
        values = _row_values(data, fetched_at or utcnow())
        insert = dialect.conflict_insert(self.session, _COMMUNITIES).values(
            **values, created_at=values["fetched_at"]
        )
        changes = {key: value for key, value in values.items() if key != "ap_id"}
        stmt = insert.on_conflict_do_update(
            index_elements=["ap_id"],
            set_=changes,
            where=Community.is_local.is_(False),
        )
        await self.session.execute(stmt)
        row = await self.get_by_ap_id(data.ap_id)
        if row is None:  # pragma: no cover - the row was just written
            raise LookupError(data.ap_id)
        return row

    async def get_by_ap_id(self, ap_id: str) -> Community | None:
        result = await self.session.execute(
            select(Community)
            .where(Community.ap_id == ap_id)
            .execution_options(populate_existing=True)
        )
        return result.scalar_one_or_none()

    async def get_by_key_id(self, key_id: str) -> Community | None:
        """The actor (local or remote) that publishes `key_id`."""
        result = await self.session.execute(
            select(Community)
            .where(Community.key_id == key_id)
            .order_by(Community.is_local.desc(), Community.id)
            .limit(1)
            .execution_options(populate_existing=True)
        )
        return result.scalar_one_or_none()


# --- blocked domains -------------------------------------------------------------


def _split_port(host: str) -> tuple[str, str | None]:
    """`name` and `port` of `host`, `host:port`, `[v6]` or `[v6]:port`."""
    if host.startswith("["):
        name, _, rest = host[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else None
        return name, port or None
    if host.count(":") == 1:
        name, _, port = host.partition(":")
        return name, port if port.isdigit() else None
    return host, None


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def _one_spelling(name: str) -> str:
    """An IP literal in its compressed form, a name in ASCII (punycode).

    URLs carry the same host in several spellings (`[2001:db8:0::1]`,
    `bücher.example` or `xn--bcher-kva.example`); a block must cover them all.
    """
    try:
        return ipaddress.ip_address(name).compressed
    except ValueError:
        pass
    if name.isascii():
        return name
    try:
        return name.encode("idna").decode("ascii")
    except UnicodeError:
        return name


def _unicode_spelling(name: str) -> str:
    """`name` with punycode labels decoded: blocks stored before names were kept
    in ASCII are written that way."""
    if "xn--" not in name:
        return name
    try:
        return name.encode("ascii").decode("idna")
    except UnicodeError:
        return name


def normalize_domain(domain: str) -> str:
    """How a block is written down: lower case, no trailing dot, one spelling of
    an IP or internationalised name (`_one_spelling`), IPv6 in brackets."""
    text = domain.strip().lower()
    name, port = _split_port(text)
    name = _one_spelling(name.rstrip("."))
    if not name or any(char in "/@" or char.isspace() or not char.isprintable() for char in name):
        raise ValueError(f"not a domain: {domain[:100]!r}")
    if ":" in name:
        name = f"[{name}]"
    return f"{name}:{port}" if port else name


def block_candidates(host: str) -> list[str]:
    """Every block entry that would cover `host`.

    A block on `example.com` covers all its ports and its subdomains (as
    fediverse operators expect of a domain block); one on `example.com:8443`
    covers that port only. A host given without a port is on a default
    one, so blocks on `:443` and `:80` cover it too.
    """
    try:
        normal = normalize_domain(host)
    except ValueError:
        return []
    name, port = _split_port(normal)
    candidates = _covering(name, port)
    legacy = _unicode_spelling(name)
    if legacy != name:
        candidates += [c for c in _covering(legacy, port) if c not in candidates]
    return candidates


def _covering(name: str, port: str | None) -> list[str]:
    bare = f"[{name}]" if ":" in name else name
    candidates = [f"{bare}:{port}"] if port else [f"{bare}:443", f"{bare}:80"]
    candidates.append(bare)
    if not _is_ip(name):
        labels = name.split(".")
        candidates.extend(".".join(labels[i:]) for i in range(1, len(labels)))
    return candidates


def host_is_blocked(blocked: frozenset[str] | set[str], host: str) -> bool:
    """The in-memory form of `BlockRepository.is_blocked`, for cached block lists."""
    return bool(blocked) and any(candidate in blocked for candidate in _candidates(host))


@lru_cache(maxsize=4096)
def _candidates(host: str) -> tuple[str, ...]:
    """`block_candidates`, cached: the inbox asks about the same few hosts all day."""
    return tuple(block_candidates(host))


class _BlockListVersion:
    """Counts committed block-list changes made by this process."""

    value = 0

    @classmethod
    def bump(cls, _session: Session) -> None:
        cls.value += 1


def block_list_version() -> int:
    """Changes after every committed block or unblock in this process.

    In-memory copies of the list (the inbox keeps one) compare it to know,
    without a query, that a block just added must apply at once. Changes
    made by other processes reach them through their own expiry.
    """
    return _BlockListVersion.value


class BlockRepository:
    """Blocked domains; `host` or `host:port`, with the matching `block_candidates` says."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def add(self, domain: str, reason: str = "") -> str:
        """Block `domain` (idempotent; a second block with a reason replaces the
        first's reason); returns it as stored."""
        normal = normalize_domain(domain)
        insert = dialect.conflict_insert(self.session, _BLOCKS).values(
            domain=normal, created_at=utcnow(), reason=reason
        )
        stmt = (
            insert.on_conflict_do_update(index_elements=["domain"], set_={"reason": reason})
            if reason
            else insert.on_conflict_do_nothing(index_elements=["domain"])
        )
        await self.session.execute(stmt)
        self._announce_on_commit()
        return normal

    async def remove(self, domain: str) -> bool:
        result = await self.session.execute(
            delete(BlockedDomain).where(BlockedDomain.domain == normalize_domain(domain))
        )
        self._announce_on_commit()
        return bool(getattr(result, "rowcount", 0))

    def _announce_on_commit(self) -> None:
        event.listen(self.session.sync_session, "after_commit", _BlockListVersion.bump, once=True)

    async def list(self) -> Sequence[BlockedDomain]:
        result = await self.session.execute(select(BlockedDomain).order_by(BlockedDomain.domain))
        return result.scalars().all()

    async def domains(self) -> frozenset[str]:
        """All blocked entries, for callers that cache the list in memory."""
        result = await self.session.execute(select(BlockedDomain.domain))
        return frozenset(result.scalars().all())

    async def is_blocked(self, host: str) -> bool:
        candidates = block_candidates(host)
        if not candidates:
            return False
        result = await self.session.execute(
            select(BlockedDomain.domain).where(BlockedDomain.domain.in_(candidates)).limit(1)
        )
        return result.first() is not None
