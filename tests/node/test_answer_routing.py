"""Accept, Reject and Undo are routed by what they answer, and only its other party may answer.

Runs against a node's app and database (both databases); the remote side is a
cached actor row, so no answer here needs the network.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from federation.inbox_processor import IgnoreActivity
from federation.vocab import Activity
from node.appkeys import SESSIONS
from node.protocol.answers import on_answer
from node.protocol.context import FederationContext
from storage.models import Community, CommunityPartnership, Follow, Job, utcnow
from storage.repositories import CommunityRepository
from tests.conftest import NodeHandle

REMOTE = "http://birch.test/c/birch"
STRANGER = "http://elsewhere.test/c/other"


def answer(verb: str, actor: str, obj: Any, *, partnership: bool = False) -> Activity:
    return Activity(
        id=f"{actor}/activities/{verb.lower()}-1",
        type=verb,
        actor=actor,
        object=obj,
        to=(),
        cc=(),
        published=None,
        partnership=partnership,
        raw={},
    )


async def _remote(node: NodeHandle, ap_id: str) -> Community:
    base = ap_id.split("/c/")[0]
    async with node.client.app[SESSIONS]() as db:
        community = Community(
            ap_id=ap_id,
            slug=ap_id.rsplit("/", 1)[1],
            host=base.removeprefix("http://"),
            name="Remote",
            base_url=base,
            inbox_url=f"{ap_id}/inbox",
            outbox_url=f"{ap_id}/outbox",
            fetched_at=utcnow(),
        )
        db.add(community)
        await db.commit()
        return community


async def _local(node: NodeHandle) -> Community:
    async with node.client.app[SESSIONS]() as db:
        local = await CommunityRepository(db).get_local_by_slug("tools")
        assert local is not None
        return local


async def _add(node: NodeHandle, row: Any) -> None:
    async with node.client.app[SESSIONS]() as db:
        db.add(row)
        await db.commit()


async def _rows(node: NodeHandle, model: Any) -> list[Any]:
    async with node.client.app[SESSIONS]() as db:
        return list(await db.scalars(select(model)))


async def _follow(
    node: NodeHandle, local: Community, direction: str, follow_id: str, state: str
) -> None:
    """A follow between our community and REMOTE, in either direction."""
    await _add(
        node,
        Follow(
            direction=direction,
            local_community_id=local.id,
            remote_actor=REMOTE,
            follow_activity_id=follow_id,
            state=state,
        ),
    )


def ctx(node: NodeHandle) -> FederationContext:
    return FederationContext.from_app(node.client.app)


@pytest.fixture
async def parties(node: NodeHandle) -> tuple[Community, Community, Community]:
    return await _local(node), await _remote(node, REMOTE), await _remote(node, STRANGER)


async def test_an_accepted_follow_becomes_active_and_queues_one_backfill(
    node: NodeHandle, parties: tuple[Community, Community, Community]
) -> None:
    local, _, _ = parties
    follow_id = f"{node.config.base_url}/c/tools/activities/f1"
    await _follow(node, local, "out", follow_id, "pending")
    await on_answer(ctx(node), answer("Accept", REMOTE, follow_id))
    await on_answer(ctx(node), answer("Accept", REMOTE, {"id": follow_id, "type": "Follow"}))
    [follow] = await _rows(node, Follow)
    assert follow.state == "active"
    [job] = await _rows(node, Job)
    assert job.kind == "backfill" and job.subject == REMOTE and job.community_id == local.id


async def test_someone_else_cannot_accept_or_reject_our_follow(
    node: NodeHandle, parties: tuple[Community, Community, Community]
) -> None:
    local, _, _ = parties
    follow_id = f"{node.config.base_url}/c/tools/activities/f1"
    await _follow(node, local, "out", follow_id, "pending")
    for verb in ("Accept", "Reject"):
        with pytest.raises(IgnoreActivity):
            await on_answer(ctx(node), answer(verb, STRANGER, follow_id))
    [follow] = await _rows(node, Follow)
    assert follow.state == "pending" and await _rows(node, Job) == []


async def test_a_rejected_follow_cancels_its_queued_backfill(
    node: NodeHandle, parties: tuple[Community, Community, Community]
) -> None:
    local, _, _ = parties
    follow_id = f"{node.config.base_url}/c/tools/activities/f1"
    await _follow(node, local, "out", follow_id, "pending")
    await on_answer(ctx(node), answer("Accept", REMOTE, follow_id))
    await on_answer(ctx(node), answer("Reject", REMOTE, follow_id))
    [follow] = await _rows(node, Follow)
    [job] = await _rows(node, Job)
    assert follow.state == "rejected" and job.state == "cancelled"


async def test_an_undo_removes_a_follower_but_cannot_touch_our_own_follow(
    node: NodeHandle, parties: tuple[Community, Community, Community]
) -> None:
    local, _, _ = parties
    theirs = f"{REMOTE}/activities/follow-1"
    ours = f"{node.config.base_url}/c/tools/activities/f1"
    await _follow(node, local, "in", theirs, "active")
    await _follow(node, local, "out", ours, "active")
    with pytest.raises(IgnoreActivity):
        await on_answer(ctx(node), answer("Undo", REMOTE, ours))
    # A follow whose id we never saw is found by what it followed and who followed.
    minted = {"id": f"{REMOTE}/activities/other-id", "type": "Follow", "object": local.ap_id}
    await on_answer(ctx(node), answer("Undo", REMOTE, minted))
    assert [f.direction for f in await _rows(node, Follow)] == ["out"]


async def test_answers_that_name_nothing_we_track_are_ignored(
    node: NodeHandle, parties: tuple[Community, Community, Community]
) -> None:
    cases = [
        answer("Accept", REMOTE, f"{node.config.base_url}/c/tools/activities/unknown"),
        answer("Accept", REMOTE, "http://tools.test/c/tools/activities/x", partnership=True),
        answer("Undo", REMOTE, {"id": f"{REMOTE}/likes/1", "type": "Like"}),
    ]
    for activity in cases:
        with pytest.raises(IgnoreActivity):
            await on_answer(ctx(node), activity)
    assert await _rows(node, Follow) == [] and await _rows(node, Job) == []


async def test_a_partnership_answer_from_a_third_party_changes_nothing(
    node: NodeHandle, parties: tuple[Community, Community, Community]
) -> None:
    local, remote, _ = parties
    follow_id = f"{node.config.base_url}/c/tools/activities/p1"
    await _add(
        node,
        CommunityPartnership(
            local_community_id=local.id,
            remote_community_id=remote.id,
            state="proposed",
            initiated_by="us",
            follow_activity_id=follow_id,
        ),
    )
    with pytest.raises(IgnoreActivity):
        await on_answer(ctx(node), answer("Accept", STRANGER, follow_id, partnership=True))
    [partnership] = await _rows(node, CommunityPartnership)
    assert partnership.state == "proposed"
    await on_answer(ctx(node), answer("Accept", REMOTE, follow_id, partnership=True))
    [partnership] = await _rows(node, CommunityPartnership)
    jobs = await _rows(node, Job)
    assert partnership.state == "active"
    # Its backfill of them, and the job sending them our partner-only listings.
    assert sorted(job.kind for job in jobs) == ["backfill", "partner_push"]
