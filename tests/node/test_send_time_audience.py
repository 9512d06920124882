"""A queued listing goes out only if its audience still allows it when it is sent.

On SQLite and PostgreSQL: the queue's claim re-asks the visibility rule for
every delivery that carries a listing, because a delivery may wait days in
backoff while the partnership ends, the listing is made less visible or
deleted, or the host is blocked. Changes are made to the rows directly here,
so that these tests prove the send-time check alone; the eager cancellations
at the moment of a change are tested separately.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import orjson
import pytest
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from federation.delivery import DeliveryJob
from federation.keys import generate_key_pair
from node.protocol.delivery_queue import SqlDeliveryQueue
from node.protocol.jobs import JobWorker
from node.protocol.partner_sharing import partner_sharing_handlers
from node.protocol.partnerships import end_partnership
from node.protocol.publishing import publish_listing_change
from storage.engine import create_engine, create_session_factory
from storage.models import (
    Community,
    CommunityPartnership,
    Delivery,
    Follow,
    Listing,
    new_id,
)
from storage.repositories import BlockRepository, CommunityRepository, DeliveryRepository
from storage.repositories.partnerships import PartnershipRepository

Sessions = async_sessionmaker[AsyncSession]
LEASE = timedelta(minutes=5)
HOME = "http://home.test/c/tools"
BIRCH = "http://birch.test/c/birch"
CEDAR = "http://cedar.test/c/cedar"
FOLLOWER_INBOX = "http://fern.test/inbox"


@pytest.fixture(scope="module")
def key_pair() -> tuple[str, str]:
    return generate_key_pair()


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[Sessions]:
    engine = create_engine(database_url)
    try:
        yield create_session_factory(engine)
    finally:
        await engine.dispose()


@dataclass
class World:
    """Tools (ours) partners with Birch and Cedar; a server at fern.test follows it."""

    sessions: Sessions
    home: Community
    birch: Community
    cedar: Community

    @staticmethod
    def queue_clock() -> datetime:
        return datetime.now(UTC) + timedelta(1)

    def queue(self) -> SqlDeliveryQueue:
        return SqlDeliveryQueue(self.sessions, clock=self.queue_clock)

    async def claim(self) -> list[DeliveryJob]:
        return await self.queue().claim(50, LEASE)

    async def listing(self, visibility: str, title: str = "Cargo bike") -> Listing:
        async with self.sessions() as session, session.begin():
            listing_id = new_id()
            listing = Listing(
                id=listing_id,
                ap_id=f"{HOME}/listings/{listing_id}",
                community_id=self.home.id,
                kind="offer",
                title=title,
                visibility=visibility,
                is_public=visibility == "public",
            )
            session.add(listing)
            await session.flush()
            listing.community = await session.get_one(Community, self.home.id)
            await publish_listing_change(session, listing, None, "create")
        return listing

    async def set_listing(self, listing: Listing, **values: object) -> None:
        async with self.sessions() as session, session.begin():
            await session.execute(update(Listing).where(Listing.id == listing.id).values(values))

    async def end_partnership_row(self, partner: Community) -> None:
        """The partnership ends without anything else happening (no eager cancel)."""
        async with self.sessions() as session, session.begin():
            await session.execute(
                update(CommunityPartnership)
                .where(CommunityPartnership.remote_community_id == partner.id)
                .values(state="dissolved")
            )

    async def rows(self) -> list[Delivery]:
        async with self.sessions() as session:
            return list(await session.scalars(select(Delivery).order_by(Delivery.id)))


async def remote(session: AsyncSession, ap_id: str, shared_inbox: str | None = None) -> Community:
    host = ap_id.split("/")[2]
    return await CommunityRepository(session).add(
        Community(
            ap_id=ap_id,
            slug=ap_id.rsplit("/", 1)[1],
            host=host,
            name=host,
            base_url=f"http://{host}",
            inbox_url=f"{ap_id}/inbox",
            shared_inbox_url=shared_inbox or f"http://{host}/inbox",
        )
    )


@pytest.fixture
async def world(sessions: Sessions, key_pair: tuple[str, str]) -> World:
    private_pem, public_pem = key_pair
    async with sessions() as session, session.begin():
        home = await CommunityRepository(session).add(
            Community(
                ap_id=HOME,
                is_local=True,
                slug="tools",
                host="home.test",
                name="Tools",
                base_url="http://home.test",
                followers_url=f"{HOME}/followers",
                key_id=f"{HOME}#main-key",
                public_key_pem=public_pem,
                private_key_pem=private_pem,
            )
        )
        # Birch's inbox is on another host than its actor: a block of the
        # actor's host must still stop what is addressed to it.
        birch = await remote(session, BIRCH, shared_inbox="http://birch-mail.test/inbox")
        cedar = await remote(session, CEDAR)
        for partner in (birch, cedar):
            await PartnershipRepository(session).add(
                CommunityPartnership(
                    local_community_id=home.id,
                    remote_community_id=partner.id,
                    state="active",
                    initiated_by="us",
                    follow_activity_id=f"{HOME}/activities/follow-{partner.slug}",
                )
            )
        session.add(
            Follow(
                direction="in",
                local_community_id=home.id,
                remote_actor="http://fern.test/users/fern",
                remote_inbox="http://fern.test/users/fern/inbox",
                remote_shared_inbox=FOLLOWER_INBOX,
                follow_activity_id="http://fern.test/follows/1",
                state="active",
            )
        )
    return World(sessions, home, birch, cedar)


def bodies(jobs: list[DeliveryJob]) -> dict[str, dict[str, object]]:
    return {job.target_inbox: orjson.loads(job.body) for job in jobs}


def states(rows: list[Delivery]) -> dict[tuple[str, str], tuple[str, str | None]]:
    """(activity type, inbox) -> (state, reason)."""
    return {
        (orjson.loads(row.body)["type"], row.target_inbox): (row.state, row.last_error)
        for row in rows
    }


BIRCH_INBOX = "http://birch-mail.test/inbox"
CEDAR_INBOX = "http://cedar.test/inbox"


async def test_a_partner_listing_is_not_sent_to_a_partnership_that_ended_while_queued(
    world: World,
) -> None:
    await world.listing("partners")
    await world.end_partnership_row(world.birch)

    jobs = await world.claim()

    assert list(bodies(jobs)) == [CEDAR_INBOX]
    birch = states(await world.rows())[("Create", BIRCH_INBOX)]
    assert birch == ("cancelled", "recipient is no longer an active partner")
    assert await world.claim() == []


async def test_a_listing_made_community_only_while_queued_is_sent_to_nobody(
    world: World,
) -> None:
    listing = await world.listing("partners")
    await world.set_listing(listing, visibility="community")

    assert await world.claim() == []
    assert {state for state, _ in states(await world.rows()).values()} == {"cancelled"}


async def test_a_public_listing_made_partners_only_is_not_sent_as_public(world: World) -> None:
    listing = await world.listing("public")
    await world.set_listing(listing, visibility="partners", is_public=False)

    assert await world.claim() == []
    reasons = {reason for _, reason in states(await world.rows()).values()}
    assert reasons == {"listing is now partners, the delivery shares it as public"}


async def test_a_deleted_listing_is_not_sent(world: World) -> None:
    listing = await world.listing("public")
    async with world.sessions() as session, session.begin():
        await session.execute(delete(Listing).where(Listing.id == listing.id))

    assert await world.claim() == []
    reasons = {reason for _, reason in states(await world.rows()).values()}
    assert reasons == {"listing no longer exists"}


async def test_a_public_listing_is_not_sent_to_a_server_that_stopped_following(
    world: World,
) -> None:
    await world.listing("public")
    async with world.sessions() as session, session.begin():
        await session.execute(delete(Follow))

    assert sorted(bodies(await world.claim())) == [BIRCH_INBOX, CEDAR_INBOX]
    assert states(await world.rows())[("Create", FOLLOWER_INBOX)][0] == "cancelled"


async def test_a_block_of_the_partners_host_stops_what_is_addressed_to_it(world: World) -> None:
    await world.listing("partners")
    async with world.sessions() as session, session.begin():
        await BlockRepository(session).add("birch.test")

    assert list(bodies(await world.claim())) == [CEDAR_INBOX]
    assert states(await world.rows())[("Create", BIRCH_INBOX)] == (
        "cancelled",
        "recipient's host is blocked",
    )


async def test_a_block_of_the_inbox_host_cancels_instead_of_pausing(world: World) -> None:
    await world.listing("partners")
    async with world.sessions() as session, session.begin():
        await BlockRepository(session).add("birch-mail.test")
    assert list(bodies(await world.claim())) == [CEDAR_INBOX]
    async with world.sessions() as session, session.begin():
        await BlockRepository(session).remove("birch-mail.test")

    assert await world.claim() == []
    assert states(await world.rows())[("Create", BIRCH_INBOX)] == (
        "cancelled",
        "host is blocked",
    )


async def test_each_partner_gets_its_own_activity_naming_only_itself(world: World) -> None:
    listing = await world.listing("partners")
    await world.set_listing(listing, title="Cargo bike, new tyres")
    async with world.sessions() as session, session.begin():
        fresh = await session.get_one(Listing, listing.id)
        await publish_listing_change(session, fresh, "partners", "update")

    sent = await world.claim()
    assert sorted((job.target_inbox, orjson.loads(job.body)["type"]) for job in sent) == [
        (BIRCH_INBOX, "Create"),
        (BIRCH_INBOX, "Update"),
        (CEDAR_INBOX, "Create"),
        (CEDAR_INBOX, "Update"),
    ]
    for job in sent:
        body = orjson.loads(job.body)
        partner, other = (BIRCH, CEDAR) if job.target_inbox == BIRCH_INBOX else (CEDAR, BIRCH)
        assert body["to"] == body["object"]["to"] == [partner]
        assert body["object"]["id"] == listing.ap_id
        assert other not in job.body.decode() and other.split("/")[2] not in job.body.decode()
    assert len({job.activity_id for job in sent}) == 4


async def test_ending_a_partnership_cancels_at_once_and_still_sends_the_withdrawal(
    world: World,
) -> None:
    await world.listing("partners")
    async with world.sessions() as session, session.begin():
        [partnership] = [
            p
            for p in await PartnershipRepository(session).get_active_for_community(world.home.id)
            if p.remote_community_id == world.birch.id
        ]
        await end_partnership(session, partnership, "dissolved")

    assert states(await world.rows())[("Create", BIRCH_INBOX)] == (
        "cancelled",
        "partnership ended",
    )
    # The withdrawal is a job of its own, which queues the Deletes.
    ctx: Any = SimpleNamespace(sessions=world.sessions)
    handlers = partner_sharing_handlers(ctx)
    assert await JobWorker(world.sessions, handlers, clock=world.queue_clock).run_once() == 1
    sent = bodies(await world.claim())
    assert {inbox: body["type"] for inbox, body in sent.items()} == {
        f"{BIRCH}/inbox": "Delete",
        CEDAR_INBOX: "Create",
    }
    assert sent[f"{BIRCH}/inbox"]["to"] == [BIRCH]


async def test_lowering_visibility_cancels_at_once_and_deletes_still_go_out(
    world: World,
) -> None:
    listing = await world.listing("partners")
    async with world.sessions() as session, session.begin():
        fresh = await session.get_one(Listing, listing.id)
        fresh.visibility = "community"
        await publish_listing_change(session, fresh, "partners", "update")
    rows = states(await world.rows())
    assert rows[("Create", BIRCH_INBOX)] == ("cancelled", "listing is now community")
    assert rows[("Create", CEDAR_INBOX)] == ("cancelled", "listing is now community")
    sent = bodies(await world.claim())
    assert {inbox: body["type"] for inbox, body in sent.items()} == {
        BIRCH_INBOX: "Delete",
        CEDAR_INBOX: "Delete",
    }
    assert sent[BIRCH_INBOX]["to"] == [BIRCH]


async def test_host_health_counts_cancelled_deliveries(world: World) -> None:
    await world.listing("partners")
    await world.end_partnership_row(world.birch)
    await world.claim()
    async with world.sessions() as session:
        summaries = {s.host: s for s in await DeliveryRepository(session).host_summaries()}
    assert (summaries["birch-mail.test"].cancelled, summaries["birch-mail.test"].queued) == (1, 0)
    assert summaries["cedar.test"].cancelled == 0
