"""draft-cavage HTTP signatures: published vectors, httpsig cross-checks, refusals."""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import formatdate

import httpsig
import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from multidict import CIMultiDict, CIMultiDictProxy

from federation.errors import ObjectGone
from federation.hosts import normalize_host
from federation.keys import generate_key_pair, load_private_key
from federation.signatures import (
    KeyLookupBusy,
    KeyResolver,
    PublicKeyRecord,
    SignatureInfo,
    digest_header,
    sign_request,
    signature_key_id,
    verify_request,
)

# draft-cavage-http-signatures-12, appendix C: the test key and request.
SPEC_PRIVATE_PEM = """-----BEGIN RSA PRIVATE KEY-----
MIICXgIBAAKBgQDCFENGw33yGihy92pDjZQhl0C36rPJj+CvfSC8+q28hxA161QF
NUd13wuCTUcq0Qd2qsBe/2hFyc2DCJJg0h1L78+6Z4UMR7EOcpfdUE9Hf3m/hs+F
UR45uBJeDK1HSFHD8bHKD6kv8FPGfJTotc+2xjJwoYi+1hqp1fIekaxsyQIDAQAB
AoGBAJR8ZkCUvx5kzv+utdl7T5MnordT1TvoXXJGXK7ZZ+UuvMNUCdN2QPc4sBiA
QWvLw1cSKt5DsKZ8UETpYPy8pPYnnDEz2dDYiaew9+xEpubyeW2oH4Zx71wqBtOK
kqwrXa/pzdpiucRRjk6vE6YY7EBBs/g7uanVpGibOVAEsqH1AkEA7DkjVH28WDUg
f1nqvfn2Kj6CT7nIcE3jGJsZZ7zlZmBmHFDONMLUrXR/Zm3pR5m0tCmBqa5RK95u
412jt1dPIwJBANJT3v8pnkth48bQo/fKel6uEYyboRtA5/uHuHkZ6FQF7OUkGogc
mSJluOdc5t6hI1VsLn0QZEjQZMEOWr+wKSMCQQCC4kXJEsHAve77oP6HtG/IiEn7
kpyUXRNvFsDE0czpJJBvL/aRFUJxuRK91jhjC68sA7NsKMGg5OXb5I5Jj36xAkEA
gIT7aFOYBFwGgQAQkWNKLvySgKbAZRTeLBacpHMuQdl1DfdntvAyqpAZ0lY0RKmW
G6aFKaqQfOXKCyWoUiVknQJAXrlgySFci/2ueKlIE1QqIiLSZ8V8OlpFLRnb1pzI
7U1yQXnTAEFYM560yJlzUpOb1V4cScGd365tiSMvxLOvTA==
-----END RSA PRIVATE KEY-----
"""
SPEC_PUBLIC_PEM = """-----BEGIN PUBLIC KEY-----
MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDCFENGw33yGihy92pDjZQhl0C3
6rPJj+CvfSC8+q28hxA161QFNUd13wuCTUcq0Qd2qsBe/2hFyc2DCJJg0h1L78+6
Z4UMR7EOcpfdUE9Hf3m/hs+FUR45uBJeDK1HSFHD8bHKD6kv8FPGfJTotc+2xjJw
oYi+1hqp1fIekaxsyQIDAQAB
-----END PUBLIC KEY-----
"""
SPEC_BODY = b'{"hello": "world"}'
SPEC_DIGEST = "SHA-256=X48E9qOokqqrvdts8nOJRJN3OWDUoyWxBf7kbu9DBPE="
SPEC_PATH, SPEC_QUERY = "/foo", "param=value&pet=dog"
SPEC_DATE = "Sun, 05 Jan 2014 21:31:40 GMT"
SPEC_NOW = datetime(2014, 1, 5, 21, 32, 0, tzinfo=UTC)
# httpsig's own tests sign the same request with the date of earlier drafts.
HTTPSIG_DATE = "Thu, 05 Jan 2014 21:31:40 GMT"
ALL_HEADERS = "(request-target) host date content-type digest content-length"
BASIC_HEADERS = "(request-target) host date"
VECTORS = {
    # (date, headers param or None for the default): signature
    (SPEC_DATE, None): "SjWJWbWN7i0wzBvtPl8rbASWz5xQW6mcJmn+ibttBqtifLN7Sazz6m79cNfwwb8DMJ5cou1s"
    "7uEGKKCs+FLEEaDV5lp7q25WqS+lavg7T8hc0GppauB6hbgEKTwblDHYGEtbGmtdHgVCk9SuS13F0hZ8FD0k/5OxEPXe5WozsbM=",
    (SPEC_DATE, BASIC_HEADERS): "qdx+H7PHHDZgy4y/Ahn9Tny9V3GP6YgBPyUXMmoxWtLbHpUnXS2mg2+SbrQDMCJy"
    "pxBLSPQR2aAjn7ndmw2iicw3HMbe8VfEdKFYRqzic+efkb3nndiv/x1xSHDJWeSWkx3ButlYSuBskLu6kd9Fswtemr3lgdDEmn04swr2Os0=",
    (SPEC_DATE, ALL_HEADERS): "vSdrb+dS3EceC9bcwHSo4MlyKS59iFIrhgYkz8+oVLEEzmYZZvRs8rgOp+63LEM3v+MF"
    "HB32NfpB2bEKBIvB1q52LaEUHFv120V01IL+TAD48XaERZFukWgHoBTLMhYS2Gb51gWxpeIq8knRmPnYePbF5MOkR0Zkly4zKH7s1dE=",
    (
        HTTPSIG_DATE,
        None,
    ): "jKyvPcxB4JbmYY4mByyBY7cZfNl4OW9HpFQlG7N4YcJPteKTu4MWCLyk+gIr0wDgqtLWf9NLpMAM"
    "imdfsH7FSWGfbMFSrsVTHNTk0rK3usrfFnti1dxsM4jl0kYJCKTGI/UWkqiaxwNiKqGcdlEDrTcUhhsFsOIo8VhddmZTZ8w=",
    (
        HTTPSIG_DATE,
        BASIC_HEADERS,
    ): "HUxc9BS3P/kPhSmJo+0pQ4IsCo007vkv6bUm4Qehrx+B1Eo4Mq5/6KylET72ZpMU"
    "S80XvjlOPjKzxfeTQj4DiKbAzwJAb4HX3qX6obQTa00/qPDXlMepD2JtTw33yNnm/0xV7fQuvILN/ys+378Ysi082+4xBQFwvhNvSoVsGv4=",
    (
        HTTPSIG_DATE,
        ALL_HEADERS,
    ): "Ef7MlxLXoBovhil3AlyjtBwAL9g4TN3tibLj7uuNB3CROat/9KaeQ4hW2NiJ+pZ6HQE"
    "Ox9vYZAyi+7cmIkmJszJCut5kQLAwuX+Ms/mUFvpKlSo9StS2bMXDBNjOh4Auj774GFj4gwjS+3NhFeoqyr/MuN6HsEnkvn6zdgfE2i0=",
}

KEY_ID = "https://remote.example/c/garden#main-key"
OWNER = "https://remote.example/c/garden"
INBOX_URL = "https://local.example/inbox"
LOCAL_HOST = "local.example"
SPEC_HOST = "example.com"


def spec_headers(date: str = SPEC_DATE) -> dict[str, str]:
    return {
        "Host": "example.com",
        "Date": date,
        "Content-Type": "application/json",
        "Digest": SPEC_DIGEST,
        "Content-Length": "18",
    }


def spec_signature(headers_param: str | None, signature: str) -> str:
    covered = f',headers="{headers_param}"' if headers_param else ""
    return f'keyId="Test",algorithm="rsa-sha256"{covered},signature="{signature}"'


@dataclass
class FakeResolver:
    """Answers from a table; `on_refresh` is what a refetch finds (key rotation)."""

    records: dict[str, PublicKeyRecord]
    on_refresh: dict[str, PublicKeyRecord] | None = None
    calls: list[tuple[str, bool]] = field(default_factory=list)

    async def __call__(self, key_id: str, *, refresh: bool = False) -> PublicKeyRecord | None:
        self.calls.append((key_id, refresh))
        table = self.on_refresh if refresh and self.on_refresh is not None else self.records
        return table.get(key_id)


def resolver_for(public_pem: str, key_id: str = KEY_ID) -> FakeResolver:
    return FakeResolver({key_id: PublicKeyRecord(key_id, OWNER, public_pem)})


@pytest.fixture(scope="module")
def key_pair() -> tuple[str, str]:
    return generate_key_pair()


@pytest.fixture(scope="module")
def other_key_pair() -> tuple[str, str]:
    return generate_key_pair()


def raw_sign(
    private_pem: str,
    headers: Mapping[str, str],
    covered: list[str],
    *,
    target: str,
    method: str = "post",
    algorithm: str = "rsa-sha256",
    extra: str = "",
    created: int | None = None,
) -> str:
    """A signature made without our signer or httpsig, to test what httpsig cannot make."""
    lowered = {k.lower(): v for k, v in headers.items()}
    lines = []
    for name in covered:
        if name == "(request-target)":
            lines.append(f"(request-target): {method} {target}")
        elif name == "(created)":
            lines.append(f"(created): {created}")
        else:
            lines.append(f"{name}: {lowered[name]}")
    raw = load_private_key(private_pem).sign(
        "\n".join(lines).encode(), padding.PKCS1v15(), hashes.SHA256()
    )
    return (
        f'keyId="{KEY_ID}",algorithm="{algorithm}",headers="{" ".join(covered)}"{extra},'
        f'signature="{base64.b64encode(raw).decode()}"'
    )


async def verify_post(
    headers: Mapping[str, str],
    body: bytes,
    resolver: KeyResolver,
    *,
    path: str = "/inbox",
    query: str = "",
    now: datetime | None = None,
) -> SignatureInfo:
    return await verify_request(
        "POST", path, query, headers, body, resolver, expected_host=LOCAL_HOST, now=now
    )


# --- published vectors --------------------------------------------------------


def test_digest_header_matches_the_published_vector() -> None:
    assert digest_header(SPEC_BODY) == SPEC_DIGEST


@pytest.mark.parametrize(("date", "headers_param"), list(VECTORS))
def test_httpsig_reproduces_published_vectors(date: str, headers_param: str | None) -> None:
    covered = headers_param.split() if headers_param else None
    signer = httpsig.HeaderSigner(
        "Test", SPEC_PRIVATE_PEM, algorithm="rsa-sha256", headers=covered, sign_header="signature"
    )
    signed = signer.sign(spec_headers(date), method="POST", path=f"{SPEC_PATH}?{SPEC_QUERY}")
    assert f'signature="{VECTORS[date, headers_param]}"' in signed["signature"]


@pytest.mark.parametrize("date", [SPEC_DATE, HTTPSIG_DATE])
async def test_verifier_accepts_the_all_headers_vector(date: str) -> None:
    headers = spec_headers(date) | {
        "Signature": spec_signature(ALL_HEADERS, VECTORS[date, ALL_HEADERS])
    }
    now = datetime(2014, 1, 5, 21, 31, 40, tzinfo=UTC)
    info = await verify_request(
        "POST",
        SPEC_PATH,
        SPEC_QUERY,
        headers,
        SPEC_BODY,
        resolver_for(SPEC_PUBLIC_PEM, "Test"),
        expected_host=SPEC_HOST,
        now=now,
    )
    assert info == SignatureInfo(True, "Test", OWNER, False, None)


async def test_verifier_accepts_the_basic_vector_on_a_bodiless_request() -> None:
    headers = {
        "Host": "example.com",
        "Date": SPEC_DATE,
        "Signature": spec_signature(BASIC_HEADERS, VECTORS[SPEC_DATE, BASIC_HEADERS]),
    }
    info = await verify_request(
        "POST",
        SPEC_PATH,
        SPEC_QUERY,
        headers,
        b"",
        resolver_for(SPEC_PUBLIC_PEM, "Test"),
        expected_host=SPEC_HOST,
        now=SPEC_NOW,
    )
    assert info.valid, info.reason


async def test_default_vector_is_refused_because_it_signs_only_the_date() -> None:
    headers = spec_headers() | {"Signature": spec_signature(None, VECTORS[SPEC_DATE, None])}
    resolver = resolver_for(SPEC_PUBLIC_PEM, "Test")
    info = await verify_request(
        "POST",
        SPEC_PATH,
        SPEC_QUERY,
        headers,
        SPEC_BODY,
        resolver,
        expected_host=SPEC_HOST,
        now=SPEC_NOW,
    )
    assert not info.valid
    assert info.reason == "signature does not cover (request-target), host, digest"
    assert resolver.calls == []


def test_sign_request_produces_the_expected_signature_for_the_spec_request() -> None:
    headers = sign_request(
        "POST",
        f"http://example.com{SPEC_PATH}?{SPEC_QUERY}",
        {"Date": SPEC_DATE},
        SPEC_BODY,
        "Test",
        SPEC_PRIVATE_PEM,
    )
    signing_string = (
        f"(request-target): post {SPEC_PATH}?{SPEC_QUERY}\nhost: example.com\n"
        f"date: {SPEC_DATE}\ndigest: {SPEC_DIGEST}"
    )
    expected = load_private_key(SPEC_PRIVATE_PEM).sign(
        signing_string.encode(), padding.PKCS1v15(), hashes.SHA256()
    )
    assert headers["Host"] == "example.com"
    assert headers["Digest"] == SPEC_DIGEST
    assert headers["Signature"] == (
        'keyId="Test",algorithm="rsa-sha256",'
        f'signature="{base64.b64encode(expected).decode()}",'
        'headers="(request-target) host date digest"'
    )


# --- signing -------------------------------------------------------------------


def test_get_without_body_signs_no_digest(key_pair: tuple[str, str]) -> None:
    headers = sign_request(
        "GET", "https://remote.example:8443/c/x?page=2", {}, None, KEY_ID, key_pair[0]
    )
    assert "Digest" not in headers
    assert headers["Host"] == "remote.example:8443"
    assert 'headers="(request-target) host date"' in headers["Signature"]
    parsed = datetime.strptime(headers["Date"], "%a, %d %b %Y %H:%M:%S GMT").replace(tzinfo=UTC)
    assert abs(datetime.now(UTC) - parsed) < timedelta(seconds=5)


def test_sign_request_replaces_a_stale_digest_and_keeps_the_callers_date(
    key_pair: tuple[str, str],
) -> None:
    given = {"digest": "SHA-256=stale", "date": SPEC_DATE, "Accept": "x"}
    headers = sign_request("POST", INBOX_URL, given, b"{}", KEY_ID, key_pair[0])
    assert headers["Digest"] == digest_header(b"{}")
    assert "digest" not in headers
    assert headers["date"] == SPEC_DATE
    assert headers["Accept"] == "x"


async def test_our_signature_verifies_with_our_verifier(key_pair: tuple[str, str]) -> None:
    body = b'{"type": "Follow"}'
    headers = sign_request("POST", INBOX_URL, {"Content-Type": "x"}, body, KEY_ID, key_pair[0])
    info = await verify_post(headers, body, resolver_for(key_pair[1]))
    assert info == SignatureInfo(True, KEY_ID, OWNER, False, None)


async def test_our_signature_is_accepted_by_httpsig(key_pair: tuple[str, str]) -> None:
    body = b'{"type": "Follow"}'
    headers = sign_request("POST", INBOX_URL + "?a=1", {}, body, KEY_ID, key_pair[0])
    verifier = httpsig.HeaderVerifier(
        headers,
        key_pair[1],
        required_headers=["(request-target)", "host", "date", "digest"],
        method="POST",
        path="/inbox?a=1",
        sign_header="signature",
    )
    assert verifier.verify()


def test_our_signature_is_byte_for_byte_what_httpsig_writes(key_pair: tuple[str, str]) -> None:
    body = b'{"type": "Create"}'
    ours = sign_request("POST", INBOX_URL + "?a=1", {"Date": SPEC_DATE}, body, KEY_ID, key_pair[0])
    covered = ["(request-target)", "host", "date", "digest"]
    signer = httpsig.HeaderSigner(
        KEY_ID, key_pair[0], algorithm="rsa-sha256", headers=covered, sign_header="signature"
    )
    unsigned = {key: ours[key] for key in ("Host", "Date", "Digest")}
    theirs = signer.sign(unsigned, method="POST", path="/inbox?a=1")
    assert ours["Signature"] == theirs["signature"]


async def test_httpsig_signature_is_accepted_by_our_verifier(key_pair: tuple[str, str]) -> None:
    body = b'{"type": "Create"}'
    covered = ["(request-target)", "host", "date", "digest"]
    signer = httpsig.HeaderSigner(
        KEY_ID, key_pair[0], algorithm="rsa-sha256", headers=covered, sign_header="signature"
    )
    unsigned = {
        "Host": "local.example",
        "Date": formatdate(usegmt=True),
        "Digest": digest_header(body),
    }
    signed = signer.sign(unsigned, method="POST", path="/inbox")
    assert (await verify_post(signed, body, resolver_for(key_pair[1]))).valid


def test_httpsig_accepts_the_vector_our_verifier_accepts() -> None:
    headers = spec_headers() | {
        "Signature": spec_signature(ALL_HEADERS, VECTORS[SPEC_DATE, ALL_HEADERS])
    }
    verifier = httpsig.HeaderVerifier(
        headers,
        SPEC_PUBLIC_PEM,
        method="POST",
        path=f"{SPEC_PATH}?{SPEC_QUERY}",
        sign_header="signature",
    )
    assert verifier.verify()


# --- refusals ------------------------------------------------------------------

Mutation = Callable[[dict[str, str], str], tuple[dict[str, str], bytes]]
BODY = b'{"type": "Create", "id": "https://remote.example/a/1"}'


def _drop_signature(h: dict[str, str], _: str) -> tuple[dict[str, str], bytes]:
    return {k: v for k, v in h.items() if k != "Signature"}, BODY


def _tamper_body(h: dict[str, str], _: str) -> tuple[dict[str, str], bytes]:
    return h, BODY.replace(b"Create", b"Delete")


def _tamper_host(h: dict[str, str], _: str) -> tuple[dict[str, str], bytes]:
    return h | {"Host": "evil.example"}, BODY


def _respell_host(h: dict[str, str], _: str) -> tuple[dict[str, str], bytes]:
    """Still this host, so the host check passes; but not the bytes that were signed."""
    return h | {"Host": "LOCAL.example:443"}, BODY


def _tamper_date(h: dict[str, str], _: str) -> tuple[dict[str, str], bytes]:
    return h | {"Date": formatdate(time.time() - 60, usegmt=True)}, BODY


def _wrong_digest(h: dict[str, str], pem: str) -> tuple[dict[str, str], bytes]:
    unsigned = {
        "Host": "local.example",
        "Date": formatdate(usegmt=True),
        "Digest": digest_header(b"other"),
    }
    covered = ["(request-target)", "host", "date", "digest"]
    return unsigned | {"Signature": raw_sign(pem, unsigned, covered, target="/inbox")}, BODY


def _digest_unsigned(h: dict[str, str], pem: str) -> tuple[dict[str, str], bytes]:
    covered = ["(request-target)", "host", "date"]
    return h | {"Signature": raw_sign(pem, h, covered, target="/inbox")}, BODY


def _algorithm(h: dict[str, str], _: str) -> tuple[dict[str, str], bytes]:
    return h | {"Signature": h["Signature"].replace("rsa-sha256", "rsa-sha512")}, BODY


def _garbage(h: dict[str, str], _: str) -> tuple[dict[str, str], bytes]:
    return h | {"Signature": 'keyId="a" algorithm'}, BODY


def _no_digest_header(h: dict[str, str], _: str) -> tuple[dict[str, str], bytes]:
    return {k: v for k, v in h.items() if k != "Digest"}, BODY


def _sha512_only(h: dict[str, str], _: str) -> tuple[dict[str, str], bytes]:
    return h | {"Digest": "SHA-512=" + base64.b64encode(b"x" * 64).decode()}, BODY


def _stale(seconds: int) -> Mutation:
    def mutate(h: dict[str, str], pem: str) -> tuple[dict[str, str], bytes]:
        date = formatdate(time.time() + seconds, usegmt=True)
        return sign_request("POST", INBOX_URL, {"Date": date}, BODY, KEY_ID, pem), BODY

    return mutate


REFUSALS: dict[str, tuple[Mutation, str, bool, bool]] = {
    # name: (mutation, reason, expired, key looked up)
    "missing signature": (_drop_signature, "no Signature header", False, False),
    "unparseable signature": (_garbage, "Signature header is not parseable", False, False),
    "unsupported algorithm": (
        _algorithm,
        "unsupported signature algorithm 'rsa-sha512'",
        False,
        False,
    ),
    "digest not signed": (_digest_unsigned, "signature does not cover digest", False, False),
    "digest of another body": (_wrong_digest, "Digest does not match the body", False, False),
    "tampered body": (_tamper_body, "Digest does not match the body", False, False),
    "no digest header": (
        _no_digest_header,
        "request has a body but no Digest header",
        False,
        False,
    ),
    "no sha-256 digest": (_sha512_only, "Digest header has no SHA-256 value", False, False),
    "signed for another host": (_tamper_host, "is not this server", False, False),
    "host respelled after signing": (_respell_host, "signature does not verify", False, True),
    "tampered date": (_tamper_date, "signature does not verify", False, True),
    "date 6 minutes old": (_stale(-360), "is outside 0:05:00", True, False),
    "date 6 minutes ahead": (_stale(360), "is outside 0:05:00", True, False),
}


@pytest.mark.parametrize("case", list(REFUSALS))
async def test_refusals_have_a_reason_and_are_logged(
    case: str, key_pair: tuple[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    mutate, reason, expired, looked_up = REFUSALS[case]
    signed = sign_request("POST", INBOX_URL, {}, BODY, KEY_ID, key_pair[0])
    headers, body = mutate(signed, key_pair[0])
    resolver = resolver_for(key_pair[1])
    with caplog.at_level(logging.INFO, logger="federation.signatures"):
        info = await verify_post(headers, body, resolver)
    assert not info.valid
    assert info.reason is not None and reason in info.reason
    assert info.expired is expired
    assert info.key_owner is None
    assert bool(resolver.calls) is looked_up
    assert any(reason in r.getMessage() and r.levelno == logging.INFO for r in caplog.records)


async def test_unknown_key_is_refused(key_pair: tuple[str, str]) -> None:
    headers = sign_request("POST", INBOX_URL, {}, BODY, KEY_ID, key_pair[0])
    resolver = FakeResolver({})
    info = await verify_post(headers, BODY, resolver)
    assert (info.valid, info.key_id, info.reason) == (False, KEY_ID, f"unknown key {KEY_ID}")
    assert resolver.calls == [(KEY_ID, False)]


async def test_key_that_cannot_be_fetched_is_refused(key_pair: tuple[str, str]) -> None:
    async def gone(key_id: str, *, refresh: bool = False) -> PublicKeyRecord | None:
        raise ObjectGone("actor deleted")

    headers = sign_request("POST", INBOX_URL, {}, BODY, KEY_ID, key_pair[0])
    info = await verify_post(headers, BODY, gone)
    assert not info.valid
    assert info.reason == f"key {KEY_ID} could not be fetched: actor deleted"


async def test_signature_by_another_key_is_refused_after_one_refresh(
    key_pair: tuple[str, str], other_key_pair: tuple[str, str]
) -> None:
    headers = sign_request("POST", INBOX_URL, {}, BODY, KEY_ID, other_key_pair[0])
    resolver = resolver_for(key_pair[1])
    info = await verify_post(headers, BODY, resolver)
    assert (info.valid, info.reason) == (False, "signature does not verify")
    assert resolver.calls == [(KEY_ID, False), (KEY_ID, True)]


async def test_rotated_key_is_picked_up_by_refetching_once(
    key_pair: tuple[str, str], other_key_pair: tuple[str, str]
) -> None:
    old = PublicKeyRecord(KEY_ID, OWNER, key_pair[1])
    new = PublicKeyRecord(KEY_ID, OWNER, other_key_pair[1])
    resolver = FakeResolver({KEY_ID: old}, on_refresh={KEY_ID: new})
    headers = sign_request("POST", INBOX_URL, {}, BODY, KEY_ID, other_key_pair[0])
    info = await verify_post(headers, BODY, resolver)
    assert info == SignatureInfo(True, KEY_ID, OWNER, False, None)
    assert resolver.calls == [(KEY_ID, False), (KEY_ID, True)]


async def test_unusable_published_key_is_refused(key_pair: tuple[str, str]) -> None:
    headers = sign_request("POST", INBOX_URL, {}, BODY, KEY_ID, key_pair[0])
    info = await verify_post(headers, BODY, resolver_for("-----BEGIN PUBLIC KEY-----\nnope\n"))
    assert (info.valid, info.reason) == (False, "signature does not verify")


async def test_signed_header_absent_from_request_is_refused(key_pair: tuple[str, str]) -> None:
    unsigned = {
        "Host": "local.example",
        "Date": formatdate(usegmt=True),
        "Digest": digest_header(BODY),
    }
    covered = ["(request-target)", "host", "date", "digest", "content-type"]
    signature = raw_sign(key_pair[0], unsigned | {"Content-Type": "x"}, covered, target="/inbox")
    info = await verify_post(unsigned | {"Signature": signature}, BODY, resolver_for(key_pair[1]))
    assert (info.valid, info.reason) == (False, "signed header content-type is missing")


# --- accepted variants ---------------------------------------------------------


def _digest_signed_headers(digest: str) -> dict[str, str]:
    return {"Host": "local.example", "Date": formatdate(usegmt=True), "Digest": digest}


@pytest.mark.parametrize(
    "digest",
    [
        "sha-256=" + digest_header(BODY).removeprefix("SHA-256="),
        "SHA-512=AAAA," + digest_header(BODY),
        "SHA-256=AAAA, " + digest_header(BODY),
    ],
    ids=["lowercase", "sha512-then-sha256", "one-of-two-sha256"],
)
async def test_digest_variants_are_accepted(digest: str, key_pair: tuple[str, str]) -> None:
    unsigned = _digest_signed_headers(digest)
    covered = ["(request-target)", "host", "date", "digest"]
    headers = unsigned | {"Signature": raw_sign(key_pair[0], unsigned, covered, target="/inbox")}
    info = await verify_post(headers, BODY, resolver_for(key_pair[1]))
    assert info.valid, info.reason


async def test_hs2019_is_verified_as_rsa_sha256(key_pair: tuple[str, str]) -> None:
    unsigned = _digest_signed_headers(digest_header(BODY))
    covered = ["(request-target)", "host", "date", "digest"]
    signature = raw_sign(key_pair[0], unsigned, covered, target="/inbox", algorithm="hs2019")
    info = await verify_post(unsigned | {"Signature": signature}, BODY, resolver_for(key_pair[1]))
    assert info.valid, info.reason


@pytest.mark.parametrize(("age", "valid"), [(-30, True), (-400, False)])
async def test_created_can_replace_date(age: int, valid: bool, key_pair: tuple[str, str]) -> None:
    created = int(time.time()) + age
    unsigned = {"Host": "local.example", "Digest": digest_header(BODY)}
    covered = ["(request-target)", "(created)", "host", "digest"]
    signature = raw_sign(
        key_pair[0],
        unsigned,
        covered,
        target="/inbox",
        algorithm="hs2019",
        extra=f",created={created}",
        created=created,
    )
    info = await verify_post(unsigned | {"Signature": signature}, BODY, resolver_for(key_pair[1]))
    assert (info.valid, info.expired) == (valid, not valid)


@pytest.mark.parametrize(
    ("signed_target", "path", "query"),
    [
        ("/inbox?page=1&x=%20", "/inbox", "page=1&x=%20"),
        ("/inbox", "/inbox", "page=1"),
        ("/inbox?page=1", "/inbox?page=1", ""),
        ("/inbox", "/inbox?page=1", ""),
    ],
    ids=["with-query", "signer-dropped-query", "query-inside-path", "dropped-and-inside-path"],
)
async def test_request_target_query_variants(
    signed_target: str, path: str, query: str, key_pair: tuple[str, str]
) -> None:
    unsigned = {"Host": "local.example", "Date": formatdate(usegmt=True)}
    covered = ["(request-target)", "host", "date"]
    headers = unsigned | {
        "Signature": raw_sign(key_pair[0], unsigned, covered, target=signed_target, method="get")
    }
    info = await verify_request(
        "GET", path, query, headers, b"", resolver_for(key_pair[1]), expected_host=LOCAL_HOST
    )
    assert info.valid, info.reason


async def test_query_is_not_ignored_when_signed(key_pair: tuple[str, str]) -> None:
    unsigned = {"Host": "local.example", "Date": formatdate(usegmt=True)}
    covered = ["(request-target)", "host", "date"]
    headers = unsigned | {
        "Signature": raw_sign(key_pair[0], unsigned, covered, target="/o?id=1", method="get")
    }
    info = await verify_request(
        "GET", "/o", "id=2", headers, b"", resolver_for(key_pair[1]), expected_host=LOCAL_HOST
    )
    assert not info.valid


async def test_multidict_headers_with_any_case_are_accepted(key_pair: tuple[str, str]) -> None:
    signed = sign_request("POST", INBOX_URL, {}, BODY, KEY_ID, key_pair[0])
    headers = CIMultiDictProxy(CIMultiDict({k.upper(): v for k, v in signed.items()}))
    assert (await verify_post(headers, BODY, resolver_for(key_pair[1]))).valid


async def test_authorization_signature_header_is_accepted(key_pair: tuple[str, str]) -> None:
    signed = sign_request("POST", INBOX_URL, {}, BODY, KEY_ID, key_pair[0])
    signed["Authorization"] = "Signature " + signed.pop("Signature")
    assert (await verify_post(signed, BODY, resolver_for(key_pair[1]))).valid


def test_signature_key_id_is_extracted_cheaply(key_pair: tuple[str, str]) -> None:
    signed = sign_request("GET", INBOX_URL, {}, None, KEY_ID, key_pair[0])
    assert signature_key_id(CIMultiDictProxy(CIMultiDict(signed))) == KEY_ID
    assert signature_key_id({}) is None
    assert signature_key_id({"signature": 'not="closed'}) is None


# --- the signed host must be ours -----------------------------------------------------------


async def test_valid_signature_made_for_another_server_is_refused_without_a_key_lookup(
    key_pair: tuple[str, str],
) -> None:
    """A partner's signed GET to an attacker's server, replayed to us with our path."""
    made_elsewhere = sign_request(
        "GET", "https://attacker.example/c/garden/partner-listings", {}, None, KEY_ID, key_pair[0]
    )
    resolver = resolver_for(key_pair[1])
    info = await verify_request(
        "GET",
        "/c/garden/partner-listings",
        "",
        made_elsewhere,
        b"",
        resolver,
        expected_host=LOCAL_HOST,
    )
    assert not info.valid and info.key_owner is None
    assert info.reason is not None and "'attacker.example' is not this server" in info.reason
    assert resolver.calls == []
    same_request_here = await verify_request(
        "GET",
        "/c/garden/partner-listings",
        "",
        made_elsewhere,
        b"",
        resolver,
        expected_host="attacker.example",
    )
    assert same_request_here.valid, "the signature itself is fine, only its host is wrong"


@pytest.mark.parametrize(
    ("signed_host", "expected_host", "valid"),
    [
        ("local.example", "local.example", True),
        ("Local.EXAMPLE", "local.example", True),
        ("local.example:443", "local.example", True),
        ("local.example:80", "local.example", True),
        ("local.example.", "local.example", True),
        ("local.example", "local.example:443", True),
        ("local.example:8443", "local.example:8443", True),
        ("local.example", "local.example:8443", False),
        ("local.example:8444", "local.example:8443", False),
        ("127.0.0.1:8001", "127.0.0.1:8000", False),
        ("[::1]:8000", "[::1]:8000", True),
        ("sub.local.example", "local.example", False),
        ("local.example.evil.example", "local.example", False),
        ("evil.example/local.example", "local.example", False),
        ("user@local.example", "local.example", False),
        ("local.example:x", "local.example", False),
    ],
)
async def test_signed_host_must_be_this_server(
    signed_host: str, expected_host: str, valid: bool, key_pair: tuple[str, str]
) -> None:
    headers = sign_request("POST", INBOX_URL, {"Host": signed_host}, BODY, KEY_ID, key_pair[0])
    resolver = resolver_for(key_pair[1])
    info = await verify_request(
        "POST", "/inbox", "", headers, BODY, resolver, expected_host=expected_host
    )
    assert info.valid is valid, info.reason
    assert bool(resolver.calls) is valid


async def test_unsigned_host_is_refused_even_when_it_is_ours(key_pair: tuple[str, str]) -> None:
    unsigned = {"Host": LOCAL_HOST, "Date": formatdate(usegmt=True)}
    headers = unsigned | {
        "Signature": raw_sign(key_pair[0], unsigned, ["(request-target)", "date"], target="/o")
    }
    info = await verify_request(
        "POST", "/o", "", headers, b"", resolver_for(key_pair[1]), expected_host=LOCAL_HOST
    )
    assert not info.valid and info.reason == "signature does not cover host"


def test_normalize_host() -> None:
    assert normalize_host("Example.COM:443") == "example.com"
    assert normalize_host("example.com:8080") == "example.com:8080"
    assert normalize_host("[::1]:8080") == "[::1]:8080"
    assert normalize_host("[::1]") == "[::1]"
    for bad in ("", " ", "a/b", "a@b", "a:99999", "a:port", "a b", ":80"):
        assert normalize_host(bad) is None, bad


async def test_busy_resolver_is_reported_with_a_retry_time(key_pair: tuple[str, str]) -> None:
    async def busy(key_id: str, *, refresh: bool = False) -> PublicKeyRecord | None:
        raise KeyLookupBusy("too many fetches", url=key_id, retry_after=7.0)

    headers = sign_request("POST", INBOX_URL, {}, BODY, KEY_ID, key_pair[0])
    info = await verify_post(headers, BODY, busy)
    assert not info.valid and info.retry_after == 7.0


@pytest.mark.parametrize("offset", [90, -45, 0])
async def test_a_valid_signature_reports_how_far_the_senders_clock_is_from_ours(
    offset: int, key_pair: tuple[str, str]
) -> None:
    """Stewards see each peer's clock drift before it reaches the refusal limit."""
    sent = 1_790_000_000
    unsigned = {"Host": "local.example", "Date": formatdate(sent, usegmt=True)}
    covered = ["(request-target)", "host", "date"]
    headers = unsigned | {
        "Signature": raw_sign(key_pair[0], unsigned, covered, target="/inbox", method="get")
    }
    info = await verify_request(
        "GET", "/inbox", "", headers, b"", resolver_for(key_pair[1]),
        expected_host=LOCAL_HOST, now=datetime.fromtimestamp(sent - offset, UTC),
    )  # fmt: skip
    assert info.valid, info.reason
    assert info.skew_seconds == offset
