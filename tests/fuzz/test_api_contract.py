"""Fuzz the JSON API against its own OpenAPI document, on one real node on 127.0.0.1.

schemathesis generates valid and invalid requests for every operation of
/api/v1/openapi.json and checks that the node never answers 5xx, answers only
documented status codes, and that every response matches its documented schema.
A second test sends hand-written hostile bodies to every POST/PATCH endpoint.

The node runs on SQLite, or on PostgreSQL when COMMONS_TEST_POSTGRES_URL is set
(as in CI): PostgreSQL is the stricter store (NUL characters, column lengths).

Nothing here may reach another host: the two operations that fetch a URL taken
from the request body are never fuzzed, and only receive bodies that fail
validation before any handler runs.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests
import schemathesis
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from tests.conftest import PG_ENV, _in_thread, _pg_execute, _with_database, examples
from tests.support.processes import RunningNode, free_port, init_node, serve_node

STEWARD_PASSWORD = "steward-password"  # what init_node gives the first steward
SEED = 20240601
# Per operation, on top of the deterministic coverage phase (which sends every boundary
# and every kind of invalid value the schema allows, whatever the profile).
MAX_EXAMPLES = examples(100)

# These fetch a URL named in the body (learn a peer, resolve a partner by WebFinger,
# read a relay's actor). Fuzzed bodies could name any host on the internet, so they
# are never fuzzed.
NETWORK_OPERATIONS = {
    ("POST", "/api/v1/discovery/peers"): "add_peer",
    ("POST", "/api/v1/partnerships/propose"): "propose_partnership",
    ("POST", "/api/v1/relays"): "add_relay",
}
# These revoke the fuzzing token itself (its id is a small number a fuzzer soon tries);
# tests/node/test_auth_tokens.py covers them.
TOKEN_REVOKING = {
    ("DELETE", "/api/v1/auth/token"): "revoke_current_token",
    ("DELETE", "/api/v1/auth/tokens/{id}"): "revoke_token_by_id",
}
UNFUZZED = NETWORK_OPERATIONS | TOKEN_REVOKING

# What every generated request's response is held to.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
    ignored_auth,
    unsupported_method,
]
# Not `positive_data_acceptance`: the schema cannot say that `visibility` and
# `is_public` must agree, and the node rightly answers 422 when they contradict.


@dataclass
class FuzzNode:
    node: RunningNode
    token: str

    @property
    def base_url(self) -> str:
        return self.node.base_url

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str | None]:
    admin = os.environ.get(PG_ENV)
    if not admin:
        yield None
        return
    name = f"commons_fuzz_{uuid.uuid4().hex[:12]}"
    _in_thread(asyncio.run, _pg_execute(admin, f'CREATE DATABASE "{name}"'))
    try:
        yield _with_database(admin, name)
    finally:
        drop = f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
        _in_thread(asyncio.run, _pg_execute(admin, drop))


@pytest.fixture(scope="module")
def fuzz_node(
    tmp_path_factory: pytest.TempPathFactory, postgres_url: str | None
) -> Iterator[FuzzNode]:
    data: Path = tmp_path_factory.mktemp("fuzz") / "node"
    extra = ["--location", "51.50,-0.12"]
    if postgres_url:
        extra += ["--database-url", postgres_url]
    base_url = init_node(data, slug="fuzz", name="Fuzz Commons", port=free_port(), extra=extra)
    assert base_url.startswith("http://127.0.0.1:")
    node = serve_node(data, base_url)
    try:
        resp = requests.post(
            f"{base_url}/api/v1/auth/token",
            json={"username": "steward", "password": STEWARD_PASSWORD},
            timeout=30,
        )
        assert resp.status_code == 200, resp.text
        yield FuzzNode(node, resp.json()["token"])
    finally:
        code = node.stop()
    log = node.log()
    assert code == 0, log[-5000:]
    errors = [line for line in log.splitlines() if "unhandled error" in line]
    assert not errors, "\n".join(errors[:20])


@pytest.fixture(scope="module")
def api_schema(fuzz_node: FuzzNode) -> schemathesis.BaseSchema:
    config = schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "base-url": fuzz_node.base_url,
            "headers": fuzz_node.auth,
            "request-timeout": 30,
            "operations": [{"include-operation-id": list(UNFUZZED.values()), "enabled": False}],
            "generation": {
                "max-examples": MAX_EXAMPLES,
                "deterministic": True,
                "database": "none",
            },
        }
    )
    return schemathesis.openapi.from_url(
        f"{fuzz_node.base_url}/api/v1/openapi.json", config=config, timeout=30
    )


# Filters must sit on the lazy schema: the fixture's own are replaced when it is resolved.
schema = (
    schemathesis.pytest.from_fixture("api_schema")
    .exclude(path=[path for _, path in NETWORK_OPERATIONS])
    .exclude(operation_id=list(UNFUZZED.values()))
)


@pytest.fixture(autouse=True)
def _schemathesis_nodeid_shim(request: pytest.FixtureRequest) -> None:
    """schemathesis 4.32 renames the running item through `Node._nodeid`, gone in pytest 9.2."""
    if not hasattr(request.node, "_nodeid"):
        request.node._nodeid = request.node.nodeid


@schema.parametrize()
def test_api_matches_its_openapi_document(case: schemathesis.Case) -> None:
    assert (case.method.upper(), case.path) not in UNFUZZED
    assert case.operation.base_url is not None
    assert case.operation.base_url.startswith("http://127.0.0.1:")
    case.call_and_validate(checks=CHECKS)


def test_network_operations_are_the_ones_excluded(fuzz_node: FuzzNode) -> None:
    """The exclusion list names real operations; renaming one must not un-exclude it."""
    doc = requests.get(f"{fuzz_node.base_url}/api/v1/openapi.json", timeout=30).json()
    for (method, path), operation_id in UNFUZZED.items():
        assert doc["paths"][path][method.lower()]["operationId"] == operation_id


# --- hand-written hostile bodies ---------------------------------------------------

HUGE_INT = 10**40
UNICODE = "ʇxǝʇ 🌍 \u202eevil\u202c ﷽ \u200b"
DEEP = {"a": {"b": {"c": [{"d": [[[{"e": None}]]]}]}}}

# Each body must be refused. For the network operations every body fails validation
# of its one required field, so no handler (and no fetch) ever runs.
HOSTILE: dict[tuple[str, str], list[Any]] = {
    ("POST", "/api/v1/auth/token"): [
        {"username": 1, "password": 2},
        {"username": None, "password": None},
        {"username": "", "password": ""},
        {"username": {"$ne": ""}, "password": {"$ne": ""}},
        {"username": UNICODE, "password": UNICODE},
        {"username": "steward", "password": HUGE_INT},
        {"username": "steward", "password": STEWARD_PASSWORD, "community": "fu\u0000zz"},
        {"username": "steward", "password": STEWARD_PASSWORD, "admin": True},
        {"username": "x" * 65, "password": "NaN"},
    ],
    ("POST", "/api/v1/auth/password"): [
        {"current": 1, "new": 2},
        {"current": None, "new": None},
        {"current": "", "new": ""},
        {"current": STEWARD_PASSWORD},
        {"new": "a new password"},
        {"current": {"$ne": ""}, "new": "a new password"},
        {"current": STEWARD_PASSWORD, "new": "short"},
        {"current": STEWARD_PASSWORD, "new": "x" * 1025},
        {"current": STEWARD_PASSWORD, "new": "a\u0000bcdefghij"},
        {"current": STEWARD_PASSWORD, "new": "long enough pw", "role": "steward"},
    ],
    ("POST", "/api/v1/listings"): [
        {"kind": "gift", "title": "x"},
        {"kind": "offer", "title": ""},
        {"kind": "offer", "title": "   "},
        {"kind": "offer", "title": HUGE_INT},
        {"kind": "offer", "title": None},
        {"kind": None, "title": "x"},
        {"kind": "offer", "title": DEEP},
        {"kind": "offer", "title": "🌍" * 201},
        {"kind": "offer", "title": "a\u0000b"},
        {"kind": "offer", "title": "x", "description": DEEP},
        {"kind": "offer", "title": "x", "category": "\u0130" * 64},
        {"kind": "offer", "title": "x", "location": {"lat": "NaN", "lon": 0}},
        {"kind": "offer", "title": "x", "location": {"lat": "Infinity", "lon": "-Infinity"}},
        {"kind": "offer", "title": "x", "location": {"lat": HUGE_INT, "lon": 0}},
        {"kind": "offer", "title": "x", "location": {"lat": 1e308, "lon": -1e308}},
        {"kind": "offer", "title": "x", "location": {"lat": 1, "lon": 2, "alt": 3}},
        {"kind": "offer", "title": "x", "location": [51.5, -0.12]},
        {"kind": "offer", "title": "x", "is_public": "maybe"},
        {"kind": "offer", "title": "x", "visibility": ""},
        {"kind": "offer", "title": "x", "visibility": "community", "is_public": True},
        {"kind": "offer", "title": "x", "id": "forged", "origin": "partner"},
    ],
    ("PATCH", "/api/v1/listings/{id}"): [
        {"kind": "gift"},
        {"title": ""},
        {"title": 5},
        {"title": "\u0000"},
        {"status": "deleted"},
        {"status": None, "ap_id": "https://elsewhere.invalid/x"},
        {"category": "\u0130" * 64},
        {"description": ["not", "a", "string"]},
        {"location": {"lat": "NaN", "lon": 0}},
        {"location": {"lat": 90.5, "lon": 0}},
        {"location": {}},
        {"is_public": 2},
        {"visibility": "community", "is_public": True},
    ],
    ("POST", "/api/v1/discovery/peers"): [
        {"url": 1},
        {"url": None},
        {"url": ""},
        {"url": "NaN"},
        {"url": HUGE_INT},
        {"url": {"href": "http://127.0.0.1/"}},
        {"url": ["http://127.0.0.1/"]},
        {"href": "http://127.0.0.1/"},
    ],
    ("POST", "/api/v1/relays"): [
        {"url": 1},
        {"url": None},
        {"url": ""},
        {"url": "short"},
        {"url": "x" * 2049},
        {"url": {"href": "http://127.0.0.1/actor"}},
        {"url": ["http://127.0.0.1/actor"]},
        {"href": "http://127.0.0.1/actor"},
    ],
    ("POST", "/api/v1/categories"): [
        {"slug": "Bad Slug!", "label": "x"},
        {"slug": "tools", "label": "Tools again"},
        {"slug": "", "label": ""},
        {"slug": 1, "label": 2},
        {"slug": "x" * 65, "label": "x"},
        {"slug": "fine", "label": "x" * 101},
        {"slug": "fu\u0000zz", "label": "x"},
        {"label": "no slug"},
    ],
    ("PATCH", "/api/v1/community"): [
        {"discoverable": "no"},
        {"discoverable": 0},
        {"discoverable": None, "name": "renamed"},
        {"is_discoverable": False},
    ],
    ("POST", "/api/v1/exchanges"): [
        {"listing": 1},
        {"listing": None},
        {"listing": ""},
        {"listing": "x", "hours": 0},
        {"listing": "x", "hours": "2"},
        {"listing": "x", "quantity": HUGE_INT},
        {"listing": "x", "quantity": 1.5},
        {"listing": ["x"]},
        {"listing": "x", "note": "n" * 5000},
    ],
    ("POST", "/api/v1/exchanges/{id}/messages"): [
        {"text": ""},
        {"text": None},
        {"text": 1},
        {"text": "t" * 6000},
        {"text": "hi", "extra": True},
    ],
    ("POST", "/api/v1/partnerships/propose"): [
        {"target": 1},
        {"target": None},
        {"target": ""},
        {"target": "ab"},
        {"target": HUGE_INT},
        {"target": {"id": "x@127.0.0.1"}},
        {"target": ["x@127.0.0.1"]},
        {"message": "hello"},
    ],
    ("POST", "/api/v1/federation/blocks"): [
        {"domain": ""},
        {"domain": "   "},
        {"domain": 1},
        {"domain": None},
        {"domain": {"host": "example.org"}},
        {"domain": "a/b"},
        {"domain": "ex\u0000ample.org"},
        {"domain": "x" * 256},
        {"domain": "a:b:" + "c" * 251},  # an IPv6-looking name gains brackets: 257 chars
    ],
    ("POST", "/api/v1/invites"): [
        {"role": "king"},
        {"role": None},
        {"role": 1},
        {"expires_in_hours": 0},
        {"expires_in_hours": 721},
        {"expires_in_hours": HUGE_INT},
        {"expires_in_hours": "24"},
        {"role": "member", "token": "chosen-by-me"},
    ],
    ("POST", "/api/v1/auth/register"): [
        {"invite": "unknown", "username": "newcomer", "password": "long enough pw"},
        {"invite": "", "username": "newcomer", "password": "long enough pw"},
        {"invite": None, "username": None, "password": None},
        {"invite": DEEP, "username": "newcomer", "password": "long enough pw"},
        {"invite": "x" * 257, "username": "newcomer", "password": "long enough pw"},
        {"invite": "unknown", "username": UNICODE, "password": UNICODE},
        {"invite": "unknown", "username": "a\u0000b", "password": "long enough pw"},
        {"invite": "unknown", "username": "newcomer", "password": "long enough pw", "role": 1},
    ],
    ("PATCH", "/api/v1/members/{username}"): [
        {"role": "king"},
        {"role": 1},
        {"active": "no"},
        {"active": 0},
        {"active": None, "role": DEEP},
        {"username": "someone-else"},
    ],
    ("POST", "/api/v1/auth/reset"): [
        {"token": "unknown", "password": "long enough pw"},
        {"token": "", "password": ""},
        {"token": None, "password": None},
        {"token": DEEP, "password": "long enough pw"},
        {"token": "unknown", "password": "x" * 1025},
        {"password": "long enough pw"},
    ],
    ("PATCH", "/api/v1/me"): [
        {"display_name": "x" * 101},
        {"display_name": 1},
        {"display_name": "a\u0007b"},
        {"bio": "y" * 1001},
        {"bio": DEEP},
        {"bio": "a\u0000b"},
        {"role": "steward"},
        {"username": "renamed"},
    ],
}

# Not a JSON object, or not JSON at all: sent to every POST/PATCH endpoint.
RAW_BODIES: list[tuple[str, bytes]] = [
    ("application/json", b"null"),
    ("application/json", b"[]"),
    ("application/json", b'"NaN"'),
    ("application/json", b"NaN"),
    ("application/json", b"1e400"),
    ("application/json", b'{"kind": '),
    ("application/json", b"\xff\xfe\x00"),
    ("application/json", b"[" * 5000 + b"]" * 5000),
    ("application/json", b""),
    ("text/plain", b'{"kind": "offer", "title": "x"}'),
    ("application/json", b'{"kind": "offer", "title": "' + b"x" * (2 * 1024 * 1024) + b'"}'),
]


def _error_problem(resp: requests.Response) -> str | None:
    """What is wrong with `resp` as the answer to bad input, or None."""
    if not 400 <= resp.status_code < 500:
        return f"{resp.status_code} {resp.text[:300]}"
    if not resp.headers.get("Content-Type", "").startswith("application/json"):
        return f"{resp.status_code} is not JSON: {resp.headers.get('Content-Type')}"
    body = resp.json()
    error = body.get("error") if isinstance(body, dict) else None
    if (
        set(body) != {"error"}
        or not isinstance(error, dict)
        or not isinstance(error.get("code"), str)
        or not error["code"]
        or not isinstance(error.get("message"), str)
        or not error["message"]
    ):
        return f"{resp.status_code} without the error shape: {resp.text[:300]}"
    return None


def _state(http: requests.Session, base_url: str) -> dict[str, Any]:
    state = {}
    for path in (
        "/api/v1/listings",
        "/api/v1/federation/blocks",
        "/api/v1/partnerships",
        "/api/v1/exchanges",
    ):
        resp = http.get(base_url + path, timeout=30)
        assert resp.status_code == 200, resp.text
        state[path] = resp.json()
    return state


def test_hostile_bodies_get_a_clear_4xx_and_change_nothing(fuzz_node: FuzzNode) -> None:
    base = fuzz_node.base_url
    with requests.Session() as http:
        http.headers.update(fuzz_node.auth)
        created = http.post(
            f"{base}/api/v1/listings",
            json={"kind": "offer", "title": "Ladder", "visibility": "public"},
            timeout=30,
        )
        assert created.status_code == 201, created.text
        listing_id = created.json()["id"]

        doc = http.get(f"{base}/api/v1/openapi.json", timeout=30).json()
        endpoints = [
            (method.upper(), path)
            for path, item in doc["paths"].items()
            for method in item
            if method in ("post", "patch")
        ]
        with_body = {
            (method.upper(), path)
            for path, item in doc["paths"].items()
            for method, op in item.items()
            if "requestBody" in op
        }
        assert with_body <= set(HOSTILE), f"write hostile bodies for {with_body - set(HOSTILE)}"

        before = _state(http, base)
        problems = []
        for method, path in endpoints:
            url = base + path.replace("{id}", listing_id if "listings" in path else "missing")
            url = url.replace("{host}", "nowhere.invalid")
            sends = [
                ("application/json", json.dumps(body).encode())
                for body in HOSTILE.get((method, path), [])
            ]
            for content_type, raw in sends + RAW_BODIES:
                resp = http.request(
                    method, url, data=raw, timeout=30, headers={"Content-Type": content_type}
                )
                if (method, path) not in with_body and "{" not in path:
                    # An action on the caller's own state that takes no body (mark all
                    # notifications read): the body is ignored; it must still never fail.
                    problem = f"{resp.status_code}" if resp.status_code >= 500 else None
                else:
                    problem = _error_problem(resp)
                if problem:
                    problems.append(f"{method} {path} {content_type} {raw[:160]!r}: {problem}")
        assert not problems, "\n".join(problems)
        assert _state(http, base) == before
