"""Key rotation: a community gets a new key pair, and everyone who verifies it hears.

The new key signs from the moment the rotation commits (deliveries read the
sender's key when they are claimed). The old public key is kept as retired
and published beside the new one (`retiredKeys` in the actor document) for
a grace period, so that a message signed just before the rotation, or by a
process that had not yet seen it, still verifies at peers that read it.
Followers and partners are sent an `Update` of the actor, so they refresh
their copy of our key now rather than at the first signature that fails
with the old one (which they would recover from anyway: a receiver
refetches the actor when a signature does not verify with its cached key).
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from federation.keys import generate_key_pair
from federation.vocab import PUBLIC
from node.domain import urls
from node.protocol.documents import actor_document
from node.protocol.publishing import send
from node.protocol.recipients import follower_inboxes, partner_inboxes
from storage.models import Community, utcnow
from storage.repositories.keys import RetiredKeyRepository


def new_key_id(actor_id: str, now: datetime) -> str:
    """A key id never used before, readable as when it was made."""
    return f"{actor_id}#key-{now:%Y%m%d%H%M%S}-{secrets.token_hex(2)}"


async def rotate_key(
    session: AsyncSession, community: Community, grace: timedelta, now: datetime | None = None
) -> int:
    """Give local `community` a new key pair in the caller's transaction and queue
    the actor `Update`; returns how many inboxes it is queued for."""
    if not community.is_local:
        raise ValueError(f"{community.ap_id} is not one of ours")
    now = now or utcnow()
    keys = RetiredKeyRepository(session)
    await keys.prune(now)
    await keys.retire(community, now, grace)
    private_pem, public_pem = generate_key_pair()
    community.key_id = new_key_id(community.ap_id, now)
    community.private_key_pem = private_pem
    community.public_key_pem = public_pem
    community.updated_at = now
    await session.flush()
    partners = await partner_inboxes(session, community)
    inboxes = set(await follower_inboxes(session, community)) | set(partners.values())
    document = await actor_document(session, community)
    followers = community.followers_url or urls.followers(community.ap_id)
    # Addressed as public, partners not named: one body goes to all of them, and
    # no partner may learn who the others are. The actor document is public anyway.
    await send(session, community, "Update", document, inboxes, to=[PUBLIC], cc=[followers])
    return len(inboxes)
