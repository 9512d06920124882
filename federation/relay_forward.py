"""Activities a relay forwards unchanged (Mastodon-style relays), read as what they are.

A Mastodon-style relay POSTs a subscriber's original `Create` or `Update` to
every other subscriber, signed over HTTP by the relay's own key: the actor
named in the body did not sign this request. Mastodon trusts such a body only
through its JSON-LD signature; we trust no part of it. When the signer is a
relay the node subscribes to, the forwarded activity is recorded as what it
proves: the relay announcing an object id, exactly as a LitePub relay would
send it. The handler of `Announce` then fetches the object from its own
server. Anything else a relay forwards (a Delete, a Like) asks nothing of
us and is dropped.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import orjson

from federation.contexts import default_context
from federation.vocab import NOTE_TYPES, Activity, parse_activity

FORWARDED_TYPES = frozenset({"Create", "Update", "Delete"})
_VETO_TERMS = ("id", "type", "attributedTo", "to", "cc", "kind")


def forwarded_announce(
    relay: str, original: Activity, raw: Mapping[str, Any] | None = None
) -> tuple[Activity, bytes] | None:
    """The Announce by `relay` of the object `original` carries, and its stored body;
    None when `original` is nothing to fetch. A forwarded `Delete` becomes an
    Announce of a `Tombstone` with the deleted object's id.

    The id is derived from the original's, so a relay forwarding the same
    activity twice is answered as a duplicate. A note that carries no `kind`
    (a Mastodon status: most of what a busy relay forwards) is dropped here,
    costing no fetch. A few terms of the embedded object (from the `raw` body
    when given) are kept, so that the handler can refuse early what the body
    itself says is not public; they can only veto, never vouch.
    """
    object_id = original.object_id
    if original.type not in FORWARDED_TYPES or not object_id:
        return None
    digest = hashlib.sha256(original.id.encode()).hexdigest()
    document: dict[str, Any] = {
        "@context": default_context(),
        "id": f"{relay}#forwarded-{digest}",
        "type": "Announce",
        "actor": relay,
        "object": object_id,
    }
    obj = raw.get("object") if raw is not None else original.object
    if isinstance(obj, dict) and obj.get("type") in NOTE_TYPES and not _names_a_kind(obj):
        return None  # a status, not a listing: a busy relay forwards many
    if original.type == "Delete":
        # Only a hint to look again: the handler asks the object's own server, and
        # only about a listing it holds.
        document["object"] = {"id": object_id, "type": "Tombstone"}
    elif isinstance(obj, dict):
        # Kept only so that the handler can refuse early what the body itself says
        # is not public; it is never mirrored from here.
        document["object"] = {k: obj[k] for k in _VETO_TERMS if k in obj}
    return parse_activity(document), orjson.dumps(document)


def _names_a_kind(obj: Mapping[str, Any]) -> bool:
    """Whether an embedded object carries our `kind` term (a listing), under any prefix."""
    return any(key == "kind" or key.endswith((":kind", "#kind")) for key in obj)
