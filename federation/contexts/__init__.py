"""JSON-LD contexts that ship with the code, and the context we put on the wire.

The node must never fetch a context over the network: a remote context is an
outbound request an attacker can trigger at will, and a context that changes
under us changes what every stored activity means. So the contexts we
understand are copies kept in this directory and are read lazily, never at
import. `README.md` beside this file says where each copy comes from: the
ActivityStreams and security v1 files are pyld 3.3's bundled copies; the
others are the contexts Pleroma/Akkoma, GoToSocial and Lemmy name.

Pleroma and Akkoma do not name one context URL: each instance names its own
copy, `https://<instance>/schemas/litepub-0.1.jsonld`. Any http(s) URL with
that path is read as the one LitePub copy bundled here
(`per_host_context_paths()`); an instance running a fork that redefines a term
is read as upstream Pleroma defines it, which is the price of never fetching.

`commons.json` is the document the node serves at `{base}/ns`. Its term IRIs
are fixed under `COMMONS_NS` so that every node agrees on them whatever its
host name; outgoing documents inline the same terms (`DEFAULT_CONTEXT`) so a
remote reader never needs to fetch `/ns` at all.
"""

from __future__ import annotations

import copy
from functools import cache
from importlib import resources
from typing import Any

import orjson

AS_CONTEXT_URL = "https://www.w3.org/ns/activitystreams"
SECURITY_V1_URL = "https://w3id.org/security/v1"
COMMONS_NS = "https://commons-node.org/ns#"
# Where a peer may point by URL instead of inlining; served from the bundle.
COMMONS_CONTEXT_URL = "https://commons-node.org/ns"

COMMONS_TERMS: dict[str, Any] = {
    "commons": COMMONS_NS,
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "kind": "commons:kind",
    "category": "commons:category",
    "status": "commons:status",
    "visibility": "commons:visibility",
    "partnership": "commons:partnership",
    "authorName": "commons:authorName",
    "retiredKeys": "commons:retiredKeys",
    "publicOfferCount": {
        "@id": "commons:publicOfferCount",
        "@type": "xsd:nonNegativeInteger",
    },
    "publicNeedCount": {
        "@id": "commons:publicNeedCount",
        "@type": "xsd:nonNegativeInteger",
    },
    "vf": "https://w3id.org/valueflows/ont/vf#",
    "om2": "http://www.ontology-of-units-of-measure.org/resource/om-2/",
    "Agreement": "vf:Agreement",
    "Commitment": "vf:Commitment",
    "stipulates": "vf:stipulates",
    "satisfies": {"@id": "vf:satisfies", "@type": "@id"},
    "provider": {"@id": "vf:provider", "@type": "@id"},
    "receiver": {"@id": "vf:receiver", "@type": "@id"},
    "resourceQuantity": "vf:resourceQuantity",
    "effortQuantity": "vf:effortQuantity",
    "hasUnit": "om2:hasUnit",
    "hasNumericalValue": "om2:hasNumericalValue",
    "providerMember": "commons:providerMember",
    "receiverMember": "commons:receiverMember",
    "providerName": "commons:providerName",
    "receiverName": "commons:receiverName",
    "member": "commons:member",
    "memberName": "commons:memberName",
}
"""The commons terms exactly as in `commons.json` (a test keeps them equal)."""

MASTODON_COMPAT_TERMS: dict[str, Any] = {
    "manuallyApprovesFollowers": "as:manuallyApprovesFollowers",
    "toot": "http://joinmastodon.org/ns#",
    "discoverable": "toot:discoverable",
}
"""Actor flags our Group carries, mapped to the IRIs Mastodon uses for them.

Without these the flags would expand to blank-node properties, and a JSON-LD
reader would not recognise them as the ones Mastodon defines.
"""

DEFAULT_CONTEXT: list[Any] = [
    AS_CONTEXT_URL,
    SECURITY_V1_URL,
    {**COMMONS_TERMS, **MASTODON_COMPAT_TERMS},
]
"""The `@context` of every document we send. Copy it (`default_context()`)
before putting it in a document you might mutate."""

GOTOSOCIAL_CONTEXT_URL = "https://gotosocial.org/ns"
LEMMY_CONTEXT_URL = "https://join-lemmy.org/context.json"
WEBFINGER_CONTEXT_URL = "https://purl.archive.org/socialweb/webfinger"
LITEPUB_CONTEXT_PATH = "/schemas/litepub-0.1.jsonld"

_BUNDLED_FILES: dict[str, str] = {
    AS_CONTEXT_URL: "activitystreams.json",
    # Some servers write the AS IRI with http; it names the same context.
    "http://www.w3.org/ns/activitystreams": "activitystreams.json",
    SECURITY_V1_URL: "security-v1.json",
    COMMONS_CONTEXT_URL: "commons.json",
    GOTOSOCIAL_CONTEXT_URL: "gotosocial.json",
    LEMMY_CONTEXT_URL: "join-lemmy.json",
    # Named inside the LitePub context of Pleroma 2.7 and later (FEP-2c59).
    WEBFINGER_CONTEXT_URL: "webfinger.json",
}

_PER_HOST_FILES: dict[str, str] = {
    LITEPUB_CONTEXT_PATH: "litepub-0.1.json",
}


def default_context() -> list[Any]:
    """A private copy of `DEFAULT_CONTEXT` for a document under construction."""
    return copy.deepcopy(DEFAULT_CONTEXT)


def bundled_context_urls() -> frozenset[str]:
    """The context URLs that can be resolved without the network."""
    return frozenset(_BUNDLED_FILES)


@cache
def _read_bundled_bytes(filename: str) -> bytes:
    return resources.files(__name__).joinpath(filename).read_bytes()


def load_bundled_context(url: str) -> dict[str, Any]:
    """A fresh parsed copy of the bundled document for `url`.

    A fresh copy each time, because pyld annotates documents it is handed and
    the bundle must stay exactly as shipped. Raises `KeyError` for any URL
    that is not bundled.
    """
    return _parse(_read_bundled_bytes(_BUNDLED_FILES[url]), url)


def per_host_context_paths() -> frozenset[str]:
    """URL paths whose context is the same bundled copy on whatever host names it."""
    return frozenset(_PER_HOST_FILES)


def load_per_host_context(path: str) -> dict[str, Any]:
    """A fresh parsed copy of the bundled document served at `path` on any host.

    Raises `KeyError` for a path that is not one of `per_host_context_paths()`.
    """
    return _parse(_read_bundled_bytes(_PER_HOST_FILES[path]), path)


def _parse(raw: bytes, name: str) -> dict[str, Any]:
    document = orjson.loads(raw)
    if not isinstance(document, dict):
        raise TypeError(f"bundled context for {name} is not a JSON object")
    return document


def commons_context_document() -> dict[str, Any]:
    """The JSON-LD context document the node serves at `{base}/ns`."""
    return load_bundled_context(COMMONS_CONTEXT_URL)
