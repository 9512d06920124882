"""The node's URL scheme: every URL the node mints, built here and parsed back here.

Actor ids, inboxes, collections, listings and activity ids are public,
permanent names: other servers store them. Building them in one place keeps
them from drifting apart, and parsing them in the same place means a URL we
accept as "ours" is exactly one we could have minted.
"""

from __future__ import annotations

from urllib.parse import urlsplit

from storage.models import new_id

ACTOR_PATH = "/c/"
SHARED_INBOX_PATH = "/inbox"
KEY_FRAGMENT = "#main-key"


def actor_id(base_url: str, slug: str) -> str:
    return f"{base_url}{ACTOR_PATH}{slug}"


def shared_inbox(base_url: str) -> str:
    return f"{base_url}{SHARED_INBOX_PATH}"


def actor_inbox(actor: str) -> str:
    return f"{actor}/inbox"


def outbox(actor: str) -> str:
    return f"{actor}/outbox"


def followers(actor: str) -> str:
    return f"{actor}/followers"


def key_id(actor: str) -> str:
    return f"{actor}{KEY_FRAGMENT}"


def partner_collection(actor: str) -> str:
    """Where a community lists what it shares with partners (served to partners only)."""
    return f"{actor}/partner-listings"


def listing(actor: str, listing_id: str) -> str:
    return f"{actor}/listings/{listing_id}"


def agreement(actor: str, exchange_id: str) -> str:
    """An exchange's agreement, named by the requester's community, which mints it."""
    return f"{actor}/exchanges/{exchange_id}"


def exchange_message(actor: str, message_id: str) -> str:
    """One message of an exchange thread, named by its author's community."""
    return f"{actor}/exchange-messages/{message_id}"


MEDIA_PATH = "/media/"


def media(base_url: str, key: str, size: str) -> str:
    """A stored image in one size: the only address members' browsers load photos from."""
    return f"{base_url}{MEDIA_PATH}{key}/{size}"


def new_activity_id(actor: str) -> str:
    """A fresh, permanent id for an activity a community sends."""
    return f"{actor}/activities/{new_id()}"


def community_page(slug: str) -> str:
    """The public web page a browser opening an actor id is sent to."""
    return f"/communities/{slug}"


def slug_of_actor(base_url: str, url: str) -> str | None:
    """The slug when `url` is the id of a community on this node, else None."""
    prefix = f"{base_url}{ACTOR_PATH}"
    if not url.startswith(prefix):
        return None
    slug = url[len(prefix) :]
    return slug if slug and "/" not in slug and "#" not in slug and "?" not in slug else None


def host_of(url: str) -> str | None:
    """`host` or `host:port` (lower case), the way handles and signatures spell it."""
    try:
        netloc = urlsplit(url).netloc
    except ValueError:
        return None
    return netloc.lower() or None


def delivery_inbox(inbox: str | None, shared: str | None, *, fan_out: bool) -> str | None:
    """The inbox to deliver to: the one rule for "personal or shared".

    A fan-out (a public listing to every follower) goes to each server's
    shared inbox where it has one, so a server with many followers gets one
    copy. A message for one actor (an answer, a partnership, a partner-only
    listing) goes to that actor's own inbox, so it names and reaches only it.
    """
    return (shared or inbox) if fan_out else (inbox or shared)
