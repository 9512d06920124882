"""Who is asking, for requests that arrive over federation (signed fetch)."""

from __future__ import annotations

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from node.services.visibility import Viewer
from storage.models import Community


async def viewer_for_request(
    request: web.Request, session: AsyncSession, community: Community
) -> Viewer:
    """Anonymous for now: only public listings are served until partnerships exist.

    Partnerships (a signed fetch by an active partner's actor sees `partners`
    listings) hook in here; until then nobody outside the node is a partner.
    """
    del request, session, community
    return Viewer.anonymous()
