"""JSON-LD for federation: contexts served offline, and a normaliser with a fast path.

Remote servers may name things with any context they like, while the parsers
in `federation.vocab` read compact names under ours. Expanding every inbound
document with pyld and compacting it against `DEFAULT_CONTEXT` makes that safe,
but costs milliseconds a document, and nearly every document arrives with a
context we can show gives the names we read the meaning ours gives them (the
AS context alone, ours, or Mastodon's list). `normalize_activity` has
`federation.jsonld_fastpath` check that, once per distinct context, hands
such documents back untouched, and sends only the rest through pyld.

pyld never fetches a context: the loader here serves the bundle and refuses
everything else, so a remote document cannot make the node issue a request,
and the meaning of what we stored cannot change under us. Contexts every
instance serves from its own host (Pleroma's and Akkoma's LitePub context)
are answered from the one bundled copy, whatever host the URL names.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cache
from typing import Any
from urllib.parse import urlsplit

import orjson
from pyld import jsonld as pyld_jsonld
from pyld.jsonld import JsonLdError

from federation.contexts import (
    bundled_context_urls,
    default_context,
    load_bundled_context,
    load_per_host_context,
    per_host_context_paths,
)
from federation.jsonld_fastpath import NormalizationError, context_list, takes_fast_path

DocumentLoader = Callable[[str, Any], dict[str, Any]]


# --- document loader ---------------------------------------------------------


def per_host_path(url: Any) -> str | None:
    """The path of `url` when it could name a context an instance serves itself.

    Only a plain http(s) URL with a host qualifies: no credentials, query or
    fragment, which no instance puts in a context URL and which could
    otherwise dress another document up as the per-host one.
    """
    if not isinstance(url, str):
        return None
    try:
        parts = urlsplit(url)
        _ = parts.port  # raises on a malformed port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname or "@" in parts.netloc:
        return None
    if parts.query or parts.fragment or url.endswith(("?", "#")):
        return None
    return parts.path


class OfflineDocumentLoader:
    """A pyld document loader that can only answer from what it was given.

    `documents` are served at their exact URL; `per_host` documents at their
    path on any http(s) host, for contexts each instance serves itself.
    Each answer is a fresh parse, because pyld writes into the documents it
    loads and the bundle must stay exactly as shipped.
    """

    def __init__(
        self,
        documents: Mapping[str, Mapping[str, Any]],
        per_host: Mapping[str, Mapping[str, Any]] | None = None,
    ) -> None:
        self._documents = {url: orjson.dumps(dict(doc)) for url, doc in documents.items()}
        self._per_host = {path: orjson.dumps(dict(doc)) for path, doc in (per_host or {}).items()}

    @property
    def urls(self) -> frozenset[str]:
        return frozenset(self._documents)

    def _raw(self, url: Any) -> bytes | None:
        raw = self._documents.get(url) if isinstance(url, str) else None
        if raw is None and self._per_host:
            path = per_host_path(url)
            raw = self._per_host.get(path) if path is not None else None
        return raw

    def __call__(self, url: str, options: Any = None) -> dict[str, Any]:
        raw = self._raw(url)
        if raw is None:
            raise JsonLdError(
                "Refusing to load a JSON-LD document that is not bundled; "
                "contexts are never fetched over the network.",
                "jsonld.LoadDocumentError",
                {"url": url},
                code="loading document failed",
            )
        return {
            "contentType": "application/ld+json",
            "contextUrl": None,
            "documentUrl": url,
            "document": orjson.loads(raw),
        }


def make_document_loader(
    extra: Mapping[str, Mapping[str, Any]] | None = None,
) -> OfflineDocumentLoader:
    """A loader for the bundled contexts plus `extra` (say `{base}/ns`)."""
    documents: dict[str, Mapping[str, Any]] = {
        url: load_bundled_context(url) for url in bundled_context_urls()
    }
    documents.update(extra or {})
    per_host = {path: load_per_host_context(path) for path in per_host_context_paths()}
    return OfflineDocumentLoader(documents, per_host)


def install_document_loader(
    extra: Mapping[str, Mapping[str, Any]] | None = None,
) -> OfflineDocumentLoader:
    """Make the offline loader pyld's process-wide default; call at start-up.

    Not done at import, so that importing this module changes nothing; done
    at all so that any other pyld user in the process (signature checks, say)
    cannot reach the network either. The helpers here use it once installed.
    """
    loader = make_document_loader(extra)
    pyld_jsonld.set_document_loader(loader)
    return loader


@cache
def _bundled_loader() -> OfflineDocumentLoader:
    return make_document_loader()


def _loader(loader: DocumentLoader | None) -> DocumentLoader:
    """The given loader, else the installed one if it is ours, else the bundle:
    never pyld's own default, which fetches over the network."""
    if loader is not None:
        return loader
    installed = pyld_jsonld.get_document_loader()
    if isinstance(installed, OfflineDocumentLoader):
        return installed
    return _bundled_loader()


# --- pyld helpers --------------------------------------------------------------


def _describe(error: BaseException) -> str:
    """The useful part of pyld's chain of wrapped errors."""
    messages: list[str] = []
    current: BaseException | None = error
    while current is not None and len(messages) < 6:
        if isinstance(current, JsonLdError):
            details = current.details if isinstance(current.details, dict) else {}
            if current.code == "loading document failed" and "url" in details:
                return f"context {details['url']!r} is not available offline"
            messages.append(str(current.args[0]) if current.args else str(current.type))
        current = current.__cause__ or current.__context__
    return " ".join(messages) or type(error).__name__


def _options(loader: DocumentLoader | None) -> dict[str, Any]:
    """pyld options. `base` None keeps a relative IRI relative, as the fast
    path does, where pyld would otherwise resolve it against example.org."""
    return {"documentLoader": _loader(loader), "base": None}


# What pyld raises, besides JsonLdError, on input it cannot make sense of
# (relative context IRIs, say). Remote input must never become a 500.
_PYLD_INPUT_ERRORS = (ValueError, TypeError, KeyError, IndexError, AttributeError)


def _run_pyld(operation: Callable[..., Any], *arguments: Any) -> Any:
    try:
        return operation(*arguments)
    except JsonLdError as error:
        raise NormalizationError(f"cannot interpret document: {_describe(error)}") from error
    except RecursionError:
        raise NormalizationError("document nests too deeply to interpret") from None
    except _PYLD_INPUT_ERRORS as error:
        raise NormalizationError(f"cannot interpret document: {error}") from error


def expand(doc: Any, *, loader: DocumentLoader | None = None) -> list[Any]:
    """Expanded JSON-LD of `doc`, resolving contexts from the bundle only."""
    result = _run_pyld(pyld_jsonld.expand, doc, _options(loader))
    if not isinstance(result, list):
        raise NormalizationError("expansion did not produce a list")
    return result


def compact(
    doc: Any,
    context: Any = None,
    *,
    loader: DocumentLoader | None = None,
) -> dict[str, Any]:
    """`doc` compacted against `context` (by default `DEFAULT_CONTEXT`)."""
    target = default_context() if context is None else context
    result = _run_pyld(pyld_jsonld.compact, doc, target, _options(loader))
    if not isinstance(result, dict):
        raise NormalizationError("compaction did not produce an object")
    return result


# --- normalisation -------------------------------------------------------------


def normalize_with_pyld(
    doc: Mapping[str, Any],
    *,
    loader: DocumentLoader | None = None,
) -> dict[str, Any]:
    """The slow path: expand with the document's contexts, compact with ours."""
    compacted = compact({**doc, "@context": context_list(doc)}, loader=loader)
    if "@graph" in compacted:
        raise NormalizationError("document holds more than one top-level object")
    return compacted


def normalize_activity(doc: Any, *, loader: DocumentLoader | None = None) -> dict[str, Any]:
    """`doc` in compact form under `DEFAULT_CONTEXT`, ready for the parsers.

    Returned as-is when `takes_fast_path` proves that safe (the common case),
    otherwise rewritten by pyld. Raises `NormalizationError` for anything that
    cannot be read, including contexts we do not hold.
    """
    if not isinstance(doc, dict):
        raise NormalizationError(f"a document must be a JSON object, got {type(doc).__name__}")
    if takes_fast_path(doc):
        return doc
    return normalize_with_pyld(doc, loader=loader)


def normalize_embedded(
    node: Any,
    parent: Mapping[str, Any],
    *,
    loader: DocumentLoader | None = None,
) -> dict[str, Any]:
    """Normalise an object found inside `parent` (an outbox page's item, say).

    An embedded object has no context of its own: it means what its parent's
    context says. Normalised alone it would be read under the bare AS context
    and lose our extension terms, so it borrows the parent's.
    """
    if not isinstance(node, dict):
        raise NormalizationError(
            f"an embedded object must be a JSON object, got {type(node).__name__}"
        )
    if "@context" not in node and "@context" in parent:
        node = {"@context": parent["@context"], **node}
    return normalize_activity(node, loader=loader)
