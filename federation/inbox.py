"""The inbox: accept a signed activity, store it, answer 202; handle it later.

Receiving does only what must happen before we answer (Takahē and
microblog.pub do the same): bound the body, check the media type and JSON,
refuse blocked domains, refuse a key on another host than the actor's (we
would otherwise fetch any URL an outsider names, signed), refuse hosts over
their rate, check the HTTP signature (made for this host) and that the
signer is the activity's actor, store the raw activity under its id (which
deduplicates retries), then answer 202 and wake the processor.

A refusal tells the sender what it did wrong, never what we found out on
the way: why a key could not be fetched (what a name resolves to, whether a
port answered, what status a server gave) is logged, and the sender reads
only that its signature could not be verified. Nothing a handler does can
slow the sender down or make it retry, and an activity stored is never lost
to a crash: the processor (`federation.inbox_processor`) claims stored
entries with a lease.

Everything that touches the node (storage, key lookup) is injected, so this
module knows aiohttp and the protocol and nothing else.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from datetime import timedelta
from typing import Any, Final, Protocol

import orjson
from aiohttp import web

from federation.hosts import url_host
from federation.jsonld_fastpath import takes_fast_path
from federation.rate_limit import HostRateLimiter, retry_after_header
from federation.relay_forward import forwarded_announce
from federation.signatures import (
    DEFAULT_MAX_SKEW,
    KeyResolver,
    SignatureInfo,
    signature_key_id,
    verify_request,
)
from federation.vocab import Activity, VocabError, parse_activity

logger = logging.getLogger(__name__)

MAX_BODY_BYTES: Final = 1024 * 1024
MAX_JSON_DEPTH: Final = 32
"""Deeper than any real activity nests; refused before anything walks it."""
ACTIVITY_MEDIA_TYPES: Final = frozenset(
    {"application/activity+json", "application/ld+json", "application/json"}
)
MAX_ID_LENGTH: Final = 2048
MAX_TYPE_LENGTH: Final = 64
_READ_CHUNK_BYTES: Final = 64 * 1024
UNVERIFIED: Final = "signature could not be verified"
"""All a sender learns of a refused signature; the reason is in our log."""
STALE: Final = "signature date is too far from now"


# --- what the node provides ------------------------------------------------------


class InboxStore(Protocol):
    """Where accepted activities go; `node` backs it with the inbox log."""

    async def is_blocked(self, host: str) -> bool:
        """True when nothing from `host` (`name` or `name:port`) is accepted."""
        ...

    async def store(self, activity: Activity, raw: bytes, recipient: str | None) -> bool:
        """Persist the raw activity; False when its id is already stored."""
        ...


# --- refusals ------------------------------------------------------------------


class InboxRefusal(Exception):
    """Why a delivery was refused, as the status and JSON error we answer with.

    `retry_after` (seconds) is sent as `Retry-After` with a 429 or 503, so
    that an honest sender waits rather than gives up.
    """

    def __init__(
        self, status: int, code: str, message: str, *, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after = retry_after

    def response(self) -> web.Response:
        response = error_response(self.status, self.code, self.message)
        if self.retry_after is not None:
            response.headers["Retry-After"] = retry_after_header(self.retry_after)
        return response


def error_response(status: int, code: str, message: str) -> web.Response:
    """The node's error shape, `{"error": {"code", "message"}}`."""
    body = orjson.dumps({"error": {"code": code, "message": message}})
    return web.Response(status=status, body=body, content_type="application/json")


# --- the receiving pipeline, one check per function ------------------------------------


async def read_body(request: web.Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The body, refusing with 413 as soon as it is known to exceed `limit`.

    `Content-Length` is checked before reading; a chunked (or lying) body is
    read in pieces and dropped once one byte past `limit` has arrived.
    """
    declared = request.content_length
    if declared is not None and declared > limit:
        raise InboxRefusal(413, "payload_too_large", f"body of {declared} bytes exceeds {limit}")
    chunks: list[bytes] = []
    size = 0
    while size <= limit:
        chunk = await request.content.read(min(_READ_CHUNK_BYTES, limit + 1 - size))
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
    raise InboxRefusal(413, "payload_too_large", f"body exceeds {limit} bytes")


def check_media_type(request: web.Request) -> None:
    """AS2 media types, with or without `profile`/`charset`, and plain JSON (Pleroma)."""
    if request.content_type not in ACTIVITY_MEDIA_TYPES:
        raise InboxRefusal(
            415,
            "unsupported_media_type",
            f"expected application/activity+json, got {request.content_type}",
        )


def _nesting_exceeds(document: Any, limit: int) -> bool:
    """True when containers nest more than `limit` deep; iterative, so no recursion."""
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        node, depth = stack.pop()
        if depth > limit:
            return True
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


def parse_json(body: bytes, max_depth: int = MAX_JSON_DEPTH) -> dict[str, Any]:
    """The body as a JSON object no deeper than `max_depth`, else a 400."""
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InboxRefusal(400, "invalid_json", f"body is not JSON: {exc}") from None
    if not isinstance(document, dict):
        raise InboxRefusal(400, "invalid_json", "body must be a JSON object")
    # Depth cannot exceed the number of brackets; counting bytes is nearly free.
    if body.count(b"{") + body.count(b"[") > max_depth and _nesting_exceeds(document, max_depth):
        raise InboxRefusal(400, "invalid_json", f"JSON nests deeper than {max_depth} levels")
    return document


def claimed_actor_ids(document: Mapping[str, Any]) -> list[str]:
    """The actor ids a raw document names, read as loosely as AS2 allows."""
    value = document.get("actor")
    items = value if isinstance(value, list) else [value]
    ids = [item.get("id") if isinstance(item, dict) else item for item in items]
    return [item for item in ids if isinstance(item, str)]


async def check_not_blocked(
    store: InboxStore, key_id: str | None, document: Mapping[str, Any]
) -> None:
    """Refuse (403) when the signing key's host or the actor's host is blocked."""
    hosts = {url_host(key_id)} | {url_host(actor) for actor in claimed_actor_ids(document)}
    for host in sorted(h for h in hosts if h):
        if await store.is_blocked(host):
            logger.info("refused an activity from blocked domain %s", host)
            raise InboxRefusal(403, "domain_blocked", f"{host} is blocked on this node")


def check_key_on_actor_host(key_id: str | None, document: Mapping[str, Any]) -> None:
    """Refuse (401) a keyId on another host than the actor's, before it is fetched.

    A signature can only be checked by fetching its key, signed by us; were
    any URL accepted as a keyId, an outsider could have us send signed GETs
    anywhere it likes. A request without a keyId is left to the signature
    check, which refuses it without fetching anything.
    """
    if key_id is None:
        return
    key_host = url_host(key_id)
    actors = claimed_actor_ids(document)
    if key_host is None or not actors or any(url_host(a) != key_host for a in actors):
        logger.info("refused keyId %.300s: not on the host of actor %.300s", key_id, actors)
        raise InboxRefusal(401, "bad_signature", UNVERIFIED)


def rate_kind(document: Mapping[str, Any]) -> str:
    """Which budget an activity spends: a Follow (a partnership proposal or a
    plain follow) asks something of a steward or starts deliveries, so it is
    held to a much lower rate than the rest."""
    return "follow" if document.get("type") == "Follow" else "activity"


def _is_self_delete(document: Mapping[str, Any]) -> bool:
    """An actor announcing its own deletion: its key is usually gone by now."""
    actors = claimed_actor_ids(document)
    target = document.get("object")
    target = target.get("id") if isinstance(target, dict) else target
    return document.get("type") == "Delete" and len(actors) == 1 and actors[0] == target


def _envelope(document: dict[str, Any]) -> dict[str, Any]:
    """What the inbox reads of a document that needs JSON-LD: its id, type and
    actor as written, and its object by id. The processor normalises the whole
    document later and refuses it if JSON-LD reads these differently."""
    envelope: dict[str, Any] = {
        key: document[key] for key in ("id", "type", "actor") if key in document
    }
    target = document.get("object")
    if isinstance(target, dict) and isinstance(target.get("id"), str):
        target = target["id"]
    if target is not None:
        envelope["object"] = target
    return envelope


def read_activity(document: dict[str, Any]) -> Activity:
    """Parse the envelope, and refuse ids the log cannot keep.

    No JSON-LD processing happens while the sender waits: a document that the
    fast path cannot read as it stands (Lemmy's and Pleroma's contexts, say) is
    taken by its envelope and normalised by the processor after the 202.
    """
    try:
        if takes_fast_path(document):
            activity = parse_activity(document)
        else:
            activity = parse_activity(_envelope(document))
    except VocabError as exc:
        raise InboxRefusal(400, "invalid_activity", str(exc)) from None
    if len(activity.type) > MAX_TYPE_LENGTH or any(
        len(value) > MAX_ID_LENGTH for value in (activity.id, activity.actor)
    ):
        raise InboxRefusal(400, "invalid_activity", "activity id, actor or type is too long")
    if "\x00" in activity.id + activity.actor + activity.type:
        raise InboxRefusal(400, "invalid_activity", "activity id, actor or type holds a NUL")
    if url_host(activity.id) != url_host(activity.actor):
        # Otherwise one server could claim another's activity ids and have the
        # real activities dropped as duplicates.
        raise InboxRefusal(400, "invalid_activity", "activity id is not on the actor's host")
    return activity


class InboxReceiver:
    """The POST handler for an inbox: verify, store, 202, wake the processor.

    One instance serves the shared inbox (register `receiver.__call__`, which
    aiohttp sees as a coroutine function) and every per-community inbox
    (`receive(request, recipient=...)`, after the route found the community).
    `expected_host` is this node's configured host, which every signature
    must name; `limiter`, when given, holds each remote host to its rate.
    `observe(result, reason)` hears how each POST ended (`accepted`,
    `duplicate`, `dropped`, or `refused` with the error code), for metrics.
    `note_skew(host, seconds)`, when given, hears how far a verified sender's
    signed clock was from ours; its failure never refuses the activity.
    """

    def __init__(
        self,
        store: InboxStore,
        resolve_key: KeyResolver,
        wake: Callable[[], None],
        *,
        expected_host: str,
        max_skew: timedelta = DEFAULT_MAX_SKEW,
        max_body_bytes: int = MAX_BODY_BYTES,
        limiter: HostRateLimiter | None = None,
        observe: Callable[[str, str], None] | None = None,
        note_skew: Callable[[str, float], Awaitable[None]] | None = None,
        is_relay: Callable[[str], Awaitable[bool]] | None = None,
    ) -> None:
        self.store = store
        self.is_relay = is_relay
        self.note_skew = note_skew
        self.resolve_key = resolve_key
        self.wake = wake
        self.expected_host = expected_host
        self.max_skew = max_skew
        self.max_body_bytes = max_body_bytes
        self.limiter = limiter
        self.observe = observe or _ignore

    async def __call__(self, request: web.Request) -> web.Response:
        return await self.receive(request, recipient=None)

    async def receive(self, request: web.Request, *, recipient: str | None) -> web.Response:
        """Answer 202 for a stored (or already stored) activity, a JSON error otherwise."""
        try:
            body = await read_body(request, self.max_body_bytes)
            check_media_type(request)
            document = parse_json(body)
            key_id = signature_key_id(request.headers)
            await check_not_blocked(self.store, key_id, document)
            self._check_rate(rate_kind(document), url_host(key_id), spend=False)
            relay = await self._relay_signer(key_id, document)
            if relay is None:
                check_key_on_actor_host(key_id, document)
            activity = await self._verify(request, body, document, relay)
            if activity is not None and relay is not None:
                forwarded = forwarded_announce(relay, activity, document)
                activity, body = forwarded if forwarded is not None else (None, body)
            if activity is None:
                self.observe("dropped", "")
                return web.Response(status=202)
            self._check_rate(rate_kind(document), url_host(activity.actor), spend=True)
            stored = await self._store(activity, body, recipient)
        except InboxRefusal as refusal:
            self.observe("refused", refusal.code)
            response = refusal.response()
            if refusal.status == 413:
                response.force_close()
            return response
        if stored:
            self.wake()
        self.observe("accepted" if stored else "duplicate", "")
        return web.Response(status=202)

    def _check_rate(self, kind: str, host: str | None, *, spend: bool) -> None:
        """429 when `host` is over its rate. Before the signature is checked we only
        look (a forger must not spend a real host's budget); after, we spend."""
        if self.limiter is None or host is None:
            return
        wait = self.limiter.take(kind, host) if spend else self.limiter.wait_for(kind, host)
        if wait > 0:
            logger.info("refused a %s from %s: over its rate for %.0fs", kind, host, wait)
            raise InboxRefusal(
                429, "rate_limited", "too many activities from your server", retry_after=wait
            )

    async def _relay_signer(self, key_id: str | None, document: Mapping[str, Any]) -> str | None:
        """The relay whose key signed a body naming actors on other hosts, when the
        node subscribes to that relay (a Mastodon-style relay forwarding others'
        activities unchanged); None otherwise, and then the usual rules apply."""
        if self.is_relay is None or key_id is None:
            return None
        key_host = url_host(key_id)
        actors = claimed_actor_ids(document)
        if key_host is None or len(actors) != 1 or url_host(actors[0]) == key_host:
            return None
        relay = key_id.split("#", 1)[0]
        return relay if await self.is_relay(relay) else None

    async def _verify(
        self,
        request: web.Request,
        body: bytes,
        document: dict[str, Any],
        relay: str | None = None,
    ) -> Activity | None:
        """Signature, then envelope, then signer == actor (or, for `relay`, signer ==
        the relay: the caller reads what it forwarded). None: accept and drop."""
        url = request.rel_url
        try:
            info = await verify_request(
                request.method,
                url.raw_path,
                url.raw_query_string,
                request.headers,
                body,
                self.resolve_key,
                expected_host=self.expected_host,
                max_skew=self.max_skew,
            )
        except Exception:
            # The key store itself failed (not the key): a 401 would make the
            # sender give up on an activity it should retry.
            logger.exception("could not look up the key of a delivery")
            raise InboxRefusal(503, "unavailable", "keys cannot be checked now") from None
        if not info.valid:
            if _is_self_delete(document):
                # The actor is gone with its key; a refusal would only have
                # some servers retry a message that asks nothing of us.
                logger.debug("dropped unverifiable self-Delete from %s", info.key_id)
                return None
            raise _signature_refusal(info)
        activity = read_activity(document)
        if relay is not None:
            if info.key_owner != relay:
                raise InboxRefusal(401, "actor_mismatch", f"not signed by the relay {relay}")
            await self.record_clock(relay, info.skew_seconds)
            return activity
        if info.key_owner != activity.actor:
            raise InboxRefusal(
                401,
                "actor_mismatch",
                f"signed by {info.key_owner}, but the activity's actor is {activity.actor}",
            )
        await self.record_clock(activity.actor, info.skew_seconds)
        return activity

    async def record_clock(self, actor: str, skew: float | None) -> None:
        """Hand a verified sender's clock skew to `note_skew`; signed fetches use it too."""
        host = url_host(actor)
        if self.note_skew is None or skew is None or host is None:
            return
        try:
            await self.note_skew(host, skew)
        except Exception:
            logger.exception("could not record the clock skew of %s", host)

    async def _store(self, activity: Activity, body: bytes, recipient: str | None) -> bool:
        """Persist; a storage failure is a 503 so that the sender retries later."""
        try:
            return await self.store.store(activity, body, recipient)
        except Exception:
            logger.exception("could not store activity %s", activity.id)
            raise InboxRefusal(
                503, "unavailable", "the activity could not be stored; try again later"
            ) from None


def _ignore(_result: str, _reason: str) -> None:
    """The default `observe`: nobody is counting."""


def _signature_refusal(info: SignatureInfo) -> InboxRefusal:
    """401 with a reason that says nothing of our network; 503 when we were too busy
    to look the key up (the sender should retry, not give up on the activity)."""
    if info.retry_after is not None:
        return InboxRefusal(
            503, "unavailable", "keys cannot be checked now", retry_after=info.retry_after
        )
    return InboxRefusal(401, "bad_signature", STALE if info.expired else UNVERIFIED)
