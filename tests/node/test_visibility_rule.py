"""The visibility rule: who sees a listing, for every visibility and every kind of viewer.

Fast unit tests of `node.domain.visibility`, plus what the rule means for a
listing leaving the node (`listing_to_note`). Viewers are built the way
`node.protocol.audience.viewer_for_request` builds them: the partner list is
the community's *active* partnerships, so a community whose partnership ended
is a signed stranger again.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from federation.vocab import PUBLIC
from node.domain.conversion import NotShareable, listing_to_note
from node.domain.visibility import Viewer, leaves_node, may_view, resolve_visibility
from storage.models import Community, Listing
from storage.states import Visibility, values

VISIBILITIES = values(Visibility)

HOME_ID = 1
OTHER_LOCAL_ID = 2
HOME = "https://home.example/c/tools"
PARTNER = "https://partner.example/c/garden"
FORMER_PARTNER = "https://former.example/c/bikes"
STRANGER = "https://mastodon.example/users/alice"
ACTIVE_PARTNERS = (PARTNER,)


def remote_viewer(actor: str) -> Viewer:
    """As `viewer_for_request` builds it for a validly signed fetch by `actor`."""
    return Viewer(
        remote_actor=actor,
        is_active_partner=actor in ACTIVE_PARTNERS,
        partner_actors=ACTIVE_PARTNERS,
    )


VIEWERS: dict[str, Viewer] = {
    "anonymous": Viewer.anonymous(),
    "home member": Viewer(local_community_id=HOME_ID),
    "member of another local community": Viewer(local_community_id=OTHER_LOCAL_ID),
    "signed stranger": remote_viewer(STRANGER),
    "active partner": remote_viewer(PARTNER),
    "former partner": remote_viewer(FORMER_PARTNER),
}

SEES: dict[str, set[str]] = {
    "community": {"home member"},
    "partners": {"home member", "active partner"},
    "public": set(VIEWERS),
}


def listing(visibility: str) -> Listing:
    moment = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    return Listing(
        id="l1",
        ap_id=f"{HOME}/listings/l1",
        community_id=HOME_ID,
        kind="offer",
        title="Ladder",
        description="Three metres.",
        category="",
        status="active",
        visibility=visibility,
        is_public=visibility == "public",
        created_at=moment,
        updated_at=moment,
    )


def home_community() -> Community:
    return Community(id=HOME_ID, ap_id=HOME, is_local=True, followers_url=f"{HOME}/followers")


def test_the_matrix_covers_every_visibility() -> None:
    assert set(SEES) == set(VISIBILITIES)


@pytest.mark.parametrize("visibility", VISIBILITIES)
@pytest.mark.parametrize("viewer_name", list(VIEWERS))
def test_who_sees_a_listing(visibility: str, viewer_name: str) -> None:
    expected = viewer_name in SEES[visibility]

    assert may_view(listing(visibility), VIEWERS[viewer_name]) is expected


def test_a_former_partner_sees_only_what_anyone_sees() -> None:
    former = VIEWERS["former partner"]
    anonymous = VIEWERS["anonymous"]

    for visibility in VISIBILITIES:
        assert may_view(listing(visibility), former) == may_view(listing(visibility), anonymous)


def test_a_remote_actor_cannot_claim_a_home_membership() -> None:
    """Only a local session sets `local_community_id`; a remote id alone never does."""
    viewer = Viewer(remote_actor=HOME)

    assert not may_view(listing("community"), viewer)
    assert not may_view(listing("partners"), viewer)


@pytest.mark.parametrize("visibility", ["private", "Public", "", "members"])
def test_an_unknown_visibility_fails_closed(visibility: str) -> None:
    row = listing(visibility)

    assert may_view(row, VIEWERS["home member"])
    for name in set(VIEWERS) - {"home member"}:
        assert not may_view(row, VIEWERS[name]), name
    assert not leaves_node(row)


@pytest.mark.parametrize(
    ("visibility", "leaves"), [("community", False), ("partners", True), ("public", True)]
)
def test_only_partner_and_public_listings_leave_the_node(visibility: str, leaves: bool) -> None:
    assert leaves_node(listing(visibility)) is leaves


def test_a_community_listing_cannot_be_serialised_for_anyone() -> None:
    with pytest.raises(NotShareable):
        listing_to_note(listing("community"), home_community(), [PARTNER])


def test_a_partner_listing_is_addressed_to_active_partners_by_name_only() -> None:
    note = listing_to_note(listing("partners"), home_community(), list(ACTIVE_PARTNERS))
    audience = [*note["to"], *note.get("cc", [])]

    assert note["to"] == [PARTNER]
    assert PUBLIC not in audience
    assert f"{HOME}/followers" not in audience
    assert FORMER_PARTNER not in audience


def test_a_public_listing_is_addressed_to_the_public_and_followers() -> None:
    note = listing_to_note(listing("public"), home_community(), list(ACTIVE_PARTNERS))

    assert note["to"] == [PUBLIC]
    assert note["cc"] == [f"{HOME}/followers"]


@pytest.mark.parametrize(
    ("visibility", "is_public", "expected"),
    [
        (None, None, "community"),
        (None, False, "community"),
        (None, True, "public"),
        ("community", None, "community"),
        ("community", False, "community"),
        ("partners", None, "partners"),
        ("partners", False, "partners"),
        ("public", None, "public"),
        ("public", True, "public"),
    ],
)
def test_requested_visibility_defaults_to_the_community(
    visibility: str | None, is_public: bool | None, expected: str
) -> None:
    assert resolve_visibility(visibility, is_public) == expected


@pytest.mark.parametrize(
    ("visibility", "is_public"),
    [
        ("community", True),
        ("partners", True),
        ("public", False),
        ("Public", None),
        ("everyone", None),
        ("", None),
    ],
)
def test_contradictory_or_unknown_visibility_is_refused(
    visibility: str, is_public: bool | None
) -> None:
    with pytest.raises(ValueError):
        resolve_visibility(visibility, is_public)
