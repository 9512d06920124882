"""WebFinger and NodeInfo documents: how other servers find our communities.

WebFinger turns a handle someone typed (`riverside@commons.example`) into the
actor URL; NodeInfo tells crawlers and peers what software a node runs and,
in its metadata, which communities it hosts, which is how Commons nodes
learn of each other's communities without an index server.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from federation.vocab import VocabError

NODEINFO_SCHEMA = "http://nodeinfo.diaspora.software/ns/schema/2.1"
WEBFINGER_PROFILE_PAGE = "http://webfinger.net/rel/profile-page"
ACTIVITY_JSON = "application/activity+json"

_USER = re.compile(r"[A-Za-z0-9_.~-]+")
_HOST_AND_PORT = re.compile(r"(?P<name>\[[0-9a-f:.]+\]|[a-z0-9.-]+)(?::(?P<port>[0-9]{1,5}))?")
_DNS_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
_SOFTWARE_NAME = re.compile(r"[a-z0-9-]+")


def _valid_host(host: str) -> bool:
    """A DNS name or bracketed IPv6 literal, with an optional port."""
    match = _HOST_AND_PORT.fullmatch(host)
    if match is None:
        return False
    port = match["port"]
    if port is not None and not 0 < int(port) < 65536:
        return False
    name = match["name"]
    if name.startswith("["):
        return True
    labels = name.split(".")
    return len(name) <= 253 and all(_DNS_LABEL.fullmatch(label) for label in labels)


def parse_acct(resource: str) -> tuple[str, str]:
    """`(user, host)` from `acct:user@host`, `user@host` or `@user@host`.

    The host is lower-cased (DNS is case-insensitive) and may carry a port,
    since test and demo nodes run on loopback ports; the user is kept as
    typed, for the caller to match as its own slugs require.
    """
    text = resource.strip()
    if text[:5].lower() == "acct:":
        text = text[5:]
    text = text.removeprefix("@")
    user, separator, host = text.partition("@")
    host = host.lower()
    if not separator or not _USER.fullmatch(user) or not _valid_host(host):
        raise VocabError(f"not an account handle: {resource[:200]!r}")
    return user, host


def webfinger_document(acct: str, actor_url: str, profile_url: str) -> dict[str, Any]:
    """The JRD Mastodon expects: `self` must be the ActivityPub actor."""
    user, host = parse_acct(acct)
    return {
        "subject": f"acct:{user}@{host}",
        "aliases": [profile_url, actor_url],
        "links": [
            {"rel": WEBFINGER_PROFILE_PAGE, "type": "text/html", "href": profile_url},
            {"rel": "self", "type": ACTIVITY_JSON, "href": actor_url},
        ],
    }


def nodeinfo_index(base_url: str) -> dict[str, Any]:
    """`/.well-known/nodeinfo`: where the NodeInfo 2.1 document lives."""
    return {"links": [{"rel": NODEINFO_SCHEMA, "href": f"{base_url.rstrip('/')}/nodeinfo/2.1"}]}


def nodeinfo_document(
    software_name: str,
    version: str,
    users_total: int,
    local_posts: int,
    communities: Sequence[dict[str, Any]],
    open_registrations: bool,
    peers: Sequence[str] = (),
) -> dict[str, Any]:
    """A NodeInfo 2.1 document with the hosted communities in `metadata`, and the
    base URLs of the nodes this one knows (`peers`), from which others learn the network.

    The schema restricts the software name to `[a-z0-9-]`; a name outside it
    makes strict readers discard the whole document, so it is refused here.
    """
    if not _SOFTWARE_NAME.fullmatch(software_name):
        raise ValueError(f"NodeInfo software name must match [a-z0-9-]+: {software_name!r}")
    if users_total < 0 or local_posts < 0:
        raise ValueError("NodeInfo usage counts cannot be negative")
    return {
        "version": "2.1",
        "software": {"name": software_name, "version": version},
        "protocols": ["activitypub"],
        "services": {"inbound": [], "outbound": []},
        "openRegistrations": open_registrations,
        "usage": {"users": {"total": users_total}, "localPosts": local_posts},
        "metadata": {
            "communities": [dict(community) for community in communities],
            "peers": list(peers),
        },
    }
