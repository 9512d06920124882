"""A real node (`commons-node init` + `serve` in a subprocess) and a real headless Chromium.

Chromium comes from the system (/usr/bin/chromium); Playwright never downloads
a browser here. Without Chromium the tests skip and say why, unless
COMMONS_REQUIRE_BROWSER=1 (CI), where a missing browser is a failure.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import pytest

from tests.support.processes import RunningNode, cli, free_port, init_node, serve_node

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Every test talks to nodes on 127.0.0.1 only; any other name must not even be
    # looked up (a redirect to another host is not seen by Playwright's routing).
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]
SCREENSHOTS = Path(__file__).parent / "screenshots"
PASSWORD = "correct horse battery"
STEWARD, MEMBER = "stella", "max"
COMMUNITY_NAME = "Riverside Tool Library"
STARTUP_SECONDS = 30


def unavailable(reason: str) -> NoReturn:
    """Skip, saying why; but where a browser is required (CI), fail instead."""
    if os.environ.get("COMMONS_REQUIRE_BROWSER") == "1":
        pytest.fail(f"{reason} (COMMONS_REQUIRE_BROWSER=1)", pytrace=False)
    pytest.skip(reason, allow_module_level=True)


@pytest.fixture(scope="session")
def running_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningNode]:
    """One node for the whole browser session, stopped with SIGTERM as an operator would."""
    data = tmp_path_factory.mktemp("browser-node") / "node"
    base_url = init_node(
        data, slug="riverside", name=COMMUNITY_NAME, port=free_port(),
        steward=STEWARD, password=PASSWORD,
    )  # fmt: skip
    added = cli("member", "add", "--data", str(data), "--username", MEMBER, "--password", PASSWORD)
    assert added.returncode == 0, added.stderr
    node = serve_node(data, base_url)
    try:
        yield node
    finally:
        code = node.stop()
    assert code == 0, f"serve exited with {code} on SIGTERM:\n{node.log()[-4000:]}"


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    """Module-scoped: Playwright's sync API holds an event loop on this thread while it
    runs, and async tests in later modules need the thread back."""
    if not CHROMIUM.exists():
        unavailable(f"Chromium not found at {CHROMIUM}; install the distribution's chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        unavailable("the playwright Python package is not installed (pip install -e .[test])")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        yield browser
        browser.close()


@dataclass
class Session:
    """One person's browser tab on the node, recording what the console complains about."""

    page: Any
    base_url: str
    name: str
    problems: list[str] = field(default_factory=list)

    def goto(self, path: str) -> None:
        self.page.goto(self.base_url + path)

    def shot(self, label: str) -> Path:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{self.name}-{label}.png"
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def sign_in(self, username: str = STEWARD, password: str = PASSWORD) -> None:
        self.goto("/signin")
        self.page.get_by_label("Username").fill(username)
        self.page.get_by_label("Password").fill(password)
        self.page.get_by_role("button", name="Sign in").click()


def _watch_for_problems(page: Any, problems: list[str]) -> None:
    """CSP violations, script errors and broken stylesheets or icons.

    A page answered with 4xx on purpose (403, 422) is not a problem; Chromium
    logs those as "Failed to load resource", so that message is judged by the
    response events instead.
    """

    def on_console(msg: Any) -> None:
        if msg.type in ("error", "warning") and not msg.text.startswith("Failed to load resource"):
            problems.append(f"console: {msg.text}")

    def on_response(response: Any) -> None:
        if response.request.resource_type != "document" and response.status >= 400:
            problems.append(f"{response.status} for {response.url}")

    def on_failed(request: Any) -> None:
        if "ERR_ABORTED" not in (request.failure or ""):  # cut short by the next navigation
            problems.append(f"failed: {request.url} ({request.failure})")

    page.on("console", on_console)
    page.on("response", on_response)
    page.on("requestfailed", on_failed)
    page.on("pageerror", lambda exc: problems.append(f"script error: {exc}"))


def _open(chromium: Any, node: RunningNode, name: str, **context_args: Any) -> Iterator[Session]:
    context = chromium.new_context(**context_args)
    page = context.new_page()
    page.set_default_timeout(10_000)
    session = Session(page, node.base_url, name)
    _watch_for_problems(page, session.problems)
    yield session
    context.close()
    assert session.problems == [], "the browser console reported problems"


@pytest.fixture
def desktop(chromium: Any, running_node: RunningNode) -> Iterator[Session]:
    yield from _open(chromium, running_node, "desktop", viewport={"width": 1280, "height": 860})


@pytest.fixture
def phone(chromium: Any, running_node: RunningNode) -> Iterator[Session]:
    yield from _open(
        chromium,
        running_node,
        "phone",
        viewport={"width": 390, "height": 844},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
    )
