"""Listings arriving at our inboxes, mirrored many at a time.

A busy partner or followed community delivers its listings in bursts. Handled
one by one, each `Create` costs its own transaction and a dozen round trips;
here a run of them (the processor hands over up to a batch of consecutive
ones) costs one transaction and a handful of statements: the senders are
resolved once each (and remembered), whether we may keep what each origin
sends is decided for all of them in two queries, and the notes are written
the way a backfill writes a page (`mirror_many`). The
rules are those of `handlers.on_create_or_update`, entry by entry, and every
entry gets the outcome the single handler would have given it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from aiohttp import web
from sqlalchemy.exc import IntegrityError

from federation.errors import FetchError
from federation.inbox_processor import InboundActivity, Retry
from federation.jsonld import normalize_activity
from federation.vocab import ACTOR_TYPES, Activity, Note, VocabError, parse_note
from node.protocol import exchanges
from node.protocol.context import FederationContext
from node.protocol.handlers import Ignored
from node.protocol.mirror import audience_of, mirror_many
from node.protocol.receiving import receivable
from node.protocol.remote_actors import ActorUnavailable, resolve_sender
from storage.models import Community
from storage.write_turns import write_turn


def is_listing_delivery(activity: Activity) -> bool:
    """A `Create` or `Update` carrying a listing: not an actor's own document, not an
    exchange's message or agreement (those go to their own handlers)."""
    obj = activity.object
    if activity.type not in ("Create", "Update") or not isinstance(obj, dict):
        return False
    if obj.get("type") in ACTOR_TYPES:
        return False
    return not (exchanges.is_exchange_message(activity) or exchanges.is_exchange_update(activity))


@dataclass(frozen=True, slots=True)
class _Listing:
    at: int
    note: Note
    origin: Community
    audience: str


class ListingBatch:
    """The inbox processor's `BatchHandler` for listing deliveries."""

    def __init__(self, app: web.Application) -> None:
        self._app = app

    def takes(self, activity: Activity) -> bool:
        return is_listing_delivery(activity)

    async def handle(self, batch: Sequence[InboundActivity]) -> list[BaseException | None]:
        ctx = FederationContext.from_app(self._app)
        results: list[BaseException | None] = [None] * len(batch)
        listings: list[_Listing] = []
        for at, inbound in enumerate(batch):
            try:
                listings.append(await _read(ctx, at, inbound.activity))
            except (ActorUnavailable, FetchError) as exc:
                results[at] = Retry(str(exc))
            except (Ignored, VocabError) as exc:
                results[at] = exc
        try:
            await _mirror(ctx, listings, results)
        except IntegrityError as exc:
            # Another writer stored one of them first: a later attempt reads theirs.
            retry = Retry(f"stored meanwhile by another writer: {exc.orig}")
            for listing in listings:
                results[listing.at] = retry
        return results


async def _read(ctx: FederationContext, at: int, activity: Activity) -> _Listing:
    note = parse_note(normalize_activity(activity.object))
    origin = await resolve_sender(ctx, activity.actor)
    audience = audience_of(note)
    if audience is None:
        raise Ignored(f"{note.id} is addressed to nobody we know how to show it to")
    return _Listing(at, note, origin, audience)


async def _mirror(
    ctx: FederationContext, listings: list[_Listing], results: list[BaseException | None]
) -> None:
    """One transaction decides and mirrors them all, in arrival order (a listing
    made public, then partner-only, ends partner-only); a partnership ending
    meanwhile waits for the commit."""
    if not listings:
        return
    async with write_turn(ctx.sessions), ctx.sessions() as session:
        allowed = await receivable(session, {(each.origin, each.audience) for each in listings})
        kept: list[_Listing] = []
        for listing in listings:
            if (listing.origin.id, listing.audience) in allowed:
                kept.append(listing)
            else:
                results[listing.at] = Ignored(
                    f"no community here follows or partners with {listing.origin.ap_id}"
                )
        written = await mirror_many(
            session,
            [(listing.note, listing.origin, listing.audience) for listing in kept],
            ctx.config.remote_images_per_source,
        )
        for at, reason in written.refused_at.items():
            results[kept[at].at] = Ignored(reason)
        await session.commit()
