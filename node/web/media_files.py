"""`/media/{key}/{size}`: listing photos, served only to who may see their listing.

Members' browsers send their session cookie with image requests; API
clients may send their bearer token; a partner node fetches with a signed
GET. Whoever may not see the listing gets the same 404 as for a key that
does not exist. A key never changes content (a new photo gets a new key),
so a browser may keep a copy for a day, privately: a shared cache must not
hand a members-only photo to someone else.
"""

from __future__ import annotations

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from node.appkeys import CONFIG, SESSIONS
from node.domain.visibility import Viewer
from node.media.imaging import SIZES
from node.media.store import KEY_PATTERN, MediaStore
from node.protocol.audience import viewer_for_request
from node.services.accounts import resolve_token
from node.services.images import image_for_viewer
from node.web.sessions import load_session
from storage.models import Community, Member

routes = web.RouteTableDef()
CACHE_CONTROL = "private, max-age=86400, immutable"


async def _member(request: web.Request, db: AsyncSession) -> Member | None:
    session = await load_session(db, request)
    if session is not None:
        return session.member
    scheme, _, secret = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and secret.strip():
        token = await resolve_token(db, secret.strip(), "api")
        return token.member if token is not None else None
    return None


@routes.get("/media/{key}/{size}", name="media")
async def serve_media(request: web.Request) -> web.StreamResponse:
    key, size = request.match_info["key"], request.match_info["size"]
    if not KEY_PATTERN.match(key) or size not in SIZES:
        raise web.HTTPNotFound(text="There is no such image.")
    async with request.app[SESSIONS]() as db:
        member = await _member(request, db)

        async def viewer_of(community: Community) -> Viewer:
            return await viewer_for_request(request, db, community)

        image = await image_for_viewer(db, key, member, viewer_of)
    if image is None or image.media_type is None:
        raise web.HTTPNotFound(text="There is no such image.")
    path = MediaStore.of(request.app[CONFIG]).file(key, size, image.media_type)
    if path is None:
        raise web.HTTPNotFound(text="There is no such image.")
    response = web.FileResponse(
        path,
        headers={
            "Content-Type": image.media_type,
            "Cache-Control": CACHE_CONTROL,
            "Content-Disposition": "inline",
            "Cross-Origin-Resource-Policy": "same-origin",
        },
    )
    return response
