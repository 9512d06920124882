"""The demo's sample data as plain values, drawn from a seeded random generator.

Nothing here touches a database: `build_plan()` returns who lives in each
community, what they post, and which exchanges happened between whom and
when (in days before the demo starts). The same scale gives the same plan.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass, field
from typing import Final

from node.demo_data.names import BIOS, FIRST_NAMES, SURNAMES
from node.demo_data.templates import (
    EVERYDAY,
    KINDS_OF_COMMUNITY,
    REQUEST_NOTES,
    TIME_CATEGORIES,
    Template,
)

HISTORY_DAYS: Final = 180
SEED: Final = "commons-demo"


@dataclass(frozen=True)
class CommunitySpec:
    slug: str
    name: str
    kind: str  # a key of KINDS_OF_COMMUNITY
    center: tuple[float, float]
    description: str
    spread_km: float = 3.0
    far: bool = False  # fewer people and listings, far from the others


# The first three are neighbours in one city; the last is far away, so that a
# distance filter on the network pages leaves it out.
COMMUNITIES: Final[tuple[CommunitySpec, ...]] = (
    CommunitySpec(
        "riverside", "Riverside Tool Library", "tool_library", (51.507, -0.128),
        "Drills, ladders and sewing machines, shared by neighbours along the river.",
    ),
    CommunitySpec(
        "hillside", "Hillside Mutual Aid", "mutual_aid", (51.556, -0.178),
        "Neighbours helping neighbours: food, lifts, childcare and a spare room when it counts.",
    ),
    CommunitySpec(
        "lakeside", "Lakeside Time Bank", "time_bank", (51.470, -0.070),
        "An hour of help for an hour of help: lessons, repairs, company and skills.",
    ),
    CommunitySpec(
        "clydeside", "Clydeside Repair Cafe", "repair_cafe", (55.861, -4.251),
        "Bring it broken, take it home fixed: Saturday repair sessions in Glasgow.",
        spread_km=2.0, far=True,
    ),
)  # fmt: skip


@dataclass(frozen=True)
class PersonSpec:
    username: str
    display_name: str
    bio: str


@dataclass(frozen=True)
class ListingSpec:
    key: str  # unique in the plan: "<slug>-<n>"
    community: str
    author: str  # username
    kind: str
    category: str
    title: str
    description: str
    visibility: str
    place: tuple[float, float] | None
    days_ago: float
    closed: bool = False


@dataclass(frozen=True)
class ExchangeSpec:
    """An exchange on `listing` asked for by `requester` (`community:username`)."""

    listing: str  # ListingSpec.key
    requester_community: str
    requester: str
    status: str  # completed | declined | cancelled | accepted | requested
    days_ago: float
    hours: float
    quantity: int | None
    note: str


@dataclass
class Plan:
    people: dict[str, list[PersonSpec]] = field(default_factory=dict)
    # The steward and member logins of each community, with names like everyone's.
    login_people: dict[str, list[PersonSpec]] = field(default_factory=dict)
    listings: list[ListingSpec] = field(default_factory=list)
    exchanges: list[ExchangeSpec] = field(default_factory=list)

    def listing(self, key: str) -> ListingSpec:
        return self._by_key()[key]

    def _by_key(self) -> dict[str, ListingSpec]:
        return {spec.key: spec for spec in self.listings}


def _username(display_name: str, taken: set[str]) -> str:
    first, last = display_name.lower().split(" ", 1)
    base = re.sub(r"[^a-z0-9]", "", first) + "_" + re.sub(r"[^a-z0-9]", "", last)[:1]
    name, n = base, 2
    while name in taken:
        name, n = f"{base}{n}", n + 1
    taken.add(name)
    return name


def _people(rng: random.Random, count: int, reserved: set[str]) -> list[PersonSpec]:
    taken = set(reserved)
    people = []
    for _ in range(count):
        display = f"{rng.choice(FIRST_NAMES)} {rng.choice(SURNAMES)}"
        people.append(PersonSpec(_username(display, taken), display, rng.choice(BIOS)))
    return people


def _place(
    rng: random.Random, center: tuple[float, float], spread_km: float
) -> tuple[float, float]:
    """A point around `center`, about `spread_km` away at most, to four decimals."""
    distance = spread_km * math.sqrt(rng.random())
    angle = rng.uniform(0, 2 * math.pi)
    lat = center[0] + distance / 111.0 * math.cos(angle)
    lon = center[1] + distance / (111.0 * math.cos(math.radians(center[0]))) * math.sin(angle)
    return round(lat, 4), round(lon, 4)


def _visibility(rng: random.Random) -> str:
    return rng.choices(("community", "partners", "public"), weights=(4, 3, 4))[0]


def _listings(
    rng: random.Random, spec: CommunitySpec, people: list[PersonSpec], count: int
) -> list[ListingSpec]:
    # Mostly what the community is for; everyday things fill up the rest.
    own = KINDS_OF_COMMUNITY[spec.kind]
    own_count = min(len(own), count - count // 3)
    templates: list[Template] = rng.sample(own, own_count)
    templates += rng.sample(EVERYDAY, min(len(EVERYDAY), count - own_count))
    rng.shuffle(templates)
    listings = []
    for n in range(len(templates)):
        kind, category, title, description = templates[n]
        place = _place(rng, spec.center, spec.spread_km) if rng.random() < 0.8 else None
        listings.append(
            ListingSpec(
                key=f"{spec.slug}-{n}",
                community=spec.slug,
                author=rng.choice(people).username,
                kind=kind,
                category=category,
                title=title,
                description=description,
                visibility=_visibility(rng),
                place=place,
                days_ago=round(rng.uniform(1, HISTORY_DAYS + 20), 2),
                closed=rng.random() < 0.08,
            )
        )
    return listings


def _amounts(rng: random.Random, category: str) -> tuple[float, int | None]:
    if category in TIME_CATEGORIES:
        return rng.choice((1.0, 1.5, 2.0, 2.0, 3.0, 4.0)), None
    return rng.choice((0.5, 1.0, 1.0, 1.5)), 1


def _history_status(rng: random.Random, days_ago: float) -> str:
    if days_ago < 4:
        return rng.choice(("requested", "accepted", "completed"))
    return rng.choices(("completed", "declined", "cancelled"), weights=(14, 1, 1))[0]


def _exchange(
    rng: random.Random,
    listing: ListingSpec,
    community: str,
    requester: str,
    days_ago: float | None = None,
    status: str | None = None,
) -> ExchangeSpec:
    when = (
        days_ago if days_ago is not None else rng.uniform(0.5, min(listing.days_ago, HISTORY_DAYS))
    )
    hours, quantity = _amounts(rng, listing.category)
    return ExchangeSpec(
        listing=listing.key,
        requester_community=community,
        requester=requester,
        status=status or _history_status(rng, when),
        days_ago=round(when, 2),
        hours=hours,
        quantity=quantity,
        note=rng.choice(REQUEST_NOTES),
    )


def _visible_to(listing: ListingSpec, community: str, partners: set[frozenset[str]]) -> bool:
    if listing.community == community or listing.visibility == "public":
        return True
    return (
        listing.visibility == "partners" and frozenset((community, listing.community)) in partners
    )


def build_plan(
    communities: tuple[CommunitySpec, ...],
    partners: set[frozenset[str]],
    logins: dict[str, tuple[str, str]],
    scale: float = 1.0,
) -> Plan:
    """People, listings and exchanges for `communities`.

    `logins` names each community's steward and member login (usernames): they
    are members too, with listings and exchanges of their own, so signing in
    shows something. `scale` shrinks everything (tests use a small one).
    """
    rng = random.Random(f"{SEED}:{scale}")
    plan = Plan()
    for spec in communities:
        far = spec.far
        people = _people(rng, max(4, round((20 if far else 40) * scale)), set(logins[spec.slug]))
        steward, member = logins[spec.slug]
        plan.people[spec.slug] = people
        plan.login_people[spec.slug] = [
            PersonSpec(username, f"{rng.choice(FIRST_NAMES)} {rng.choice(SURNAMES)}", bio)
            for username, bio in (
                (steward, f"Steward of {spec.name}."),
                (member, rng.choice(BIOS)),
            )
        ]
        count = max(6, round((36 if far else 80) * scale))
        listings = _listings(rng, spec, people, count)
        for n, listing in enumerate(listings[:6]):  # the logins post some of their own
            author = steward if n % 3 == 0 else member
            listings[n] = _with_author(listing, author)
        plan.listings.extend(listings)
    _add_history(rng, plan, communities, partners, logins, scale)
    return plan


def _with_author(listing: ListingSpec, author: str) -> ListingSpec:
    return ListingSpec(**{**listing.__dict__, "author": author, "closed": False})


def _add_history(
    rng: random.Random,
    plan: Plan,
    communities: tuple[CommunitySpec, ...],
    partners: set[frozenset[str]],
    logins: dict[str, tuple[str, str]],
    scale: float,
) -> None:
    """Exchanges inside each community and across, over the last few months."""
    for spec in communities:
        everyone = [p.username for p in plan.people[spec.slug]] + list(logins[spec.slug])
        own = [x for x in plan.listings if x.community == spec.slug and not x.closed]
        others = [
            x
            for x in plan.listings
            if x.community != spec.slug and not x.closed and _visible_to(x, spec.slug, partners)
        ]
        internal = max(6, round(70 * scale))
        # Partners trade most; a far community now and then.
        cross = [x for x in others if frozenset((spec.slug, x.community)) in partners]
        cross += [x for x in others if x.visibility == "public" and rng.random() < 0.35]
        crossing = min(len(cross), max(3, round(14 * scale)))
        for listing in rng.sample(own, min(internal, len(own))):
            requester = rng.choice([u for u in everyone if u != listing.author])
            plan.exchanges.append(_exchange(rng, listing, spec.slug, requester))
        for listing in rng.sample(cross, crossing):
            plan.exchanges.append(_exchange(rng, listing, spec.slug, rng.choice(everyone)))
        member = logins[spec.slug][1]
        if cross:  # something for the member login to see and answer today
            plan.exchanges.append(
                _exchange(rng, rng.choice(cross), spec.slug, member, 0.2, "requested")
            )
        for listing in [x for x in own if x.author == member][:2]:
            requester = rng.choice(plan.people[spec.slug]).username
            plan.exchanges.append(_exchange(rng, listing, spec.slug, requester, 0.3, "requested"))
