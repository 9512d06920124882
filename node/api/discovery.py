"""Discovery endpoints: learning about other nodes and their communities."""

from __future__ import annotations

from node.api.converters import community_out
from node.api.router import api
from node.api.routing import ApiCall
from node.api.schemas import PeerLearned, PeerRequest
from node.errors import BadRequest, ValidationFailed
from node.protocol.context import FederationContext
from node.protocol.peers import PeerUnavailable, learn_peer, normalize_peer_url


@api.route(
    "POST",
    "/discovery/peers",
    summary="Learn the communities of another node and follow them",
    tag="discovery",
    auth="steward",
    status=201,
    body=PeerRequest,
    response=PeerLearned,
    errors=(400, 401, 403, 422),
)
async def add_peer(call: ApiCall[PeerRequest, None]) -> PeerLearned:
    try:
        url = normalize_peer_url(call.body.url)
    except ValueError as exc:
        raise ValidationFailed(str(exc)) from exc
    ctx = FederationContext.from_app(call.request.app)
    try:
        learned = await learn_peer(ctx, url, call.me.community)
    except PeerUnavailable as exc:
        raise BadRequest(str(exc)) from exc
    return PeerLearned(
        url=learned.base_url, communities=[community_out(c) for c in learned.communities]
    )
