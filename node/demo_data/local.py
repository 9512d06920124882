"""Writing one community's share of the plan into its own database.

Members, listings and the exchanges inside the community never leave the
node, so they are written in bulk, with the times the plan gives them. This
runs before the community follows or partners with anyone, so no listing is
announced here: the other nodes read them from the outbox and the partner
collection when the federation starts, as they would any node's history.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from node.demo_data.plan import ExchangeSpec, ListingSpec, Plan
from node.domain import urls
from node.services.accounts import hash_password
from storage.models import Community, Exchange, Listing, Member, new_id
from storage.repositories import MemberRepository
from storage.states import ExchangeStatus, Kind, ListingStatus, Visibility


def _ago(now: datetime, days: float) -> datetime:
    return now - timedelta(days=days)


async def seed_members(
    session: AsyncSession, community: Community, plan: Plan, now: datetime
) -> dict[str, Member]:
    """The plan's people, plus display names for the two logins `provision_node` made.

    Sample people share one hash of a password nobody is told: they are there
    to be seen, not to sign in, and hashing each would take seconds.
    """
    unusable = hash_password(secrets.token_urlsafe(24))
    members = {}
    for n, person in enumerate(plan.people[community.slug]):
        member = Member(
            community_id=community.id,
            username=person.username,
            role="member",
            password_hash=unusable,
            display_name=person.display_name,
            bio=person.bio,
            created_at=_ago(now, 200 - n),
        )
        session.add(member)
        members[person.username] = member
    for person in plan.login_people[community.slug]:
        login = await MemberRepository(session).get_by_username(community.id, person.username)
        if login is None:
            raise LookupError(f"no login {person.username!r} on {community.slug}")
        login.display_name, login.bio = person.display_name, person.bio
        login.created_at = _ago(now, 210)
        members[person.username] = login
    await session.flush()
    for member in members.values():
        member.community = community
    return members


def listing_row(spec: ListingSpec, community: Community, author: Member, now: datetime) -> Listing:
    listing_id = new_id()
    created = _ago(now, spec.days_ago)
    return Listing(
        id=listing_id,
        ap_id=urls.listing(community.ap_id, listing_id),
        community_id=community.id,
        author_id=author.id,
        kind=Kind(spec.kind),
        title=spec.title,
        description=spec.description,
        category=spec.category,
        status=ListingStatus.CLOSED if spec.closed else ListingStatus.ACTIVE,
        visibility=spec.visibility,
        is_public=spec.visibility == Visibility.PUBLIC,
        latitude=spec.place[0] if spec.place else None,
        longitude=spec.place[1] if spec.place else None,
        created_at=created,
        updated_at=created,
    )


async def seed_listings(
    session: AsyncSession,
    community: Community,
    plan: Plan,
    members: dict[str, Member],
    now: datetime,
) -> dict[str, Listing]:
    rows = {}
    for spec in plan.listings:
        if spec.community == community.slug:
            rows[spec.key] = listing_row(spec, community, members[spec.author], now)
    session.add_all(rows.values())
    await session.flush()
    return rows


def times_of(spec: ExchangeSpec, now: datetime) -> dict[str, datetime | None]:
    """When an exchange was asked for, answered and completed, from the plan's day."""
    created = _ago(now, spec.days_ago)
    answered = min(created + timedelta(hours=5), now) if spec.status != "requested" else None
    completed = min(created + timedelta(days=2), now) if spec.status == "completed" else None
    updated = completed or answered or created
    return {
        "created_at": created,
        "answered_at": answered if spec.status in ("accepted", "completed", "declined") else None,
        "completed_at": completed,
        "updated_at": updated,
    }


def internal_exchange(
    spec: ExchangeSpec, community: Community, listing: Listing, author: Member,
    requester: Member, now: datetime,
) -> Exchange:  # fmt: skip
    """An exchange between two members of the community, as the service would store it."""
    provider, receiver = (author, requester) if listing.kind == Kind.OFFER else (requester, author)
    exchange_id = new_id()
    return Exchange(
        id=exchange_id,
        agreement_id=urls.agreement(community.ap_id, exchange_id),
        offer_activity_id=urls.new_activity_id(community.ap_id),
        status=ExchangeStatus(spec.status),
        listing_id=listing.id,
        listing_ap_id=listing.ap_id,
        listing_title=listing.title,
        listing_kind=listing.kind,
        provider_community_id=community.id,
        receiver_community_id=community.id,
        is_cross_community=False,
        provider_member_id=provider.id,
        receiver_member_id=receiver.id,
        provider_handle=f"{provider.username}@{community.host}",
        receiver_handle=f"{receiver.username}@{community.host}",
        provider_name=provider.shown_name,
        receiver_name=receiver.shown_name,
        quantity=spec.quantity,
        hours=spec.hours,
        note=spec.note,
        **times_of(spec, now),
    )


async def seed_history(
    session: AsyncSession,
    community: Community,
    plan: Plan,
    listings: dict[str, Listing],
    members: dict[str, Member],
    now: datetime,
) -> list[ExchangeSpec]:
    """Past exchanges inside the community; returns the live ones left for the services.

    An exchange still waiting for an answer is made through the service, so
    whoever must answer it has the notification a real request leaves.
    """
    live = []
    for spec in plan.exchanges:
        listing = listings.get(spec.listing)
        if listing is None or spec.requester_community != community.slug:
            continue
        if spec.status in ("requested", "accepted"):
            live.append(spec)
            continue
        author = next(m for m in members.values() if m.id == listing.author_id)
        requester = members[spec.requester]
        session.add(internal_exchange(spec, community, listing, author, requester, now))
    await session.flush()
    return live
