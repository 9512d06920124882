"""The demo as a newcomer clicks through it, and the README's screenshots of it.

The real `commons-node demo` runs (its full sample data, so the pictures show
what `./dev run` shows). Each main page is opened as the person who would use
it, checked for something that person would notice and for accessibility,
then saved at 1280 by 800 into docs/screenshots/, which the README shows.
"""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.browser.conftest import Session, assert_accessible, tab
from tests.support.processes import free_port_run

pytestmark = pytest.mark.browser

DOCS_SCREENSHOTS = Path(__file__).resolve().parents[2] / "docs" / "screenshots"
README_VIEW: dict[str, Any] = {"viewport": {"width": 1280, "height": 800}}
STARTUP_SECONDS = 180
NODES = 4


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, dict[str, Any]]]:
    """The running demo's nodes by slug, as demo.json lists them."""
    root = tmp_path_factory.mktemp("demo-shots")
    out = root / "demo.out"
    command = [sys.executable, "-m", "node.cli", "demo", "--data", str(root / "demo")]
    command += ["--base-port", str(free_port_run(NODES))]
    with out.open("w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while "Press Ctrl+C" not in out.read_text():
            assert process.poll() is None, out.read_text()
            assert time.monotonic() < deadline, out.read_text()
            time.sleep(0.5)
        nodes = json.loads((root / "demo" / "demo.json").read_text())["nodes"]
        yield {entry["handle"].split("@")[0]: entry for entry in nodes}
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(timeout=30)
    assert code == 0, out.read_text()


def sign_in(page: Any, entry: dict[str, Any], role: str) -> None:
    page.goto(entry["base_url"] + "/signin")
    page.get_by_label("Username").fill(entry[role]["username"])
    page.get_by_label("Password").fill(entry[role]["password"])
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(lambda url: "/signin" not in url)


@contextmanager
def signed_in_tab(chromium: Any, entry: dict[str, Any], role: str, path: str) -> Iterator[Session]:
    """A README-sized tab signed in to `entry`'s node as `role`, opened at `path`."""
    with tab(chromium, entry["base_url"], role, README_VIEW) as session:
        sign_in(session.page, entry, role)
        session.page.goto(entry["base_url"] + path)
        yield session


def save(page: Any, name: str) -> None:
    """Check the page as it is, then keep the top of it for the README."""
    assert_accessible(page, name)
    DOCS_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(DOCS_SCREENSHOTS / f"{name}.png"))


def show_from(page: Any, selector: str) -> None:
    """Scroll so the screenshot starts just above the first `selector`."""
    page.locator(selector).first.evaluate("e => e.scrollIntoView({block: 'start'})")
    page.evaluate("window.scrollBy(0, -24)")


def without_tiles(session: Session) -> None:
    """Nothing serves map tiles to a test machine; the markers draw without them."""
    session.problems[:] = [p for p in session.problems if "tile.openstreetmap.org" not in p]


def api(entry: dict[str, Any], role: str, path: str) -> Any:
    login = json.dumps(entry[role]).encode()
    request = urllib.request.Request(
        entry["base_url"] + "/api/v1/auth/token", login, {"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=20) as response:
        token = json.loads(response.read())["token"]
    request = urllib.request.Request(
        entry["base_url"] + path, headers={"Authorization": f"Bearer {token}"}
    )
    with urllib.request.urlopen(request, timeout=20) as response:
        return json.loads(response.read())


def test_a_member_sees_the_communitys_listings(chromium: Any, demo: dict[str, Any]) -> None:
    riverside = demo["riverside"]
    with signed_in_tab(chromium, riverside, "member", "/listings") as session:
        page = session.page
        shown = page.get_by_text(re.compile(r"Showing \d+ listings")).inner_text()
        assert int(re.findall(r"\d+", shown)[0]) >= 20
        assert page.locator(".listing-card").count() >= 20
        save(page, "listings")


def test_browsing_the_network_shows_partner_and_public_listings_on_a_map(
    chromium: Any, demo: dict[str, Any]
) -> None:
    riverside = demo["riverside"]
    with signed_in_tab(chromium, riverside, "member", "/network") as session:
        page = session.page
        cards = page.locator(".listing-card")
        assert cards.filter(has_text="Hillside Mutual Aid").count() > 0
        assert cards.filter(has_text="Partner").count() > 0
        assert cards.filter(has_text="Public network").count() > 0
        page.locator("[data-map]").wait_for(state="visible")
        show_from(page, "[data-map]")
        save(page, "network")
        without_tiles(session)


def test_the_communities_page_lists_neighbours_and_the_far_community(
    chromium: Any, demo: dict[str, Any]
) -> None:
    riverside = demo["riverside"]
    with signed_in_tab(chromium, riverside, "member", "/network/communities") as session:
        page = session.page
        names = page.locator(".community-card__name").all_inner_texts()
        assert {"Hillside Mutual Aid", "Lakeside Time Bank", "Clydeside Repair Cafe"} <= set(names)
        show_from(page, ".community-card")
        save(page, "communities")
        without_tiles(session)


def test_a_listing_shows_its_author_and_how_to_ask_for_it(
    chromium: Any, demo: dict[str, Any]
) -> None:
    riverside = demo["riverside"]
    listings = api(riverside, "member", "/api/v1/listings?kind=offer&status=active&limit=50")
    me = api(riverside, "member", "/api/v1/me")["display_name"]
    listing = next(
        item
        for item in listings["items"]
        if item["visibility"] == "public" and item["author"]["name"] != me
    )
    with signed_in_tab(chromium, riverside, "member", f"/listings/{listing['id']}") as session:
        page = session.page
        assert page.get_by_role("heading", level=1).inner_text() == listing["title"]
        assert page.get_by_text(listing["author"]["name"]).count() > 0
        assert page.get_by_role("heading", name="Request this").is_visible()
        save(page, "listing")


def test_my_exchanges_show_a_request_across_communities(
    chromium: Any, demo: dict[str, Any]
) -> None:
    riverside = demo["riverside"]
    with signed_in_tab(chromium, riverside, "member", "/exchanges") as session:
        page = session.page
        assert page.get_by_text("Across communities").count() > 0
        assert page.get_by_text("Waiting for an answer").count() > 0
        save(page, "exchanges")


def test_the_steward_sees_flows_to_and_from_other_communities(
    chromium: Any, demo: dict[str, Any]
) -> None:
    riverside = demo["riverside"]
    with signed_in_tab(chromium, riverside, "steward", "/steward/flows") as session:
        page = session.page
        assert page.get_by_text("Leakage").count() > 0
        assert page.locator("table").filter(has_text="Hillside Mutual Aid").count() > 0
        save(page, "flows")


def test_the_third_communitys_steward_has_a_proposal_to_answer(
    chromium: Any, demo: dict[str, Any]
) -> None:
    lakeside = demo["lakeside"]
    with signed_in_tab(chromium, lakeside, "steward", "/steward") as session:
        page = session.page
        assert page.get_by_text("Riverside Tool Library").count() > 0
        assert page.get_by_role("link", name=re.compile("Approve")).is_visible()
        save(page, "partnerships")
