"""The AS2 documents we send: actors, notes, activities, tombstones, collections.

The counterpart of `federation.vocab`, which reads what others send. Each
builder answers to what fediverse readers expect to receive (HTML `content`,
whole-second UTC timestamps, coordinates rounded before they leave) and puts
our context on the document, so no caller assembles wire JSON by hand.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from federation.contexts import default_context
from federation.html_text import plain_text_to_html
from federation.vocab import Attachment, Place

FEDERATED_COORDINATE_DECIMALS = 2
"""Two decimals is about 1 km: exact coordinates never leave the node."""


def _timestamp(moment: datetime) -> str:
    """Whole seconds in UTC with a Z: the form every fediverse parser accepts."""
    if moment.tzinfo is None:
        raise ValueError("refusing to publish a naive datetime; give it a timezone")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _without_context(value: Any) -> Any:
    """Embedded objects take their meaning from the outer document's context."""
    if isinstance(value, Mapping) and "@context" in value:
        return {key: item for key, item in value.items() if key != "@context"}
    return value


def place_document(place: Place) -> dict[str, Any]:
    """An AS2 Place with coordinates rounded to about 1 km before they leave."""
    document: dict[str, Any] = {
        "type": "Place",
        "latitude": round(place.latitude, FEDERATED_COORDINATE_DECIMALS),
        "longitude": round(place.longitude, FEDERATED_COORDINATE_DECIMALS),
    }
    if place.name:
        document["name"] = place.name
    if place.radius is not None:
        document["radius"] = place.radius
        document["units"] = "m"
    return document


def main_key_id(actor_id: str) -> str:
    return f"{actor_id}#main-key"


def build_actor_document(
    *,
    actor_id: str,
    preferred_username: str,
    name: str,
    description: str,
    inbox: str,
    outbox: str,
    followers: str,
    shared_inbox: str,
    public_key_pem: str,
    url: str,
    location: Place | None = None,
    public_offer_count: int = 0,
    public_need_count: int = 0,
    published: datetime | None = None,
    discoverable: bool = True,
    key_id: str | None = None,
    retired_keys: Sequence[tuple[str, str]] = (),
) -> dict[str, Any]:
    """A community as an AS2 Group, shaped like the actors Mastodon serves.

    `discoverable` is Mastodon's flag for "may be listed in directories";
    other Commons nodes read it the same way.

    `description` is plain text; AS2 `summary` is HTML, so it is converted
    here rather than trusted to every caller. `publicKey` is the one key
    signing now (`key_id`, by default `#main-key`); `retired_keys` (id, PEM)
    are earlier keys still in their grace period after a rotation, published
    as `retiredKeys` so that what was signed with them still verifies at
    peers that read it. Servers that do not read it see only `publicKey`.
    """
    document: dict[str, Any] = {
        "@context": default_context(),
        "id": actor_id,
        "type": "Group",
        "preferredUsername": preferred_username,
        "name": name,
        "summary": plain_text_to_html(description),
        "url": url,
        "inbox": inbox,
        "outbox": outbox,
        "followers": followers,
        "endpoints": {"sharedInbox": shared_inbox},
        "publicKey": {
            "id": key_id or main_key_id(actor_id),
            "owner": actor_id,
            "publicKeyPem": public_key_pem,
        },
        "manuallyApprovesFollowers": False,
        "discoverable": discoverable,
        "publicOfferCount": public_offer_count,
        "publicNeedCount": public_need_count,
    }
    if retired_keys:
        document["retiredKeys"] = [
            {"id": old_id, "owner": actor_id, "publicKeyPem": pem} for old_id, pem in retired_keys
        ]
    if location is not None:
        document["location"] = place_document(location)
    if published is not None:
        document["published"] = _timestamp(published)
    return document


def listing_content_html(title: str, description: str) -> str:
    """Title in bold, then the description: how a listing reads in Mastodon,
    which shows `content` and ignores a Note's `name`."""
    heading = f"<p><strong>{html.escape(title.strip(), quote=False)}</strong></p>"
    return heading + plain_text_to_html(description)


def build_note(
    *,
    note_id: str,
    attributed_to: str,
    title: str,
    description: str,
    to: Sequence[str],
    cc: Sequence[str],
    published: datetime,
    updated: datetime | None = None,
    kind: str | None = None,
    category: str | None = None,
    status: str | None = None,
    visibility: str | None = None,
    location: Place | None = None,
    url: str | None = None,
    author_name: str | None = None,
    attachments: Sequence[Attachment] = (),
) -> dict[str, Any]:
    """A listing as an AS2 Note. `summary` stays unset: Mastodon shows it as a
    content warning and would hide the listing behind it."""
    document: dict[str, Any] = {
        "@context": default_context(),
        "id": note_id,
        "type": "Note",
        "attributedTo": attributed_to,
        "name": title,
        "content": listing_content_html(title, description),
        "published": _timestamp(published),
        "to": list(to),
        "cc": list(cc),
    }
    extensions = {
        "kind": kind,
        "category": category,
        "status": status,
        "visibility": visibility,
        "authorName": author_name,
    }
    document.update({key: value for key, value in extensions.items() if value is not None})
    if updated is not None:
        document["updated"] = _timestamp(updated)
    if location is not None:
        document["location"] = place_document(location)
    if url is not None:
        document["url"] = url
    if attachments:
        document["attachment"] = [image_document(image) for image in attachments]
    return document


def image_document(image: Attachment) -> dict[str, Any]:
    """A photo as an AS2 `Image`: `name` is its alt text, as Mastodon reads it."""
    document: dict[str, Any] = {"type": "Image", "url": image.url}
    if image.media_type:
        document["mediaType"] = image.media_type
    if image.name:
        document["name"] = image.name
    if image.width:
        document["width"] = image.width
    if image.height:
        document["height"] = image.height
    return document


def build_activity(
    type: str,
    id: str,
    actor: str,
    object: str | Mapping[str, Any],
    to: Sequence[str] = (),
    cc: Sequence[str] = (),
    **extra: Any,
) -> dict[str, Any]:
    """An activity with our context. `extra` carries further AS2 properties
    (`published`, `partnership`, ...); datetimes are written as timestamps."""
    document: dict[str, Any] = {
        "@context": default_context(),
        "id": id,
        "type": type,
        "actor": actor,
        "object": _without_context(object),
        "to": list(to),
        "cc": list(cc),
    }
    for key, value in extra.items():
        document[key] = _timestamp(value) if isinstance(value, datetime) else value
    return document


def build_tombstone(
    id: str,
    *,
    former_type: str | None = None,
    deleted: datetime | None = None,
) -> dict[str, Any]:
    """What stands where a deleted listing was, served with 410 and sent in
    a Delete (whose builder drops the inner `@context`)."""
    document: dict[str, Any] = {"@context": default_context(), "id": id, "type": "Tombstone"}
    if former_type is not None:
        document["formerType"] = former_type
    if deleted is not None:
        document["deleted"] = _timestamp(deleted)
    return document


def ordered_collection(
    collection_id: str,
    *,
    total_items: int,
    first: str | None = None,
    last: str | None = None,
    ordered_items: Sequence[Any] | None = None,
) -> dict[str, Any]:
    """An OrderedCollection: paged (`first`/`last`) or, when small, inline."""
    document: dict[str, Any] = {
        "@context": default_context(),
        "id": collection_id,
        "type": "OrderedCollection",
        "totalItems": total_items,
    }
    if first is not None:
        document["first"] = first
    if last is not None:
        document["last"] = last
    if ordered_items is not None:
        document["orderedItems"] = [_without_context(item) for item in ordered_items]
    return document


def ordered_collection_page(
    page_id: str,
    *,
    part_of: str,
    ordered_items: Sequence[Any],
    next_page: str | None = None,
    prev_page: str | None = None,
) -> dict[str, Any]:
    """One page of an OrderedCollection; items newest first, as in outboxes."""
    document: dict[str, Any] = {
        "@context": default_context(),
        "id": page_id,
        "type": "OrderedCollectionPage",
        "partOf": part_of,
        "orderedItems": [_without_context(item) for item in ordered_items],
    }
    if next_page is not None:
        document["next"] = next_page
    if prev_page is not None:
        document["prev"] = prev_page
    return document
