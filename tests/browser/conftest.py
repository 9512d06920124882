"""A real node (`commons-node init` + `serve` in a subprocess) and a real headless Chromium.

Chromium comes from the system (/usr/bin/chromium); Playwright never downloads
a browser here. Without Chromium the tests skip and say why, unless
COMMONS_REQUIRE_BROWSER=1 (CI), where a missing browser is a failure.

Pages are checked with axe-core, which the axe-playwright-python package ships;
`Session.check_accessibility` fails a test on any WCAG 2.0/2.1 A or AA violation.
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NoReturn

import pytest

from tests.support.processes import (
    UNREACHABLE_TILES,
    RunningNode,
    cli,
    free_port,
    init_node,
    serve_node,
)

try:
    from axe_playwright_python.sync_playwright import Axe
except ImportError:  # the check below says so, or skips
    Axe = None

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
TILE_ORIGIN = UNREACHABLE_TILES.split("/tiles/")[0] + "/tiles/"
PASSWORD = "correct horse battery"
STEWARD, MEMBER = "stella", "max"
COMMUNITY_NAME = "Riverside Tool Library"
STARTUP_SECONDS = 30
FEDERATION_SECONDS = 30
DESKTOP: dict[str, Any] = {"viewport": {"width": 1280, "height": 860}}
PHONE: dict[str, Any] = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
}
# WCAG 2.0 and 2.1, levels A and AA: what "accessible" means for these pages.
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


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
    if Axe is None:
        unavailable("axe-playwright-python is not installed (pip install -e '.[test]')")
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

    def sign_in_as(self, username: str) -> None:
        """Sign in whoever was signed in before, as on a shared computer, and see it took."""
        from playwright.sync_api import expect  # present wherever a tab is

        self.page.context.clear_cookies()
        self.sign_in(username)
        expect(self.page.locator(".account")).to_contain_text(username)

    def check_accessibility(self, label: str, skip_rules: Iterable[str] = ()) -> None:
        """Fail on any WCAG A/AA violation axe-core finds on the page as it is now."""
        assert_accessible(self.page, f"{self.name} {label}", skip_rules)


def accessibility_violations(page: Any, skip_rules: Iterable[str] = ()) -> list[dict[str, Any]]:
    """What axe-core finds against WCAG 2.x A and AA.

    axe is injected with `page.evaluate`, which the page's Content-Security-Policy
    does not govern, so the check needs no inline script allowed and changes no header.
    """
    options: dict[str, Any] = {
        "runOnly": {"type": "tag", "values": WCAG_TAGS},
        "resultTypes": ["violations"],
    }
    skipped = list(skip_rules)
    if skipped:
        options["rules"] = {rule: {"enabled": False} for rule in skipped}
    violations: list[dict[str, Any]] = Axe().run(page, options=options).response["violations"]
    return violations


def describe_violations(violations: list[dict[str, Any]]) -> str:
    """One block per rule: id, impact, what it asks, then each offending element."""
    lines = []
    for violation in violations:
        lines.append(f"- {violation['id']} ({violation['impact']}): {violation['help']}")
        for node in violation["nodes"]:
            target = " ".join(json.dumps(part) if isinstance(part, list) else part
                              for part in node["target"])  # fmt: skip
            summary = " ".join(node.get("failureSummary", "").split())
            lines.append(f"    at {target}")
            lines.append(f"       {node['html'][:300]}")
            if summary:
                lines.append(f"       {summary[:400]}")
    return "\n".join(lines)


def assert_accessible(page: Any, label: str, skip_rules: Iterable[str] = ()) -> None:
    violations = accessibility_violations(page, skip_rules)
    if violations:
        pytest.fail(
            f"{label} ({page.url}) fails WCAG 2.x A/AA checks:\n{describe_violations(violations)}",
            pytrace=False,
        )


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
        if request.url.startswith(TILE_ORIGIN):  # map tiles: nothing serves them, by design
            return
        if "ERR_ABORTED" not in (request.failure or ""):  # cut short by the next navigation
            problems.append(f"failed: {request.url} ({request.failure})")

    page.on("console", on_console)
    page.on("response", on_response)
    page.on("requestfailed", on_failed)
    page.on("pageerror", lambda exc: problems.append(f"script error: {exc}"))


@contextmanager
def tab(chromium: Any, base_url: str, name: str, device: dict[str, Any]) -> Iterator[Session]:
    """A fresh browser context (no cookies) on one node; console problems fail the test."""
    context = chromium.new_context(**device)
    page = context.new_page()
    page.set_default_timeout(10_000)
    session = Session(page, base_url, name)
    _watch_for_problems(page, session.problems)
    try:
        yield session
    finally:
        context.close()
    assert session.problems == [], f"{name}: the browser console reported problems"


def check_on_desktop_and_phone(desktop: Session, phone: Session, label: str, user: str) -> None:
    """Screenshot and axe-check the desktop's page, then the same page at 390 px signed in
    as `user`, which must fit."""
    desktop.shot(label)
    desktop.check_accessibility(label)
    phone.sign_in_as(user)
    phone.page.goto(desktop.page.url)
    fits_phone(phone)
    phone.shot(label)
    phone.check_accessibility(label)


def fits_phone(session: Session) -> None:
    overflow = session.page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    assert overflow <= 0, f"{session.page.url} scrolls sideways by {overflow}px"


@pytest.fixture
def desktop(chromium: Any, running_node: RunningNode) -> Iterator[Session]:
    with tab(chromium, running_node.base_url, "desktop", DESKTOP) as session:
        yield session


@pytest.fixture
def phone(chromium: Any, running_node: RunningNode) -> Iterator[Session]:
    with tab(chromium, running_node.base_url, "phone", PHONE) as session:
        yield session


@dataclass
class Node:
    """A running node seen from outside: its JSON API and its SQLite database."""

    slug: str
    name: str
    running: RunningNode

    @property
    def base_url(self) -> str:
        return self.running.base_url

    @property
    def handle(self) -> str:
        return f"{self.slug}@{self.base_url.removeprefix('http://')}"

    @property
    def database(self) -> Path:
        return self.running.data / "commons.db"

    def api(self, method: str, path: str, token: str | None = None, body: Any = None) -> Any:
        headers = {"Content-Type": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            self.base_url + path, data=data, headers=headers, method=method
        )
        try:
            with urllib.request.urlopen(request, timeout=20) as response:
                return json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            raise AssertionError(f"{method} {path}: {exc.code} {exc.read()[:300]!r}") from None

    def token(self, username: str) -> str:
        body = self.api(
            "POST", "/api/v1/auth/token", body={"username": username, "password": PASSWORD}
        )
        return str(body["token"])

    def mirrored_titles(self) -> set[str]:
        """The titles of the other nodes' listings this node holds (from its database)."""
        with sqlite3.connect(self.database) as db:
            return {row[0] for row in db.execute("SELECT title FROM remote_listings")}


def start_node(
    data: Path,
    slug: str,
    name: str,
    description: str = "",
    *,
    member: bool = True,
    location: str = "",
) -> Node:
    """`init`, `member add`, `serve`: a community with a steward and (unless told) a member."""
    extra = ["--description", description] if description else []
    if location:
        extra += ["--location", location]
    base_url = init_node(
        data, slug=slug, name=name, port=free_port(), steward=STEWARD,
        password=PASSWORD, extra=extra,
    )  # fmt: skip
    if member:
        added = cli(
            "member", "add", "--data", str(data), "--username", MEMBER, "--password", PASSWORD
        )
        assert added.returncode == 0, added.stderr
    return Node(slug, name, serve_node(data, base_url))


@dataclass(frozen=True)
class NodeSpec:
    """What `start_node` is given for one node of a test's network."""

    slug: str
    name: str
    description: str = ""
    member: bool = True
    location: str = ""


# The two communities most cross-node tests start from, under the keys "a" and "b".
ALDER_AND_BIRCH = {
    "a": NodeSpec("alder", "Alder Commons", "Tool library and seed swap by the river."),
    "b": NodeSpec(
        "birch", "Birch Commons", "Neighbours on Birch Hill sharing boats, tools and skills."
    ),
}


@contextmanager
def started_nodes(root: Path, specs: dict[str, NodeSpec]) -> Iterator[dict[str, Node]]:
    """Start a node per spec under `root`, side by side (each takes seconds), yield them
    under the specs' keys, and stop every one that started, whatever happens."""
    started: dict[str, Node] = {}

    def start(key: str) -> None:
        spec = specs[key]
        started[key] = start_node(
            root / spec.slug,
            spec.slug,
            spec.name,
            spec.description,
            member=spec.member,
            location=spec.location,
        )

    try:
        with ThreadPoolExecutor(len(specs)) as pool:
            list(pool.map(start, specs))
        yield {key: started[key] for key in specs}
    finally:
        for node in started.values():
            node.running.stop()


def eventually(check: Callable[[], bool], what: str, within: float = FEDERATION_SECONDS) -> None:
    """Poll until `check()` holds; federation happens in the nodes' background workers."""
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {within}s: {what}")
        time.sleep(0.1)
