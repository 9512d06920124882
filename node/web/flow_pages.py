"""Flows, for stewards: how many exchanges and hours stayed in the community, left
it or came in from others over a period, and with whom.

The numbers come from `node.services.flows.flow_metrics`, the function behind
`GET /api/v1/metrics/flows`, so the page and the API agree. The table is the
page; the Sankey diagram drawn from the same numbers (by `flows-chart.js`
and the vendored Chart.js) is an addition for browsers that run scripts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from aiohttp import web

from node.services.flows import Flows, FlowTotals, flow_metrics
from node.web.guards import Page, member_page
from node.web.steward_pages import require_steward

routes = web.RouteTableDef()
DEFAULT_DAYS = 90
EARLIEST = date(2000, 1, 1)


@dataclass(frozen=True)
class Period:
    """Whole days, both ends included, read as UTC dates."""

    since: date
    until: date

    @property
    def start(self) -> datetime:
        return datetime.combine(self.since, time(), UTC)

    @property
    def end(self) -> datetime:
        """Exclusive: the start of the day after `until`."""
        return datetime.combine(self.until + timedelta(days=1), time(), UTC)

    @property
    def days(self) -> int:
        return (self.until - self.since).days + 1


class PeriodError(ValueError):
    """The period asked for cannot be read; the message says why, for the form."""


def _day(text: str, name: str) -> date:
    try:
        day = date.fromisoformat(text)
    except ValueError:
        raise PeriodError(f"“{name}” must be a date like 2024-05-31.") from None
    if not EARLIEST <= day <= date(9998, 12, 31):
        raise PeriodError(f"“{name}” must be a date after {EARLIEST.isoformat()}.")
    return day


def read_period(query: Any, today: date) -> Period:
    """The period in the query string, or the last DEFAULT_DAYS days up to `today`."""
    until_text, since_text = query.get("until", "").strip(), query.get("since", "").strip()
    until = _day(until_text, "To") if until_text else today
    since = _day(since_text, "From") if since_text else until - timedelta(days=DEFAULT_DAYS - 1)
    if since > until:
        raise PeriodError("“From” must not be later than “To”.")
    return Period(since, until)


@dataclass(frozen=True)
class FlowRow:
    """One band of the diagram and one row of its table: hours from a provider to a receiver."""

    source_id: str
    source: str
    target_id: str
    target: str
    count: int
    hours: float


def flow_rows(flows: Flows, home_id: str, home_name: str) -> list[FlowRow]:
    """Inside the community first, then each other community: what we gave, what we got."""
    rows = [FlowRow(home_id, home_name, home_id, home_name, *_totals(flows.internal))]
    for p in flows.by_community:
        rows.append(
            FlowRow(home_id, home_name, p.community_id, p.name, p.outgoing_count, p.outgoing_hours)
        )
        rows.append(
            FlowRow(p.community_id, p.name, home_id, home_name, p.incoming_count, p.incoming_hours)
        )
    return [row for row in rows if row.count > 0]


def _totals(totals: FlowTotals) -> tuple[int, float]:
    return totals.count, totals.hours


def chart_data(rows: list[FlowRow], home_id: str) -> dict[str, Any]:
    """What flows-chart.js draws: providers on the left, receivers on the right.

    Each community is a node on each side, so the diagram has no cycles even
    when hours went both ways between the same two communities. Bands without
    hours are left out (they have no width); the table still lists them.
    """
    return {
        "home": home_id,
        "names": {row.source_id: row.source for row in rows}
        | {row.target_id: row.target for row in rows},
        "flows": [
            {"from": row.source_id, "to": row.target_id, "hours": round(row.hours, 2)}
            for row in rows
            if row.hours > 0
        ],
    }


@routes.get("/steward/flows", name="flows")
@member_page
async def flows_page(page: Page) -> web.StreamResponse:
    require_steward(page.member)
    community = page.member.community
    today = datetime.now(UTC).date()
    try:
        period = read_period(page.request.query, today)
    except PeriodError as exc:
        fallback = read_period({}, today)
        return page.render(
            "steward/flows.html",
            status=400,
            period=fallback,
            asked=page.request.query,
            error=str(exc),
            flows=None,
            rows=[],
            chart=None,
            community=community,
        )
    flows = await flow_metrics(page.db, community, period.start, period.end)
    rows = flow_rows(flows, community.ap_id, community.name)
    return page.render(
        "steward/flows.html",
        period=period,
        asked={"since": period.since.isoformat(), "until": period.until.isoformat()},
        error=None,
        flows=flows,
        rows=rows,
        chart=chart_data(rows, community.ap_id),
        community=community,
    )
