"""The stewards' flows page: totals, leakage, the flows table and the chart's data."""

from __future__ import annotations

import html as html_lib
import json
import re
from datetime import UTC, datetime, timedelta

from node.appkeys import SESSIONS
from storage.models import Community, Exchange, new_id, utcnow
from storage.repositories import CommunityRepository
from tests.web.conftest import SLUG, Browser
from tests.web.test_partnership_pages import add_remote, html_of


async def completed(
    browser: Browser,
    provider: Community | None,
    receiver: Community | None,
    hours: float,
    at: datetime | None = None,
) -> None:
    """A completed exchange; None stands for our own community."""
    async with browser.client.app[SESSIONS]() as db:
        home = await CommunityRepository(db).get_local_by_slug(SLUG)
        assert home is not None
        giver, taker = provider or home, receiver or home
        exchange_id, when = new_id(), at or utcnow()
        db.add(
            Exchange(
                id=exchange_id,
                agreement_id=f"{home.ap_id}/exchanges/{exchange_id}",
                offer_activity_id=f"{home.ap_id}/activities/{new_id()}",
                status="completed",
                listing_ap_id=f"{giver.ap_id}/listings/{new_id()}",
                listing_title="Ladder",
                listing_kind="offer",
                provider_community_id=giver.id,
                receiver_community_id=taker.id,
                is_cross_community=giver.id != taker.id,
                hours=hours,
                created_at=when,
                updated_at=when,
                completed_at=when,
            )
        )
        await db.commit()


def table_rows(html: str, table_class: str) -> list[list[str]]:
    table = html.split(f'class="data-table {table_class}"')[1].split("</table>")[0]
    body = table.split("<tbody>")[1]
    return [
        [
            " ".join(re.sub(r"<[^>]+>", " ", cell).split())
            for cell in re.findall(r"<t[hd][^>]*>(.*?)</t[hd]>", row, re.S)
        ]
        for row in re.findall(r"<tr>(.*?)</tr>", body, re.S)
    ]


def stat(html: str, label: str) -> str:
    match = re.search(rf"<dt>{label}</dt>\s*<dd>([^<]+)</dd>", html)
    assert match, label
    return match.group(1)


async def test_flows_page_shows_totals_leakage_and_each_flow(browser: Browser) -> None:
    hillside = await add_remote(browser)
    faraway = await add_remote(browser, "faraway", "Faraway Guild")
    await completed(browser, None, None, 6)
    await completed(browser, None, hillside, 2)
    await completed(browser, hillside, None, 3.5)
    await completed(browser, None, faraway, 1)
    await completed(browser, None, hillside, 5, at=utcnow() - timedelta(days=200))
    await browser.become("stella")

    html = await html_of(browser, "/steward/flows")

    assert stat(html, "Inside the community") == "6 h"
    assert stat(html, "Given to others") == "3 h"
    assert stat(html, "Received from others") == "3.5 h"
    assert stat(html, "Leakage") == "33%"  # 3 of the 9 hours provided left
    assert table_rows(html, "flow-table") == [
        ["Riverside Tool Library", "Riverside Tool Library", "1", "6"],
        ["Riverside Tool Library", "Hillside Commons", "1", "2"],
        ["Hillside Commons", "Riverside Tool Library", "1", "3.5"],
        ["Riverside Tool Library", "Faraway Guild", "1", "1"],
    ]
    assert table_rows(html, "balance-table") == [
        ["Hillside Commons", "1", "2", "1", "3.5", "+1.5"],
        ["Faraway Guild", "1", "1", "0", "0", "\N{MINUS SIGN}1"],
    ]
    attribute = re.search(r"data-flows='([^']+)'", html)
    assert attribute
    chart = json.loads(html_lib.unescape(attribute.group(1)))
    assert [(f["from"] == f["to"], f["hours"]) for f in chart["flows"]] == [
        (True, 6),
        (False, 2),
        (False, 3.5),
        (False, 1),
    ]
    assert chart["names"][hillside.ap_id] == "Hillside Commons"
    assert "vendor/charts/chart.umd.min.js" in html and "flows-chart.js" in html


async def test_a_chosen_period_counts_only_what_was_completed_in_it(browser: Browser) -> None:
    hillside = await add_remote(browser)
    await completed(browser, None, hillside, 2, at=datetime(2024, 3, 10, 12, tzinfo=UTC))
    await completed(browser, None, hillside, 4, at=datetime(2024, 3, 31, 23, 59, tzinfo=UTC))
    await completed(browser, None, hillside, 8, at=datetime(2024, 4, 1, tzinfo=UTC))
    await browser.become("stella")
    html = await html_of(browser, "/steward/flows?since=2024-03-01&until=2024-03-31")
    assert stat(html, "Given to others") == "6 h"
    assert 'value="2024-03-01"' in html and 'value="2024-03-31"' in html

    empty = await html_of(browser, "/steward/flows?since=2023-01-01&until=2023-01-31")
    assert "No exchanges were completed in this period." in empty
    assert "data-flows" not in empty and "chart.umd.min.js" not in empty


async def test_a_period_that_cannot_be_read_is_a_400_that_says_why(browser: Browser) -> None:
    await browser.become("stella")
    html = await html_of(browser, "/steward/flows?since=2024-05-01&until=2024-04-01", 400)
    assert "“From” must not be later than “To”." in html
    html = await html_of(browser, "/steward/flows?since=yesterday", 400)
    assert "“From” must be a date like 2024-05-31." in html


async def test_flows_are_for_stewards_only(browser: Browser) -> None:
    await browser.become("max")
    await html_of(browser, "/steward/flows", 403)
