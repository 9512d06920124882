"""Real payloads from Pleroma/Akkoma, GoToSocial and Lemmy, read offline by our parsers.

Each fixture goes through `normalize_activity` (which may hand it to pyld with
the contexts bundled in `federation/contexts/`) and then `federation.vocab`,
and must come out with the id, type, actor and object the server meant.
Where the shapes come from is in each `tests/fixtures/<server>/README.md`.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any, NamedTuple

import pytest

from federation.jsonld import expand, make_document_loader, normalize_activity
from federation.vocab import PUBLIC, parse_activity, parse_actor, parse_note

FIXTURES = Path(__file__).parent.parent / "fixtures"
COMMUNITY = "https://commons.example/c/riverside"
OUR_FOLLOW = "https://commons.example/activities/follow/5c0f4b7e-1a2d-4e3f-8b9c-0d1e2f3a4b5c"

MIRA = "https://pleroma.example/users/mira"
MIRA_FOLLOW = "https://pleroma.example/activities/dab6a4d3-0db0-41ee-8aab-7bfa4929b4fd"
MIRA_NOTE = "https://pleroma.example/objects/1a522f2e-d5ab-454b-93d7-e58bc0650c2a"
JUNIPER = "https://gts.example/users/juniper"
JUNIPER_FOLLOW = f"{JUNIPER}/follow/01J8Z6W3KX2M9R4T7V1B5N8C0D"
JUNIPER_STATUS = f"{JUNIPER}/statuses/01J8Z9D4G7J0M3P6R9T2W5Y8A1"
TOOLSHARE = "https://lemmy.example/c/toolshare"
ALEX = "https://lemmy.example/u/alex"
ALEX_FOLLOW = "https://lemmy.example/activities/follow/6abcd50b-b8ca-4952-86b0-a6dd8cc12866"
ALEX_POST = "https://lemmy.example/post/1"
ALEX_CREATE = "https://lemmy.example/activities/create/eee6a57a-622f-464d-b560-73ae1fcd3ddf"


def fixture(path: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((FIXTURES / path).read_text())
    return document


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Reading a fixture must not resolve or connect anywhere."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"network access attempted: {args!r}")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


class ExpectedActivity(NamedTuple):
    path: str
    type: str
    id: str
    actor: str
    object_id: str
    object_type: str | None  # of an embedded object; None when given by reference


ACTIVITIES = [
    ExpectedActivity("pleroma/follow.json", "Follow", MIRA_FOLLOW, MIRA, COMMUNITY, None),
    ExpectedActivity(
        "pleroma/accept_follow.json",
        "Accept",
        "https://pleroma.example/activities/4b1f0d3e-7c2a-4e8b-9f61-2d5a8c0e1b73",
        MIRA,
        OUR_FOLLOW,
        "Follow",
    ),
    ExpectedActivity(
        "pleroma/create_note.json",
        "Create",
        "https://pleroma.example/activities/db61d52b-9c35-486a-bf27-bbd4edc6c6a1",
        MIRA,
        MIRA_NOTE,
        "Note",
    ),
    ExpectedActivity(
        "pleroma/undo_follow.json",
        "Undo",
        "https://pleroma.example/activities/6c9d2e1f-0a4b-4c3d-8e7f-5a1b2c3d4e5f",
        MIRA,
        MIRA_FOLLOW,
        "Follow",
    ),
    ExpectedActivity(
        "pleroma/delete.json",
        "Delete",
        "https://pleroma.example/activities/52f0b259-596e-429f-8a1b-c0b455f8932b",
        MIRA,
        MIRA_NOTE,
        None,
    ),
    ExpectedActivity("gotosocial/follow.json", "Follow", JUNIPER_FOLLOW, JUNIPER, COMMUNITY, None),
    ExpectedActivity(
        "gotosocial/accept_follow.json",
        "Accept",
        "https://gts.example/01J8Z7C2F5H8K1N4Q7S0V3X6Z9",
        JUNIPER,
        OUR_FOLLOW,
        "Follow",
    ),
    ExpectedActivity(
        "gotosocial/create_note.json",
        "Create",
        f"{JUNIPER_STATUS}/activity#Create",
        JUNIPER,
        JUNIPER_STATUS,
        "Note",
    ),
    ExpectedActivity(
        "gotosocial/undo_follow.json",
        "Undo",
        "https://gts.example/01J8ZB5H8K1N4Q7S0V3X6Z9C2E",
        JUNIPER,
        JUNIPER_FOLLOW,
        "Follow",
    ),
    ExpectedActivity(
        "gotosocial/delete.json",
        "Delete",
        "https://gts.example/01J8ZC6J9M2P5R8T1W4Y7A0D3F",
        JUNIPER,
        JUNIPER_STATUS,
        None,
    ),
    ExpectedActivity("lemmy/follow.json", "Follow", ALEX_FOLLOW, ALEX, COMMUNITY, None),
    ExpectedActivity(
        "lemmy/accept_follow.json",
        "Accept",
        "https://lemmy.example/activities/accept/75f080cc-3d45-4654-8186-8f3bb853fa27",
        TOOLSHARE,
        OUR_FOLLOW,
        "Follow",
    ),
    ExpectedActivity("lemmy/create_page.json", "Create", ALEX_CREATE, ALEX, ALEX_POST, "Page"),
    ExpectedActivity(
        "lemmy/announce_create_page.json",
        "Announce",
        "https://lemmy.example/activities/announce/8030b171-803a-4108-94b1-342688f375cf",
        TOOLSHARE,
        ALEX_CREATE,
        "Create",
    ),
    ExpectedActivity(
        "lemmy/undo_follow.json",
        "Undo",
        "https://lemmy.example/activities/undo/dd83c482-8ebd-4b6c-9008-c8373bd1a86a",
        ALEX,
        ALEX_FOLLOW,
        "Follow",
    ),
    ExpectedActivity(
        "lemmy/delete_page.json",
        "Delete",
        "https://lemmy.example/activities/delete/f2abee48-c7bb-41d5-9e27-8775ff32db12",
        ALEX,
        ALEX_POST,
        None,
    ),
]


class ExpectedActor(NamedTuple):
    path: str
    id: str
    type: str
    preferred_username: str
    name: str
    inbox: str
    shared_inbox: str
    key_id: str


ACTORS = [
    ExpectedActor(
        "pleroma/actor.json",
        MIRA,
        "Person",
        "mira",
        "Mira :bike: ",
        f"{MIRA}/inbox",
        "https://pleroma.example/inbox",
        f"{MIRA}#main-key",
    ),
    ExpectedActor(
        "gotosocial/actor.json",
        JUNIPER,
        "Person",
        "juniper",
        "Juniper (she/her)",
        f"{JUNIPER}/inbox",
        "https://gts.example/sharedInbox",
        f"{JUNIPER}/main-key",
    ),
    ExpectedActor(
        "lemmy/actor.json",
        TOOLSHARE,
        "Group",
        "toolshare",
        "Tool Share",
        f"{TOOLSHARE}/inbox",
        "https://lemmy.example/inbox",
        f"{TOOLSHARE}#main-key",
    ),
    ExpectedActor(
        "lemmy/person.json",
        ALEX,
        "Person",
        "alex",
        "Alex",
        f"{ALEX}/inbox",
        "https://lemmy.example/inbox",
        f"{ALEX}#main-key",
    ),
]


class ExpectedNote(NamedTuple):
    path: str
    id: str
    type: str
    attributed_to: str
    name: str | None
    content_start: str
    audience: tuple[str, ...]


NOTES = [
    ExpectedNote(
        "pleroma/create_note.json",
        MIRA_NOTE,
        "Note",
        MIRA,
        None,
        '<span class="h-card">',
        (COMMUNITY, PUBLIC, f"{MIRA}/followers"),
    ),
    ExpectedNote(
        "gotosocial/create_note.json",
        JUNIPER_STATUS,
        "Note",
        JUNIPER,
        None,
        "<p>spare seed potatoes",
        (PUBLIC, f"{JUNIPER}/followers"),
    ),
    ExpectedNote(
        "lemmy/create_page.json",
        ALEX_POST,
        "Page",
        ALEX,
        "Offering: a pressure washer for the weekend",
        "<p>Pick it up from the riverside shed.</p>",
        (TOOLSHARE, PUBLIC),
    ),
]


def server_fixture_paths() -> list[str]:
    return sorted(
        str(path.relative_to(FIXTURES))
        for path in FIXTURES.glob("*/*.json")
        if path.parent.name != "mastodon"
    )


def test_every_fixture_has_expectations_and_a_readme() -> None:
    covered = {e.path for e in ACTIVITIES} | {e.path for e in ACTORS}

    assert set(server_fixture_paths()) == covered
    for server in ("pleroma", "gotosocial", "lemmy"):
        assert (FIXTURES / server / "README.md").is_file()


@pytest.mark.parametrize("expected", ACTIVITIES, ids=lambda e: e.path)
def test_activity_reads_with_the_id_type_actor_and_object_its_server_meant(
    expected: ExpectedActivity,
) -> None:
    activity = parse_activity(normalize_activity(fixture(expected.path)))

    assert (activity.id, activity.type, activity.actor) == (
        expected.id,
        expected.type,
        expected.actor,
    )
    assert activity.object_id == expected.object_id
    embedded = activity.object if isinstance(activity.object, dict) else None
    assert (embedded or {}).get("type") == expected.object_type


@pytest.mark.parametrize("expected", ACTORS, ids=lambda e: e.path)
def test_actor_reads_with_its_inboxes_and_key(expected: ExpectedActor) -> None:
    actor = parse_actor(normalize_activity(fixture(expected.path)))

    assert (actor.id, actor.type, actor.preferred_username, actor.name) == (
        expected.id,
        expected.type,
        expected.preferred_username,
        expected.name,
    )
    assert (actor.inbox, actor.shared_inbox) == (expected.inbox, expected.shared_inbox)
    assert actor.delivery_inbox == expected.shared_inbox
    assert (actor.public_key_id, actor.public_key_owner) == (expected.key_id, expected.id)
    assert (actor.public_key_pem or "").startswith("-----BEGIN PUBLIC KEY-----")


@pytest.mark.parametrize("expected", NOTES, ids=lambda e: e.path)
def test_created_post_reads_as_a_listing_like_note(expected: ExpectedNote) -> None:
    activity = parse_activity(normalize_activity(fixture(expected.path)))
    note = parse_note(normalize_activity(activity.object))

    assert (note.id, note.type, note.attributed_to, note.name) == (
        expected.id,
        expected.type,
        expected.attributed_to,
        expected.name,
    )
    assert note.content.startswith(expected.content_start)
    assert set(note.to + note.cc) == set(expected.audience)
    assert note.is_public


def test_announced_lemmy_post_reads_as_a_page_of_its_community() -> None:
    announce = parse_activity(normalize_activity(fixture("lemmy/announce_create_page.json")))
    create = parse_activity(normalize_activity(announce.object))
    page = parse_note(normalize_activity(create.object))

    assert (create.actor, page.id, page.type) == (ALEX, ALEX_POST, "Page")
    assert TOOLSHARE in page.to and page.is_public


@pytest.mark.parametrize("path", server_fixture_paths())
def test_every_context_a_fixture_names_is_served_offline(path: str) -> None:
    loader = make_document_loader()
    context = fixture(path)["@context"]
    named = context if isinstance(context, list) else [context]

    for url in (entry for entry in named if isinstance(entry, str)):
        assert "@context" in loader(url, {})["document"], url


@pytest.mark.parametrize(
    ("path", "term"),
    [
        ("pleroma/create_note.json", "http://litepub.social/ns#directMessage"),
        ("pleroma/actor.json", "http://litepub.social/ns#capabilities"),
        ("lemmy/actor.json", "https://join-lemmy.org/ns#postingRestrictedToMods"),
        ("gotosocial/actor.json", "https://gotosocial.org/ns#hidesToPublicFromUnauthedWeb"),
    ],
)
def test_server_extension_terms_expand_under_the_bundled_contexts(path: str, term: str) -> None:
    """Proof that the server's own context was read, not just tolerated."""
    [node] = expand(fixture(path))

    assert term in node


def test_gotosocial_interaction_policy_expands_under_its_namespace() -> None:
    [node] = expand(fixture("gotosocial/create_note.json"))
    [note] = node["https://www.w3.org/ns/activitystreams#object"]

    assert "https://gotosocial.org/ns#interactionPolicy" in note
