"""draft-cavage HTTP Signatures, signed and checked the way Mastodon does.

Signing and verification both use `cryptography` directly, with key objects
cached by `federation.keys`: signing with `httpsig` (pure-Python key handling
over pycryptodome) cost 6 ms a request, which a fan-out to hundreds of hosts
pays once per host. What we sign is byte-for-byte what `httpsig`, the
reference implementation, produces; it is kept as a cross-check in tests.

A check returns a `SignatureInfo` and never raises for a bad signature: the
inbox decides what a refusal means (401, or accept-and-ignore for a Delete of
an actor whose key is gone), and a value is easier to log and test than an
exception.

What we sign, and why a signature of ours is worth nothing elsewhere
---------------------------------------------------------------------
A node signs two kinds of request with one of its communities' keys:
POSTs of activities to remote inboxes, and GETs of remote documents (actors,
keys, outboxes, partner collections, objects), the latter so that a partner
serves us what it shares with partners. Every signature covers
`(request-target)` (method, path and query), `host` and `date`, and `digest`
when there is a body. A receiver, ours included, accepts a signature only
when the signed `host` is its own configured host (`expected_host`), the
request target is the request it received, and the date is within a few
minutes. So a signature we made for a request to server X is good only at X,
for that one method and path, for a few minutes: whoever makes us send a
request to their own server can replay what we signed only to themselves.
Cross-node replay (an outsider has us sign a GET whose path is a partner
collection elsewhere, then presents it there) fails on the host.

What an outsider can make us fetch is narrowed too, so that the requests we
sign on their behalf go to their own host and nowhere else: a `keyId` is
fetched only when it is on the host of the activity's actor and that host is
not blocked (`federation.inbox`, `node.protocol.key_resolver`); a bare key
document's `owner` only on the key's host; a redirect to another host is
followed unsigned, or not at all for actors and keys (`federation.http_client`);
and an actor whose inbox or collections live on another host is refused or
stripped of them (`federation.vocab.parse_actor`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import formatdate, parsedate_to_datetime
from typing import Protocol

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from federation.errors import FederationError, FetchError, InvalidKeyError, SignatureError
from federation.hosts import normalize_host, parsed_url
from federation.keys import load_private_key, load_public_key

logger = logging.getLogger(__name__)

DEFAULT_MAX_SKEW = timedelta(minutes=5)
# hs2019 leaves the algorithm to the key; for RSA keys Mastodon and others use
# RSASSA-PKCS1-v1_5 with SHA-256, exactly as rsa-sha256.
ACCEPTED_ALGORITHMS = frozenset({"rsa-sha256", "hs2019"})
_SIGN_ALGORITHM = "rsa-sha256"

_PARAM_RE = re.compile(
    r'\s*([A-Za-z][A-Za-z0-9_-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,"]*))\s*(?:,|$)'
)
_ESCAPE_RE = re.compile(r"\\(.)")


@dataclass(frozen=True)
class SignatureInfo:
    """The outcome of checking a request's signature; enforcement is the caller's."""

    valid: bool
    key_id: str | None
    key_owner: str | None
    expired: bool
    reason: str | None
    retry_after: float | None = None
    """Set when the key could not be looked up *now* (the resolver is busy):
    the sender should try again after this many seconds rather than give up."""
    skew_seconds: float | None = field(default=None, compare=False)
    """For a valid signature: how far the signed `Date` (or `(created)`) was
    from our clock, positive when the sender's clock is ahead. Stewards see it.
    An observation, not part of the verdict, so outcomes compare without it."""


@dataclass(frozen=True)
class PublicKeyRecord:
    """A public key as published by its owner (`publicKey` of an actor)."""

    key_id: str
    owner: str
    public_key_pem: str


class KeyResolver(Protocol):
    """Looks up a key by its id; `node/` provides one backed by its key cache.

    `refresh=True` asks for a fresh copy from the owner's server, bypassing any
    cache: it is how a rotated key is picked up after a failed check.
    Returning None means the key is unknown; raising a `FederationError`
    means it could not be fetched. Both refuse the request.
    """

    async def __call__(self, key_id: str, *, refresh: bool = False) -> PublicKeyRecord | None: ...


class KeyLookupBusy(FetchError):
    """The resolver refuses to start another fetch now (its limits are reached).

    Not the key's fault: the request is refused with `retry_after` so that an
    honest sender retries, while a flood of unknown keys cannot make us queue
    fetches without bound.
    """

    def __init__(self, message: str, *, url: str | None = None, retry_after: float = 5.0):
        super().__init__(message, url=url)
        self.retry_after = retry_after


def digest_header(body: bytes) -> str:
    """The `Digest` header value for `body`, which binds the body to the signature."""
    return "SHA-256=" + base64.b64encode(hashlib.sha256(body).digest()).decode("ascii")


# --- signing -----------------------------------------------------------------


def _signature_header(
    key_id: str, private_key_pem: str, signed: Sequence[str], message: bytes
) -> str:
    """The `Signature` header value, in the parameter order `httpsig` writes.

    RSA PKCS#1 v1.5 is deterministic, so this is byte-for-byte what `httpsig`
    produces (a test keeps it so), at a quarter of the cost: `cryptography`
    signs in C with the key object parsed once, and releases the GIL while it
    does, so the delivery worker can sign on threads.
    """
    if '"' in key_id:
        raise SignatureError("a keyId cannot contain a double quote")
    key = load_private_key(private_key_pem)
    signature = base64.b64encode(key.sign(message, padding.PKCS1v15(), hashes.SHA256()))
    return (
        f'keyId="{key_id}",algorithm="{_SIGN_ALGORITHM}",'
        f'signature="{signature.decode("ascii")}",headers="{" ".join(signed)}"'
    )


def _set_header(headers: dict[str, str], name: str, value: str) -> None:
    """Set a header, replacing any spelling of the same name."""
    for existing in [k for k in headers if k.lower() == name.lower()]:
        del headers[existing]
    headers[name] = value


def sign_request(
    method: str,
    url: str,
    headers: Mapping[str, str],
    body: bytes | None,
    key_id: str,
    private_key_pem: str,
) -> dict[str, str]:
    """Return `headers` plus `Host`, `Date`, `Digest` (with a body) and `Signature`.

    Signs `(request-target) host date`, plus `digest` when there is a body:
    the set Mastodon signs and requires. A caller-supplied `Host` or `Date` is
    kept (and signed); a supplied `Digest` is replaced so it matches `body`.
    The request must then be sent to exactly `url` with these headers.
    """
    target = parsed_url(url)
    host = target.host_port_subcomponent
    if not host:
        raise SignatureError(f"cannot sign a request to {url!r}: no host")
    out = dict(headers)
    present = {name.lower() for name in out}
    if "host" not in present:
        out["Host"] = host
    if "date" not in present:
        out["Date"] = formatdate(usegmt=True)
    signed = ["(request-target)", "host", "date"]
    if body is not None:
        _set_header(out, "Digest", digest_header(body))
        signed.append("digest")
    lower = {name.lower(): value for name, value in out.items()}
    lines = [f"(request-target): {method.lower()} {target.raw_path_qs}"]
    lines += [f"{name}: {lower[name]}" for name in signed[1:]]
    try:
        message = "\n".join(lines).encode("ascii")
    except UnicodeEncodeError as exc:
        raise SignatureError(f"cannot sign a non-ASCII header: {exc}") from exc
    _set_header(out, "Signature", _signature_header(key_id, private_key_pem, signed, message))
    return out


# --- parsing -----------------------------------------------------------------


@dataclass(frozen=True)
class _ParsedSignature:
    key_id: str
    algorithm: str
    headers: tuple[str, ...]
    signature: bytes
    created: str | None
    expires: str | None


class _RefusalError(Exception):
    """Internal: stops a check with the reason reported in `SignatureInfo`."""

    def __init__(self, reason: str, *, expired: bool = False, retry_after: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.expired = expired
        self.retry_after = retry_after


def _lower_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """Lower-case names; repeated headers joined with ", " as the draft says."""
    merged: dict[str, str] = {}
    for name, value in headers.items():
        key = name.lower()
        merged[key] = f"{merged[key]}, {value.strip()}" if key in merged else value.strip()
    return merged


def _parse_params(value: str) -> dict[str, str] | None:
    """Parse `k="v",k2=v2` into a dict with lower-cased names; None if malformed."""
    params: dict[str, str] = {}
    text = value.strip()
    pos = 0
    while pos < len(text):
        match = _PARAM_RE.match(text, pos)
        if match is None or match.end() == pos:
            return None
        name = match.group(1).lower()
        if name in params:
            return None
        quoted, bare = match.group(2), match.group(3)
        params[name] = _ESCAPE_RE.sub(r"\1", quoted) if quoted is not None else bare
        pos = match.end()
    return params


def _raw_signature_header(headers: Mapping[str, str]) -> str | None:
    """The `Signature` header, or an `Authorization: Signature ...` fallback."""
    raw = headers.get("signature")
    if raw is None:
        auth = headers.get("authorization", "")
        if auth[:10].lower() == "signature ":
            raw = auth[10:]
    return raw


def signature_key_id(headers: Mapping[str, str]) -> str | None:
    """The request's `keyId`, without checking anything else.

    Cheap enough to call before deciding whether to fetch a key or to spend
    any more work on the request (for example, to drop blocked domains).
    """
    raw = _raw_signature_header(_lower_headers(headers))
    params = _parse_params(raw) if raw is not None else None
    return params.get("keyid") if params else None


def _signature_params(headers: Mapping[str, str]) -> dict[str, str]:
    """The Signature header's parameters; refuses a missing or malformed header."""
    raw = _raw_signature_header(headers)
    if raw is None:
        raise _RefusalError("no Signature header")
    params = _parse_params(raw)
    if params is None:
        raise _RefusalError("Signature header is not parseable")
    return params


def _parse_signature(params: Mapping[str, str]) -> _ParsedSignature:
    """Validate the parameters; `algorithm` defaults to hs2019 as the draft says."""
    if not params.get("keyid") or not params.get("signature"):
        raise _RefusalError("Signature header lacks keyId or signature")
    algorithm = params.get("algorithm", "hs2019").lower()
    if algorithm not in ACCEPTED_ALGORITHMS:
        raise _RefusalError(f"unsupported signature algorithm {algorithm!r}")
    try:
        signature = base64.b64decode(params["signature"], validate=True)
    except binascii.Error as exc:
        raise _RefusalError("signature is not valid base64") from exc
    return _ParsedSignature(
        key_id=params["keyid"],
        algorithm=algorithm,
        headers=tuple(params.get("headers", "(created)").lower().split()),
        signature=signature,
        created=params.get("created"),
        expires=params.get("expires"),
    )


# --- checks ------------------------------------------------------------------


def _check_coverage(parsed: _ParsedSignature, body: bytes) -> None:
    """Refuse signatures that leave the target, host, time or body unsigned."""
    covered = set(parsed.headers)
    missing = [h for h in ("(request-target)", "host") if h not in covered]
    if "date" not in covered and "(created)" not in covered:
        missing.append("date")
    if body and "digest" not in covered:
        missing.append("digest")
    if missing:
        raise _RefusalError(f"signature does not cover {', '.join(missing)}")


def _check_host(headers: Mapping[str, str], expected_host: str) -> None:
    """The signed `host` must be this server: a signature made for another
    server (one we were made to sign a request to, say) is no good here."""
    signed = headers.get("host")
    expected = normalize_host(expected_host)
    if expected is None:
        raise _RefusalError(f"this server's own host {expected_host!r} is not a host")
    if signed is None or normalize_host(signed) != expected:
        raise _RefusalError(f"signed host {signed!r} is not this server ({expected})")


def _check_digest(headers: Mapping[str, str], body: bytes) -> None:
    """The Digest header, when present (required with a body), must match the body."""
    value = headers.get("digest")
    if value is None:
        if body:
            raise _RefusalError("request has a body but no Digest header")
        return
    expected = hashlib.sha256(body).digest()
    found_sha256 = False
    for entry in value.split(","):
        algorithm, _, encoded = entry.strip().partition("=")
        if algorithm.strip().lower() != "sha-256":
            continue
        found_sha256 = True
        try:
            actual = base64.b64decode(encoded.strip(), validate=True)
        except binascii.Error:
            continue
        if hmac.compare_digest(actual, expected):
            return
    if not found_sha256:
        raise _RefusalError("Digest header has no SHA-256 value")
    raise _RefusalError("Digest does not match the body")


def _parse_http_date(value: str) -> datetime:
    try:
        parsed = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError) as exc:
        raise _RefusalError(f"Date header {value!r} is not an HTTP date") from exc
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def _parse_timestamp(value: str | None, name: str) -> datetime:
    if value is None:
        raise _RefusalError(f"{name} is signed but the Signature has no {name[1:-1]} parameter")
    try:
        return datetime.fromtimestamp(float(value), UTC)
    except (ValueError, OverflowError, OSError) as exc:
        raise _RefusalError(f"{name} value {value!r} is not a timestamp") from exc


def _check_freshness(
    parsed: _ParsedSignature, headers: Mapping[str, str], now: datetime, max_skew: timedelta
) -> float | None:
    """Signed times must be within `max_skew` of now, either way, to stop replays.

    Returns the first signed time's distance from `now` in seconds (None if
    only `(expires)` was signed)."""
    moments: list[tuple[str, datetime]] = []
    if "date" in parsed.headers:
        date = headers.get("date")
        if date is None:
            raise _RefusalError("signed header date is missing")
        moments.append(("Date", _parse_http_date(date)))
    if "(created)" in parsed.headers:
        moments.append(("(created)", _parse_timestamp(parsed.created, "(created)")))
    for name, moment in moments:
        if abs(now - moment) > max_skew:
            raise _RefusalError(f"{name} {moment.isoformat()} is outside {max_skew}", expired=True)
    if "(expires)" in parsed.headers and now > _parse_timestamp(parsed.expires, "(expires)"):
        raise _RefusalError("signature has expired", expired=True)
    return (moments[0][1] - now).total_seconds() if moments else None


def _signing_string(
    parsed: _ParsedSignature, headers: Mapping[str, str], method: str, target: str
) -> bytes:
    """Rebuild the string the sender signed, in the order it listed headers."""
    lines = []
    for name in parsed.headers:
        if name == "(request-target)":
            lines.append(f"{name}: {method.lower()} {target}")
        elif name in ("(created)", "(expires)"):
            value = parsed.created if name == "(created)" else parsed.expires
            lines.append(f"{name}: {value}")
        elif (header := headers.get(name)) is not None:
            lines.append(f"{name}: {header}")
        else:
            raise _RefusalError(f"signed header {name} is missing")
    return "\n".join(lines).encode("utf-8", errors="surrogateescape")


def _request_targets(path: str, query_string: str) -> list[str]:
    """Targets to try: with the query first, then without (senders differ)."""
    if not query_string and "?" in path:
        path, query_string = path.split("?", 1)
    return [f"{path}?{query_string}", path] if query_string else [path]


def _verifies(record: PublicKeyRecord, signature: bytes, messages: Sequence[bytes]) -> bool:
    try:
        key = load_public_key(record.public_key_pem)
    except InvalidKeyError as exc:
        logger.info("unusable public key %s: %s", record.key_id, exc)
        return False
    for message in messages:
        try:
            key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            continue
        return True
    return False


async def _resolve(resolve_key: KeyResolver, key_id: str, refresh: bool) -> PublicKeyRecord:
    try:
        record = await resolve_key(key_id, refresh=refresh)
    except KeyLookupBusy as exc:
        raise _RefusalError(
            f"key {key_id} not looked up: {exc}", retry_after=exc.retry_after
        ) from exc
    except FederationError as exc:
        raise _RefusalError(f"key {key_id} could not be fetched: {exc}") from exc
    if record is None:
        raise _RefusalError(f"unknown key {key_id}")
    return record


async def _verify_with_rotation(
    parsed: _ParsedSignature, messages: Sequence[bytes], resolve_key: KeyResolver
) -> PublicKeyRecord:
    """Verify; on failure refetch the key once, in case its owner rotated it."""
    record = await _resolve(resolve_key, parsed.key_id, refresh=False)
    if _verifies(record, parsed.signature, messages):
        return record
    fresh = await _resolve(resolve_key, parsed.key_id, refresh=True)
    if fresh.public_key_pem != record.public_key_pem and _verifies(
        fresh, parsed.signature, messages
    ):
        return fresh
    raise _RefusalError("signature does not verify")


async def verify_request(
    method: str,
    path: str,
    query_string: str,
    headers: Mapping[str, str],
    body: bytes,
    resolve_key: KeyResolver,
    *,
    expected_host: str,
    max_skew: timedelta = DEFAULT_MAX_SKEW,
    now: datetime | None = None,
) -> SignatureInfo:
    """Check a request's draft-cavage signature; never raises for a bad one.

    `expected_host` is this server's own host (`name` or `name:port`, from its
    configured base URL, never from the request): the signed `host` must be
    it, or the signature was made for somewhere else. It is checked before
    any key is looked up. `path` and `query_string` are as received, still
    percent-encoded (with aiohttp: `request.rel_url.raw_path` and
    `request.rel_url.raw_query_string`).
    `headers` may be any mapping (a `CIMultiDictProxy` or a plain dict).
    `now`, if given, must be timezone-aware; it exists for tests.
    The caller must still check that `key_owner` is the activity's actor.
    """
    lowered = _lower_headers(headers)
    key_id: str | None = None
    try:
        params = _signature_params(lowered)
        key_id = params.get("keyid") or None
        parsed = _parse_signature(params)
        _check_coverage(parsed, body)
        _check_host(lowered, expected_host)
        _check_digest(lowered, body)
        skew = _check_freshness(parsed, lowered, now or datetime.now(UTC), max_skew)
        messages = [
            _signing_string(parsed, lowered, method, target)
            for target in _request_targets(path, query_string)
        ]
        record = await _verify_with_rotation(parsed, messages, resolve_key)
    except _RefusalError as refusal:
        logger.info("refused HTTP signature (keyId=%s): %s", key_id, refusal.reason)
        return SignatureInfo(
            False, key_id, None, refusal.expired, refusal.reason, refusal.retry_after
        )
    return SignatureInfo(True, key_id, record.owner, False, None, skew_seconds=skew)
