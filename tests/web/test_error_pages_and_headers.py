"""Every answer carries the security headers; errors are a styled page for browsers and
the JSON error shape under /api."""

from __future__ import annotations

import pytest
from aiohttp import web

from node.app import init_app
from node.config import NodeConfig
from tests.web.conftest import Browser, ClientFactory

HTML = {"Accept": "text/html,application/xhtml+xml,*/*;q=0.8"}  # what a browser sends
SECURITY_HEADERS = ("X-Content-Type-Options", "Referrer-Policy", "X-Frame-Options")

# method, path, expected status, "page" (styled HTML) / "json" (error shape) / None (no error)
CASES = [
    ("GET", "/nonexistent-page", 404, "page"),
    ("GET", "/listings/not-an-id", 404, "page"),
    ("GET", "/static/no-such-file.css", 404, "page"),
    ("GET", "/static/..%2F..%2Fconfig.toml", 404, "page"),
    ("GET", "/static/%2Fetc%2Fpasswd", 404, "page"),
    ("DELETE", "/signin", 405, "page"),
    ("GET", "/boom", 500, "page"),
    ("GET", "/api/v1/nope", 404, "json"),
    ("PUT", "/api/v1/listings", 405, "json"),
    ("GET", "/api/v1/listings", 401, "json"),
    ("GET", "/api/docs/static/nothing.js", 404, "json"),
    ("GET", "/api/boom", 500, "json"),
    ("GET", "/api/docs", 200, None),
    ("GET", "/api/docs/static/swagger-ui-bundle.js", 200, None),
    ("GET", "/api/v1/openapi.json", 200, None),
    ("GET", "/static/style.css", 200, None),
    ("GET", "/signin", 200, None),
    ("GET", "/", 303, None),
]


async def _broken(_request: web.Request) -> web.Response:
    raise RuntimeError("a bug")


@pytest.fixture
async def node_with_a_bug(aiohttp_client: ClientFactory, node_config: NodeConfig) -> Browser:
    """The real app plus two handlers that fail, to see what an unexpected error looks like."""
    app = init_app(node_config)
    app.router.add_get("/boom", _broken)
    app.router.add_get("/api/boom", _broken)
    return Browser(await aiohttp_client(app))


@pytest.mark.parametrize(("method", "path", "status", "kind"), CASES)
async def test_every_answer_carries_the_security_headers(
    node_with_a_bug: Browser, method: str, path: str, status: int, kind: str | None
) -> None:
    client = node_with_a_bug.client
    response = await client.request(method, path, headers=HTML, allow_redirects=False)
    body = await response.text()
    assert response.status == status, body[:300]
    for header in SECURITY_HEADERS:
        assert response.headers.get(header), f"{header} missing on {method} {path}"
    csp = response.headers.get("Content-Security-Policy", "")
    assert "frame-ancestors 'none'" in csp, csp
    # The one other origin a page may name: the map tile server, for images only.
    elsewhere = csp.replace("img-src 'self' data: https://tile.openstreetmap.org;", "")
    assert "http:" not in elsewhere and "https:" not in elsewhere and "*" not in elsewhere
    if kind == "page":
        assert response.content_type == "text/html"
        assert '<link rel="stylesheet" href="/static/style.css' in body
        assert "<h1>" in body and "Traceback" not in body and "a bug" not in body
        assert "script-src 'self'" in csp
    elif kind == "json":
        assert response.content_type == "application/json"
        error = (await response.json())["error"]
        assert error["code"] and error["message"]
    if status == 405:
        assert response.headers["Allow"]


async def test_unknown_page_says_what_happened_in_words(browser: Browser) -> None:
    response = await browser.client.get("/nonexistent-page", headers=HTML)
    html = await response.text()
    assert "<h1>Not found</h1>" in html
    assert "404: Not Found" not in html


async def test_api_docs_get_a_policy_that_allows_only_our_own_scripts(browser: Browser) -> None:
    response = await browser.get("/api/docs")
    csp = response.headers["Content-Security-Policy"]
    directives = dict(part.strip().split(" ", 1) for part in csp.split(";"))
    assert directives["script-src"] == "'self'"
    assert directives["default-src"] == "'none'"
    assert directives["connect-src"] == "'self'"


async def test_a_client_asking_for_json_gets_json_errors_outside_the_api(browser: Browser) -> None:
    response = await browser.client.get(
        "/nonexistent-page", headers={"Accept": "application/activity+json"}
    )
    assert response.status == 404
    assert (await response.json())["error"]["code"] == "not_found"
