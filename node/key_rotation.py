"""`commons-node rotate-key`: new key pairs for a node's communities, from the command line.

Works while the node runs: the rotation is one transaction, and the running
processes read the signing key from the database whenever they sign.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

from node.config import NodeConfig
from node.services.keys import rotate_key
from storage.engine import create_engine, create_session_factory
from storage.repositories import CommunityRepository


class RotationError(Exception):
    """Nothing was rotated; the message says why."""


async def rotate_keys(config: NodeConfig, slugs: Sequence[str] | None) -> list[str]:
    """Rotate the keys of the communities `slugs` (None: all of the node's); one line each."""
    grace = timedelta(days=config.key_grace_days)
    engine = create_engine(config.database_url)
    try:
        async with create_session_factory(engine)() as session:
            local = await CommunityRepository(session).list_local()
            if slugs is not None:
                unknown = sorted(set(slugs) - {c.slug for c in local})
                if unknown:
                    raise RotationError(f"no community {unknown[0]!r} on this node")
                local = [c for c in local if c.slug in slugs]
            lines = []
            for community in local:
                queued = await rotate_key(session, community, grace)
                lines.append(
                    f"{community.handle}: new key {community.key_id}; the old one verifies "
                    f"for {config.key_grace_days} more days; Update queued for {queued} inboxes"
                )
            await session.commit()
            return lines
    finally:
        await engine.dispose()
