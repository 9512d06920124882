"""The JSON-LD fast path: proving a document reads the same without pyld.

Expanding with pyld and compacting against `DEFAULT_CONTEXT` costs
milliseconds a document, yet nearly every document arrives with a context we
can show gives the names we read (`READ_TERMS`) the meaning ours gives them:
the AS context alone, ours, or Mastodon's list. This module models the simple
contexts those are built from, profiles each distinct context once, and walks
a document for any key or value that pyld would read differently;
`federation.jsonld.normalize_activity` hands back untouched what passes.

The walk is the first thing to recurse into an inbound document, so it is
where too deep a document is refused: `NormalizationError` and `MAX_DEPTH`
live here, below `federation.jsonld`, which imports them.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache, lru_cache
from typing import Any, Final

import orjson

from federation.contexts import (
    AS_CONTEXT_URL,
    DEFAULT_CONTEXT,
    bundled_context_urls,
    load_bundled_context,
)
from federation.vocab import READ_TERMS, VocabError

MAX_DEPTH: Final = 32
"""Deeper nesting than any real activity has; refused before pyld recurses."""

_AS_CONTEXT_URLS = frozenset({AS_CONTEXT_URL, "http://www.w3.org/ns/activitystreams"})
# Nodes under these keys are parsed in their own right, so their `type` is read.
_TYPE_READING_KEYS = frozenset({"object", "orderedItems", "items", "first", "result", "stipulates"})
_GEN_DELIMS = tuple(":/?#[]@")
_TERM_DEFINITION_KEYS = frozenset({"@id", "@type", "@container"})


class NormalizationError(VocabError):
    """A document could not be read as JSON-LD with the contexts we hold."""


# --- a model of simple contexts ----------------------------------------------------


class _Unmodelled(Exception):
    """A context feature the fast path does not model; pyld decides instead."""


@dataclass(frozen=True, slots=True)
class _Term:
    iri: str
    type: str | None = None
    container: str | None = None
    prefix: bool = field(default=False, compare=False)


@dataclass(frozen=True, slots=True)
class _TermTable:
    terms: Mapping[str, _Term]
    vocab: str | None

    def meaning(self, name: str) -> _Term | None:
        """What a key means: its term, else `@vocab` + name, else nothing."""
        term = self.terms.get(name)
        if term is None and self.vocab is not None:
            return _Term(self.vocab + name)
        return term


class _LocalContext:
    """Defines the terms of one local context in the JSON-LD 1.1 way: each
    term's IRI is expanded against the same local context first (recursively),
    then against the terms active before it."""

    def __init__(self, local: Mapping[str, Any], table: _TermTable) -> None:
        self._local = local
        self._active = table.terms
        self._vocab = _local_vocab(local, table.vocab)
        self._defined: dict[str, _Term] = {}
        self._defining: set[str] = set()

    def apply(self) -> _TermTable:
        terms = dict(self._active)
        for name in self._local:
            if not name.startswith("@"):
                terms[name] = self._define(name)
        return _TermTable(terms, self._vocab)

    def _define(self, name: str) -> _Term:
        if name in self._defined:
            return self._defined[name]
        if ":" in name or "/" in name or name in self._defining:
            raise _Unmodelled(name)
        self._defining.add(name)
        term = self._definition(name, self._local[name])
        self._defining.discard(name)
        self._defined[name] = term
        return term

    def _definition(self, name: str, value: Any) -> _Term:
        if isinstance(value, str):
            iri = self._expand(value)
            return _Term(iri, prefix=iri.endswith(_GEN_DELIMS))
        if not isinstance(value, Mapping) or not set(value) <= _TERM_DEFINITION_KEYS:
            raise _Unmodelled(name)
        raw_id, raw_type, container = value.get("@id"), value.get("@type"), value.get("@container")
        if not all(item is None or isinstance(item, str) for item in (raw_id, raw_type, container)):
            raise _Unmodelled(name)
        iri = self._expand(raw_id) if raw_id is not None else self._by_vocab(name)
        coerced = self._expand(raw_type) if raw_type is not None else None
        return _Term(iri, coerced, container)

    def _expand(self, value: str) -> str:
        if value.startswith("@"):
            return value
        if ":" in value:
            return self._expand_compact(value)
        if value in self._local:
            return self._define(value).iri
        if value in self._active:
            return self._active[value].iri
        return self._by_vocab(value)

    def _expand_compact(self, value: str) -> str:
        prefix, suffix = value.split(":", 1)
        if prefix == "_" or suffix.startswith("//"):
            return value
        definition = self._define(prefix) if prefix in self._local else self._active.get(prefix)
        if definition is not None and definition.prefix:
            return definition.iri + suffix
        return value

    def _by_vocab(self, name: str) -> str:
        if self._vocab is None:
            raise _Unmodelled(name)
        return self._vocab + name


def _local_vocab(local: Mapping[str, Any], vocab: str | None) -> str | None:
    for key, value in local.items():
        if not key.startswith("@"):
            continue
        if key == "@vocab" and isinstance(value, str) and ":" in value:
            vocab = value
        elif key != "@version" or value != 1.1:
            raise _Unmodelled(key)
    return vocab


def _term_table(contexts: Sequence[Any]) -> _TermTable:
    table = _TermTable({}, None)
    for entry in contexts:
        if isinstance(entry, str):
            if entry not in bundled_context_urls():
                raise _Unmodelled(entry)
            entry = load_bundled_context(entry).get("@context")
        if not isinstance(entry, Mapping):
            raise _Unmodelled(repr(entry)[:80])
        table = _LocalContext(entry, table).apply()
    return table


@cache
def _our_table() -> _TermTable:
    return _term_table(DEFAULT_CONTEXT)


@dataclass(frozen=True, slots=True)
class _ContextProfile:
    """What one context means for the names we read.

    `unsafe_keys` are keys that, under this context, either mean something
    other than under ours or mean something we read under another name; a
    document using none of them reads the same either way.
    """

    table: _TermTable
    unsafe_keys: frozenset[str]

    def types_are_safe(self, value: Any) -> bool:
        ours = _our_table()
        for name in value if isinstance(value, list) else [value]:
            if not isinstance(name, str) or ":" in name or name.startswith("@"):
                return False
            if _iri(self.table.meaning(name)) != _iri(ours.meaning(name)):
                return False
        return True


def _iri(term: _Term | None) -> str | None:
    return term.iri if term is not None else None


def _profile(contexts: Sequence[Any]) -> _ContextProfile | None:
    try:
        table = _term_table(contexts)
    except _Unmodelled:
        return None
    ours = _our_table()
    read_iris = {term.iri for name in READ_TERMS if (term := ours.meaning(name))}
    unsafe = {name for name in READ_TERMS if table.meaning(name) != ours.meaning(name)}
    unsafe |= {
        name
        for name, term in table.terms.items()
        if name not in READ_TERMS and term.iri in read_iris
    }
    return _ContextProfile(table, frozenset(unsafe))


@lru_cache(maxsize=256)
def _profile_for(context_json: bytes) -> _ContextProfile | None:
    return _profile(orjson.loads(context_json))


# --- reading alike ---------------------------------------------------------------


def context_list(doc: Mapping[str, Any]) -> list[Any]:
    """The document's contexts, with the AS context first if it is missing:
    AS2 says a reader must assume it applies."""
    context = doc.get("@context")
    entries = [] if context is None else list(context) if isinstance(context, list) else [context]
    if not _AS_CONTEXT_URLS.intersection(entry for entry in entries if isinstance(entry, str)):
        entries.insert(0, AS_CONTEXT_URL)
    return entries


# pyld moves a value that does not fit its term's definition (a node where a
# date belongs, a number where an IRI belongs) to a compact-IRI key, and drops
# nulls inside lists; a document holding such a value goes the slow way so
# that both paths read it alike. One check per kind of term definition:


def _fits_reference(value: Any) -> bool:
    if value is None or isinstance(value, str | dict):
        return True
    return isinstance(value, list) and all(isinstance(item, str | dict) for item in value)


def _fits_typed_literal(value: Any) -> bool:
    if isinstance(value, list):
        return all(item is not None and not isinstance(item, dict | list) for item in value)
    return not isinstance(value, dict)


def _fits_language_map(value: Any) -> bool:
    if value is None:
        return True
    return isinstance(value, dict) and all(isinstance(text, str) for text in value.values())


def _fits_list(value: Any) -> bool:
    return value is None or isinstance(value, list)


def _fits_plain(value: Any) -> bool:
    return not isinstance(value, list) or all(item is not None for item in value)


def _value_check(term: _Term) -> Callable[[Any], bool]:
    if term.container == "@language":
        return _fits_language_map
    if term.container == "@list":
        return _fits_list
    if term.type == "@id":
        return _fits_reference
    if term.type is not None and not term.type.startswith("@"):
        return _fits_typed_literal
    return _fits_plain


@cache
def _value_checks() -> dict[str, Callable[[Any], bool]]:
    ours = _our_table()
    return {name: _value_check(term) for name in READ_TERMS if (term := ours.meaning(name))}


def _too_deep() -> NormalizationError:
    return NormalizationError(f"document nests deeper than {MAX_DEPTH} levels")


def _node_reads_alike(
    node: Mapping[str, Any], profile: _ContextProfile, depth: int, reads_type: bool
) -> bool:
    if depth > MAX_DEPTH:
        raise _too_deep()
    unsafe, checks = profile.unsafe_keys, _value_checks()
    for key, value in node.items():
        if key in unsafe or key[:1] == "@" or ":" in key:
            if depth == 0 and key == "@context":
                continue
            return False
        check = checks.get(key)
        if check is not None and not check(value):
            return False
        if key == "type" and reads_type and not profile.types_are_safe(value):
            return False
        child_reads_type = reads_type and key in _TYPE_READING_KEYS
        if isinstance(value, dict):
            if not _node_reads_alike(value, profile, depth + 1, child_reads_type):
                return False
        elif isinstance(value, list) and not _list_reads_alike(
            value, profile, depth + 1, child_reads_type
        ):
            return False
    return True


def _list_reads_alike(
    items: list[Any], profile: _ContextProfile, depth: int, reads_type: bool
) -> bool:
    if depth > MAX_DEPTH:
        raise _too_deep()
    for item in items:
        if isinstance(item, dict):
            if not _node_reads_alike(item, profile, depth + 1, reads_type):
                return False
        elif isinstance(item, list) and not _list_reads_alike(item, profile, depth + 1, reads_type):
            return False
    return True


def takes_fast_path(doc: Mapping[str, Any]) -> bool:
    """True when `doc` reads the same as-is as it would after pyld.

    That holds when its context is built only from contexts we hold and
    simple term definitions, gives every name we read the meaning ours
    gives it, and no key or read `type` value needs JSON-LD to interpret
    (`@`-keywords, compact IRIs, embedded contexts).
    """
    try:
        context_json = orjson.dumps(context_list(doc))
    except TypeError:
        return False
    profile = _profile_for(context_json)
    return profile is not None and _node_reads_alike(doc, profile, 0, True)
