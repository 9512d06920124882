"""Creating the communities a node hosts."""

from __future__ import annotations

import re

from sqlalchemy.ext.asyncio import AsyncSession

from federation.keys import generate_key_pair
from node.config import NodeConfig
from node.domain import urls
from node.protocol.publishing import publish_actor_update
from storage.models import Community
from storage.repositories import CommunityRepository

SLUG_PATTERN = re.compile(r"^[a-z0-9][a-z0-9_-]{0,62}$")
LOCATION_DECIMALS = 2  # about 1.1 km: a community's place, never a doorstep


class CommunityError(ValueError):
    """The community cannot be created as asked."""


def parse_location(text: str) -> tuple[float, float]:
    try:
        lat_text, lon_text = text.split(",")
        lat, lon = float(lat_text), float(lon_text)
    except ValueError as exc:
        raise CommunityError(f"location must be LAT,LON, got {text!r}") from exc
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise CommunityError("latitude must be within ±90 and longitude within ±180")
    return lat, lon


def coarse(value: float | None) -> float | None:
    return None if value is None else round(value, LOCATION_DECIMALS)


async def create_local_community(
    session: AsyncSession,
    config: NodeConfig,
    *,
    slug: str,
    name: str,
    description: str = "",
    location: tuple[float, float] | None = None,
) -> Community:
    if not SLUG_PATTERN.match(slug):
        raise CommunityError("slug must be lowercase letters, digits, '-' or '_' (max 63)")
    repo = CommunityRepository(session)
    if await repo.get_local_by_slug(slug) is not None:
        raise CommunityError(f"community {slug!r} already exists on this node")
    private_pem, public_pem = generate_key_pair()
    ap_id = urls.actor_id(config.base_url, slug)
    community = Community(
        ap_id=ap_id,
        is_local=True,
        slug=slug,
        host=config.host,
        name=name,
        description=description,
        latitude=coarse(location[0]) if location else None,
        longitude=coarse(location[1]) if location else None,
        base_url=config.base_url,
        inbox_url=urls.actor_inbox(ap_id),
        shared_inbox_url=urls.shared_inbox(config.base_url),
        outbox_url=urls.outbox(ap_id),
        followers_url=urls.followers(ap_id),
        key_id=urls.key_id(ap_id),
        public_key_pem=public_pem,
        private_key_pem=private_pem,
    )
    return await repo.add(community)


async def set_discoverable(session: AsyncSession, community: Community, discoverable: bool) -> None:
    """Whether the community is listed in directories: ours, and (through its actor
    document and our NodeInfo) other nodes', which drop it at their next refresh;
    followers and partners hear of it at once (an actor `Update`)."""
    row = await CommunityRepository(session).get(community.id)
    if row is None or not row.is_local:
        raise CommunityError("not a community of this node")
    if row.is_discoverable == discoverable:
        return
    row.is_discoverable = discoverable
    await session.flush()
    await publish_actor_update(session, row)
