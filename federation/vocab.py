"""ActivityStreams 2 wire types, and the parsers that read other servers' documents.

Remote JSON is parsed once, at the boundary, into small frozen dataclasses so
that nothing past this module handles a remote dict or guesses at its shape.
AS2 lets most properties be a string, an object or a list of either; the
parsers accept every form and reduce it to one, and reject (with
`VocabError`) what no reading could make sense of.

Parsers expect a document that `federation.jsonld.normalize_activity` has put
in compact form under our context; they read only the names in `READ_TERMS`.
What we send is built in `federation.builders`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from federation.errors import FederationError
from federation.hosts import same_host

PUBLIC = "https://www.w3.org/ns/activitystreams#Public"
_PUBLIC_ALIASES = frozenset({PUBLIC, "as:Public", "Public"})

ACTOR_TYPES = frozenset({"Application", "Group", "Organization", "Person", "Service"})
NOTE_TYPES = frozenset({"Note", "Article", "Page"})
# Activities that mean nothing without an object; others may omit it.
_OBJECT_REQUIRED = frozenset(
    {"Accept", "Add", "Announce", "Block", "Create", "Delete", "Flag", "Follow"}
    | {"Like", "Move", "Offer", "Reject", "Remove", "Undo", "Update"}
)

READ_TERMS = frozenset(
    {"id", "type", "actor", "object", "to", "cc", "published", "updated", "partnership"}
    | {"attributedTo", "content", "contentMap", "name", "nameMap", "summary", "summaryMap"}
    | {"kind", "category", "status", "visibility", "location", "latitude", "longitude"}
    | {"url", "href", "preferredUsername", "inbox", "outbox", "followers", "endpoints"}
    | {"sharedInbox", "publicKey", "owner", "publicKeyPem", "publicOfferCount"}
    | {"publicNeedCount", "orderedItems", "items", "first", "next", "prev", "partOf"}
    | {"totalItems", "discoverable", "context", "result", "stipulates"}
    | {"satisfies", "provider", "receiver", "resourceQuantity", "effortQuantity", "hasUnit"}
    | {"hasNumericalValue", "providerMember", "receiverMember", "providerName", "receiverName"}
    | {"member", "memberName", "authorName", "retiredKeys"}
    | {"attachment", "mediaType", "width", "height"}
)
"""Every compact name a parser here reads (collections included, for callers
that page outboxes). The JSON-LD fast path trusts a document as-is only when
its context gives these names the meaning ours does, so a parser that starts
reading a new name must add it here; a test enforces that."""

MAX_RETIRED_KEYS = 8
"""More retired keys than rotations in a grace period would leave are not read."""


class VocabError(FederationError, ValueError):
    """A document does not have the shape AS2, or our dialect of it, requires.

    A `ValueError` because it is bad input; a `FederationError` so the inbox
    can answer 400 to the whole family of bad-input errors at once.
    """


@dataclass(frozen=True, slots=True)
class Place:
    latitude: float
    longitude: float
    name: str | None = None
    radius: float | None = None
    """Metres around the point the place may be (AS2 `radius`): how coarse it is."""


MAX_ATTACHMENTS = 8
"""Attachments read from one note; more are ignored (we keep fewer still)."""


@dataclass(frozen=True, slots=True)
class Attachment:
    """An image attached to a note: AS2 `Image` (or Mastodon's `Document` of an image)."""

    url: str
    media_type: str | None
    name: str | None
    width: int | None
    height: int | None


@dataclass(frozen=True, slots=True)
class Note:
    """A listing as it travels: an AS2 Note any fediverse reader can show."""

    id: str
    type: str
    attributed_to: str | None
    content: str
    name: str | None
    summary: str | None
    published: datetime | None
    updated: datetime | None
    to: tuple[str, ...]
    cc: tuple[str, ...]
    kind: str | None
    category: str | None
    status: str | None
    visibility: str | None
    location: Place | None
    url: str | None
    author_name: str | None = None
    attachments: tuple[Attachment, ...] = ()

    @property
    def is_public(self) -> bool:
        return is_public_audience(self.to + self.cc)


@dataclass(frozen=True, slots=True)
class Actor:
    id: str
    type: str
    preferred_username: str | None
    name: str | None
    summary: str | None
    inbox: str
    outbox: str | None
    followers: str | None
    shared_inbox: str | None
    public_key_id: str | None
    public_key_owner: str | None
    public_key_pem: str | None
    location: Place | None
    public_offer_count: int | None
    public_need_count: int | None
    url: str | None
    discoverable: bool | None = None
    retired_keys: tuple[tuple[str, str], ...] = ()
    """(key id, PEM) of earlier keys a Commons Node still publishes after a rotation."""

    def key_pem(self, key_id: str) -> str | None:
        """The PEM of `key_id` if this actor publishes it, current or retired."""
        if key_id == self.public_key_id:
            return self.public_key_pem
        return next((pem for old_id, pem in self.retired_keys if old_id == key_id), None)

    @property
    def delivery_inbox(self) -> str:
        """Where to POST: one request per remote server when it offers that."""
        return self.shared_inbox or self.inbox


@dataclass(frozen=True, slots=True)
class Activity:
    """An activity's envelope. `object` stays a dict when embedded, because
    what it must be parsed as depends on the activity's type."""

    id: str
    type: str
    actor: str
    object: str | dict[str, Any] | None
    to: tuple[str, ...]
    cc: tuple[str, ...]
    published: datetime | None
    partnership: bool
    raw: dict[str, Any] = field(compare=False, repr=False)

    @property
    def object_id(self) -> str | None:
        if isinstance(self.object, dict):
            object_id = self.object.get("id")
            return object_id if isinstance(object_id, str) else None
        return self.object


# --- reading -----------------------------------------------------------------


def _object(doc: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(doc, Mapping):
        raise VocabError(f"{what} must be a JSON object, got {type(doc).__name__}")
    return doc


def _literal(value: Any) -> Any:
    """Unwrap a list of at most one item (pyld compacts those away, and JSON-LD
    reads an empty list as no value) and a JSON-LD value object, which pyld
    leaves where a value carries a language or datatype our context lacks."""
    if isinstance(value, list) and len(value) <= 1:
        value = _first(value)
    if isinstance(value, Mapping) and "@value" in value:
        return value["@value"]
    return value


def _first(value: Any) -> Any:
    if isinstance(value, list):
        return value[0] if value else None
    return value


def _string(doc: Mapping[str, Any], key: str, what: str) -> str | None:
    value = _literal(doc.get(key))
    if value is None:
        return None
    if not isinstance(value, str):
        raise VocabError(f"{what}.{key} must be a string, got {type(value).__name__}")
    return value


def _language_string(doc: Mapping[str, Any], key: str, what: str) -> str | None:
    """`content`, else the first entry of `contentMap` (likewise name, summary)."""
    plain = _string(doc, key, what)
    if plain is not None:
        return plain
    by_language = doc.get(f"{key}Map")
    if isinstance(by_language, Mapping):
        for value in by_language.values():
            first = _first(value)
            if isinstance(first, str):
                return first
    return None


def is_http_url(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        parts = urlsplit(value)
        _ = parts.port  # raises on a malformed port
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _url(value: Any, what: str) -> str:
    if not isinstance(value, str):
        raise VocabError(f"{what} must be a URL string, got {type(value).__name__}")
    if not is_http_url(value):
        raise VocabError(f"{what} must be an http(s) URL, got {value[:200]!r}")
    return value


def _reference(value: Any, what: str) -> str | None:
    """An id given as a string, as an object with `id`, or as a Link's href."""
    value = _first(value)
    if value is None:
        return None
    if isinstance(value, Mapping):
        value = value.get("id", value.get("href"))
    return _url(value, what)


def _display_url(value: Any) -> str | None:
    """A link for humans: anything but http(s) (say `javascript:`) is dropped."""
    candidate = _first(value)
    if isinstance(candidate, Mapping):
        candidate = candidate.get("href", candidate.get("id"))
    return candidate if is_http_url(candidate) else None


def _audience(value: Any, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    items = value if isinstance(value, list) else [value]
    audience: list[str] = []
    for item in items:
        target = item.get("id") if isinstance(item, Mapping) else item
        if isinstance(target, str) and target in _PUBLIC_ALIASES:
            audience.append(PUBLIC)
        else:
            audience.append(_url(target, what))
    return tuple(audience)


def is_public_audience(values: Iterable[str] | str | None) -> bool:
    """True when an audience includes the public collection under any alias.

    pyld compacts the public IRI to `as:Public`, and some servers write
    `Public`; all three mean the same collection.
    """
    if values is None:
        return False
    if isinstance(values, str):
        values = (values,)
    return any(value in _PUBLIC_ALIASES for value in values)


def _datetime(doc: Mapping[str, Any], key: str, what: str) -> datetime | None:
    text = _string(doc, key, what)
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise VocabError(f"{what}.{key} is not an ISO 8601 date-time: {text[:60]!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _type(doc: Mapping[str, Any], what: str) -> str:
    value = _first(doc.get("type"))
    if not isinstance(value, str) or not value:
        raise VocabError(f"{what} has no type")
    return value


def _number(value: Any, what: str) -> float:
    value = _literal(value)
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise VocabError(f"{what} must be a number")
    try:
        return float(value)
    except ValueError:
        raise VocabError(f"{what} must be a number, got {str(value)[:40]!r}") from None


def _place(value: Any, what: str) -> Place | None:
    value = _first(value)
    if not isinstance(value, Mapping) or "latitude" not in value or "longitude" not in value:
        return None
    latitude = _number(value["latitude"], f"{what}.latitude")
    longitude = _number(value["longitude"], f"{what}.longitude")
    if not (-90.0 <= latitude <= 90.0 and -180.0 <= longitude <= 180.0):
        raise VocabError(f"{what} is outside the globe: {latitude}, {longitude}")
    return Place(latitude, longitude, _string(value, "name", what))


def _count(doc: Mapping[str, Any], key: str, what: str) -> int | None:
    value = _literal(doc.get(key))
    if value is None:
        return None
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise VocabError(f"{what}.{key} must be a non-negative integer")
    return value


def _flag(doc: Mapping[str, Any], key: str, what: str) -> bool:
    value = _literal(doc.get(key))
    if value is None:
        return False
    if not isinstance(value, bool):
        raise VocabError(f"{what}.{key} must be true or false")
    return value


def _same_origin(first: str, second: str) -> bool:
    a, b = urlsplit(first), urlsplit(second)
    return (a.scheme, a.hostname, a.port) == (b.scheme, b.hostname, b.port)


def _on_host(url: str | None, actor_id: str) -> str | None:
    """`url` when it is on the actor's server, else None (we never send or sign there)."""
    return url if url is not None and same_host(url, actor_id) else None


def parse_note(doc: Any) -> Note:
    """Read a Note (or an Article or Page, which fediverse readers treat alike)."""
    doc = _object(doc, "note")
    note_type = _type(doc, "note")
    if note_type not in NOTE_TYPES:
        raise VocabError(f"expected a Note, got {note_type!r}")
    return Note(
        id=_url(doc.get("id"), "note.id"),
        type=note_type,
        attributed_to=_reference(doc.get("attributedTo"), "note.attributedTo"),
        content=_language_string(doc, "content", "note") or "",
        name=_language_string(doc, "name", "note"),
        summary=_language_string(doc, "summary", "note"),
        published=_datetime(doc, "published", "note"),
        updated=_datetime(doc, "updated", "note"),
        to=_audience(doc.get("to"), "note.to"),
        cc=_audience(doc.get("cc"), "note.cc"),
        kind=_string(doc, "kind", "note"),
        category=_string(doc, "category", "note"),
        status=_string(doc, "status", "note"),
        visibility=_string(doc, "visibility", "note"),
        location=_place(doc.get("location"), "note.location"),
        url=_display_url(doc.get("url")),
        author_name=_string(doc, "authorName", "note"),
        attachments=_attachments(doc.get("attachment")),
    )


def _dimension(value: Any) -> int | None:
    value = _literal(value)
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 100_000:
        return None
    return value


def _attachment(value: Any) -> Attachment | None:
    """One image attachment, or None for anything else (a link, a video, a malformed
    entry): an attachment we cannot show never costs the listing itself."""
    if not isinstance(value, Mapping):
        return None
    kind = _first(value.get("type"))
    media_type = _literal(value.get("mediaType"))
    media_type = media_type.lower() if isinstance(media_type, str) else None
    if kind not in ("Image", "Document") or (kind == "Document" and not media_type):
        return None
    if media_type is not None and not media_type.startswith("image/"):
        return None
    url = _display_url(value.get("url"))
    name = _literal(value.get("name"))
    if url is None:
        return None
    return Attachment(
        url=url,
        media_type=media_type,
        name=name if isinstance(name, str) else None,
        width=_dimension(value.get("width")),
        height=_dimension(value.get("height")),
    )


def _attachments(value: Any) -> tuple[Attachment, ...]:
    items = value if isinstance(value, list) else [value]
    found = (_attachment(item) for item in items[: MAX_ATTACHMENTS * 4])
    return tuple(item for item in found if item is not None)[:MAX_ATTACHMENTS]


def _public_key(doc: Mapping[str, Any], actor_id: str) -> tuple[str | None, str | None, str | None]:
    """(id, owner, pem) of the actor's key, refusing a key claimed for someone else.

    The signature checker trusts the owner named here, so an actor document
    that names another actor as its key's owner, or a key hosted elsewhere,
    is an impersonation attempt rather than a quirk.
    """
    key = _first(doc.get("publicKey"))
    if key is None:
        return None, None, None
    return _key(key, actor_id, "actor.publicKey")


def _key(value: Any, actor_id: str, what: str) -> tuple[str, str | None, str | None]:
    key = _object(value, what)
    key_id = _url(key.get("id"), f"{what}.id")
    owner = _reference(key.get("owner"), f"{what}.owner")
    if owner is not None and owner != actor_id:
        raise VocabError(f"actor {actor_id} publishes a key owned by {owner}")
    if not _same_origin(key_id, actor_id):
        raise VocabError(f"actor {actor_id} publishes a key hosted elsewhere: {key_id}")
    return key_id, owner, _string(key, "publicKeyPem", what)


def _retired_keys(doc: Mapping[str, Any], actor_id: str) -> tuple[tuple[str, str], ...]:
    """Earlier keys still in their grace period, held to the same rules as `publicKey`."""
    value = doc.get("retiredKeys")
    items = value if isinstance(value, list) else [] if value is None else [value]
    keys = []
    for item in items[:MAX_RETIRED_KEYS]:
        key_id, _owner, pem = _key(item, actor_id, "actor.retiredKeys")
        if pem:
            keys.append((key_id, pem))
    return tuple(keys)


def parse_actor(doc: Any) -> Actor:
    """Read any AS2 actor; our communities are Groups, Mastodon users Persons.

    An actor speaks for its own server only. Its inbox must be there, or it is
    refused: we would otherwise send signed POSTs wherever a document says
    (Lemmy refuses such actors too). A shared inbox, outbox or followers
    collection elsewhere is dropped rather than refused, keeping the actor
    usable through its own inbox: AS2 allows a shared inbox on a relay, but
    we have no reason to trust one with deliveries or signed fetches.
    """
    doc = _object(doc, "actor")
    actor_type = _type(doc, "actor")
    if actor_type not in ACTOR_TYPES:
        raise VocabError(f"expected an actor, got {actor_type!r}")
    actor_id = _url(doc.get("id"), "actor.id")
    inbox = _url(_reference(doc.get("inbox"), "actor.inbox"), "actor.inbox")
    if not same_host(inbox, actor_id):
        raise VocabError(f"actor {actor_id} has its inbox on another host: {inbox}")
    endpoints = doc.get("endpoints")
    shared_inbox = endpoints.get("sharedInbox") if isinstance(endpoints, Mapping) else None
    key_id, key_owner, key_pem = _public_key(doc, actor_id)
    return Actor(
        id=actor_id,
        type=actor_type,
        preferred_username=_string(doc, "preferredUsername", "actor"),
        name=_language_string(doc, "name", "actor"),
        summary=_language_string(doc, "summary", "actor"),
        inbox=inbox,
        outbox=_on_host(_reference(doc.get("outbox"), "actor.outbox"), actor_id),
        followers=_on_host(_reference(doc.get("followers"), "actor.followers"), actor_id),
        shared_inbox=_on_host(_reference(shared_inbox, "actor.endpoints.sharedInbox"), actor_id),
        public_key_id=key_id,
        public_key_owner=key_owner,
        public_key_pem=key_pem,
        location=_place(doc.get("location"), "actor.location"),
        public_offer_count=_count(doc, "publicOfferCount", "actor"),
        public_need_count=_count(doc, "publicNeedCount", "actor"),
        url=_display_url(doc.get("url")),
        discoverable=_optional_flag(doc, "discoverable"),
        retired_keys=_retired_keys(doc, actor_id),
    )


def _optional_flag(doc: Mapping[str, Any], key: str) -> bool | None:
    """True or False when the document says so; None when it is absent or not a boolean
    (an actor with an odd flag is still an actor)."""
    value = _literal(doc.get(key))
    return value if isinstance(value, bool) else None


def _activity_actor(value: Any) -> str:
    """The one actor of an activity; the signature check needs exactly one."""
    candidates = value if isinstance(value, list) else [value]
    ids = {_reference(candidate, "activity.actor") for candidate in candidates}
    actors = [actor for actor in ids if actor is not None]
    if len(actors) != 1:
        raise VocabError("activity must have exactly one actor")
    return actors[0]


def _activity_object(value: Any, activity_type: str, context: Any) -> str | dict[str, Any] | None:
    """The object as a URL, or as a dict that carries the activity's context.

    An embedded object means what the enclosing document's context says; a
    handler that normalises it on its own would otherwise read it under the
    bare AS context and lose our extension terms.
    """
    value = _first(value) if isinstance(value, list) and len(value) == 1 else value
    if value is None:
        if activity_type in _OBJECT_REQUIRED:
            raise VocabError(f"{activity_type} activity has no object")
        return None
    if isinstance(value, str):
        return _url(value, "activity.object")
    if isinstance(value, Mapping):
        if "id" in value:
            object_id = _url(value["id"], "activity.object.id")
            if all(item is None for key, item in value.items() if key != "id"):
                return object_id  # a bare reference, as pyld would compact it
        if context is None or "@context" in value:
            return dict(value)
        return {"@context": context, **value}
    raise VocabError("activity.object must be a URL or one object")


def parse_activity(doc: Any) -> Activity:
    """Read an activity's envelope; its object is read by the type's handler."""
    doc = _object(doc, "activity")
    activity_type = _type(doc, "activity")
    return Activity(
        id=_url(doc.get("id"), "activity.id"),
        type=activity_type,
        actor=_activity_actor(doc.get("actor")),
        object=_activity_object(doc.get("object"), activity_type, doc.get("@context")),
        to=_audience(doc.get("to"), "activity.to"),
        cc=_audience(doc.get("cc"), "activity.cc"),
        published=_datetime(doc, "published", "activity"),
        partnership=_flag(doc, "partnership", "activity"),
        raw=dict(doc),
    )
