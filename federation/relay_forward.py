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
from typing import Any

import orjson

from federation.vocab import Activity, parse_activity

FORWARDED_TYPES = frozenset({"Create", "Update"})
AS_CONTEXT = "https://www.w3.org/ns/activitystreams"
_VETO_TERMS = ("id", "type", "attributedTo", "to", "cc")


def forwarded_announce(relay: str, original: Activity) -> tuple[Activity, bytes] | None:
    """The Announce by `relay` of the object `original` carries, and its stored body;
    None when `original` is nothing to fetch.

    The id is derived from the original's, so a relay forwarding the same
    activity twice is answered as a duplicate.
    """
    object_id = original.object_id
    if original.type not in FORWARDED_TYPES or not object_id:
        return None
    digest = hashlib.sha256(original.id.encode()).hexdigest()
    document: dict[str, Any] = {
        "@context": AS_CONTEXT,
        "id": f"{relay}#forwarded-{digest}",
        "type": "Announce",
        "actor": relay,
        "object": object_id,
    }
    obj = original.object
    if isinstance(obj, dict):
        # Kept only so that the handler can refuse early what the body itself says
        # is not public; it is never mirrored from here.
        document["object"] = {
            k: obj[k] for k in ("id", "type", "attributedTo", "to", "cc") if k in obj
        }
    return parse_activity(document), orjson.dumps(document)
