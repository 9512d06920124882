"""Who is asking, for requests that arrive over federation (signed fetch).

A GET signed by an active partner's key sees what that community shares with
partners; anything else, signed or not, is treated as the public. The
signature must have been made for this node's own host (see
`federation.signatures`): a partner's signature over a request to some other
server, replayed here, is treated as no signature at all.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from federation.signatures import signature_key_id, verify_request
from node.appkeys import CONFIG
from node.domain.visibility import Viewer
from node.protocol.inbox import INBOX_RECEIVER
from storage.models import Community
from storage.repositories.partnerships import PartnershipRepository

log = logging.getLogger(__name__)


async def signed_actor(request: web.Request) -> str | None:
    """The actor whose key validly signed this request, for this node, if any."""
    if signature_key_id(request.headers) is None:
        return None
    config = request.app[CONFIG]
    receiver = request.app[INBOX_RECEIVER]
    info = await verify_request(
        request.method,
        request.rel_url.raw_path,
        request.rel_url.raw_query_string,
        request.headers,
        b"",
        receiver.resolve_key,
        expected_host=config.host,
        max_skew=timedelta(seconds=config.signature_max_skew_seconds),
    )
    if not info.valid:
        log.info("unverified signed fetch of %s: %s", request.path, info.reason)
        return None
    if info.key_owner is not None:
        await receiver.record_clock(info.key_owner, info.skew_seconds)
    return info.key_owner


async def viewer_for_request(
    request: web.Request, session: AsyncSession, community: Community
) -> Viewer:
    actor = await signed_actor(request)
    if actor is None:
        return Viewer.anonymous()
    repo = PartnershipRepository(session)
    partners = tuple(
        sorted(p.remote_community.ap_id for p in await repo.get_active_for_community(community.id))
    )
    return Viewer(remote_actor=actor, is_active_partner=actor in partners, partner_actors=partners)
