"""AS2 wire types: real Mastodon payloads in, our own documents out and back."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from federation.builders import (
    build_activity,
    build_actor_document,
    build_note,
    build_tombstone,
    ordered_collection,
    ordered_collection_page,
)
from federation.contexts import DEFAULT_CONTEXT
from federation.html_text import html_to_plain_text, plain_text_to_html
from federation.vocab import (
    PUBLIC,
    READ_TERMS,
    Activity,
    Place,
    VocabError,
    is_public_audience,
    parse_activity,
    parse_actor,
    parse_note,
)

FIXTURES = Path(__file__).parent.parent / "fixtures" / "mastodon"
ALICE = "https://mastodon.example/users/alice"
COMMUNITY = "https://commons.example/c/riverside"


def fixture(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return document


def listing_note(**overrides: Any) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "note_id": "https://commons.example/listings/42",
        "attributed_to": COMMUNITY,
        "title": "Track pump <to lend>",
        "description": "Presta and Schrader.\nAsk at the café.\n\nBack by Sunday & thanks!",
        "to": [PUBLIC],
        "cc": [f"{COMMUNITY}/followers"],
        "published": datetime(2024, 5, 14, 9, 12, 44, tzinfo=UTC),
        "updated": datetime(2024, 5, 15, 7, 0, 0, tzinfo=UTC),
        "kind": "offer",
        "category": "tools",
        "status": "open",
        "visibility": "public",
        "location": Place(52.520008, 13.404954, "Mitte"),
        "url": "https://commons.example/listings/42/page",
    }
    arguments.update(overrides)
    return build_note(**arguments)


# --- Mastodon payloads -------------------------------------------------------


def test_mastodon_person_parses_with_key_inbox_and_shared_inbox() -> None:
    actor = parse_actor(fixture("actor.json"))

    assert actor.id == ALICE
    assert actor.type == "Person"
    assert actor.preferred_username == "alice"
    assert actor.name == "Alice Moreau"
    assert actor.inbox == f"{ALICE}/inbox"
    assert actor.outbox == f"{ALICE}/outbox"
    assert actor.followers == f"{ALICE}/followers"
    assert actor.shared_inbox == "https://mastodon.example/inbox"
    assert actor.delivery_inbox == "https://mastodon.example/inbox"
    assert actor.public_key_id == f"{ALICE}#main-key"
    assert actor.public_key_owner == ALICE
    assert actor.public_key_pem is not None
    assert actor.public_key_pem.startswith("-----BEGIN PUBLIC KEY-----")
    assert actor.url == "https://mastodon.example/@alice"
    assert actor.location is None
    assert actor.public_offer_count is None


def test_mastodon_follow_has_string_actor_and_object() -> None:
    follow = parse_activity(fixture("follow.json"))

    assert follow.type == "Follow"
    assert follow.actor == ALICE
    assert follow.object == COMMUNITY
    assert follow.object_id == COMMUNITY
    assert follow.partnership is False
    assert follow.to == ()


def test_mastodon_accept_embeds_the_follow_it_answers() -> None:
    accept = parse_activity(fixture("accept_follow.json"))

    assert accept.type == "Accept"
    assert accept.id == f"{ALICE}#accepts/follows/1187"
    assert isinstance(accept.object, dict)
    assert accept.object_id == (
        "https://commons.example/activities/follow/5c0f4b7e-1a2d-4e3f-8b9c-0d1e2f3a4b5c"
    )
    inner = parse_activity(accept.object)
    assert (inner.type, inner.actor, inner.object) == ("Follow", COMMUNITY, ALICE)


def test_mastodon_undo_names_the_follow_by_its_stable_id() -> None:
    undo = parse_activity(fixture("undo_follow.json"))

    assert undo.type == "Undo"
    assert undo.object_id == fixture("follow.json")["id"]
    assert parse_activity(undo.object).type == "Follow"


def test_mastodon_create_note_reads_content_audience_and_dates() -> None:
    create = parse_activity(fixture("create_note.json"))
    note = parse_note(create.object)

    assert create.published == datetime(2024, 5, 14, 9, 12, 44, tzinfo=UTC)
    assert create.to == (PUBLIC,)
    assert note.id == "https://mastodon.example/users/alice/statuses/112433795042391507"
    assert note.attributed_to == ALICE
    assert note.content.startswith("<p>We have a spare track pump")
    assert note.summary is None
    assert note.cc == (f"{ALICE}/followers", COMMUNITY)
    assert note.is_public
    assert note.url == "https://mastodon.example/@alice/112433795042391507"
    assert note.kind is None
    assert note.location is None


def test_mastodon_content_reads_as_plain_text_with_full_links() -> None:
    note = parse_note(fixture("create_note.json")["object"])

    assert html_to_plain_text(note.content) == (
        "We have a spare track pump to lend for the summer, anyone in @riverside? "
        "Guide here: https://bikes.example.org/guides/track-pump-valves\n\n"
        "#mutualaid #bikes"
    )


def test_mastodon_delete_carries_a_tombstone() -> None:
    delete = parse_activity(fixture("delete_tombstone.json"))

    assert delete.type == "Delete"
    assert isinstance(delete.object, dict)
    assert delete.object["type"] == "Tombstone"
    assert delete.object_id == "https://mastodon.example/users/alice/statuses/112433795042391507"


# --- the shapes AS2 allows ---------------------------------------------------


def minimal_follow(**changes: Any) -> dict[str, Any]:
    document: dict[str, Any] = {
        "id": "https://a.example/follows/1",
        "type": "Follow",
        "actor": ALICE,
        "object": COMMUNITY,
    }
    document.update(changes)
    return document


@pytest.mark.parametrize("public", [PUBLIC, "as:Public", "Public"])
def test_public_audience_aliases_all_read_as_the_public_iri(public: str) -> None:
    activity = parse_activity(minimal_follow(to=public, cc=[public, COMMUNITY]))

    assert activity.to == (PUBLIC,)
    assert activity.cc == (PUBLIC, COMMUNITY)
    assert is_public_audience(activity.to)
    assert is_public_audience(public)


def test_audience_may_be_a_string_a_list_or_objects_with_ids() -> None:
    assert parse_activity(minimal_follow(to=COMMUNITY)).to == (COMMUNITY,)
    assert parse_activity(minimal_follow(to=[COMMUNITY, ALICE])).to == (COMMUNITY, ALICE)
    assert parse_activity(minimal_follow(to=[{"id": COMMUNITY}])).to == (COMMUNITY,)
    assert not is_public_audience([COMMUNITY])
    assert not is_public_audience(None)


def test_actor_may_be_an_embedded_object_or_a_one_item_list() -> None:
    assert parse_activity(minimal_follow(actor={"id": ALICE, "type": "Person"})).actor == ALICE
    assert parse_activity(minimal_follow(actor=[ALICE])).actor == ALICE


def test_partnership_flag_is_read_from_a_follow() -> None:
    assert parse_activity(minimal_follow(partnership=True)).partnership is True


def test_content_map_stands_in_for_missing_content() -> None:
    note = parse_note(
        {"id": "https://a.example/n/1", "type": "Note", "contentMap": {"de": "<p>Hallo</p>"}}
    )

    assert note.content == "<p>Hallo</p>"


def test_value_objects_left_by_pyld_are_unwrapped() -> None:
    note = parse_note(
        {
            "id": "https://a.example/n/1",
            "type": "Note",
            "kind": {"@value": "need", "@language": "en"},
        }
    )

    assert note.kind == "need"


def test_display_url_keeps_only_http_links() -> None:
    base = {"id": "https://a.example/n/1", "type": "Note"}

    assert parse_note({**base, "url": "javascript:alert(1)"}).url is None
    link = {"type": "Link", "href": "https://a.example/@n/1", "mediaType": "text/html"}
    assert parse_note({**base, "url": [link]}).url == "https://a.example/@n/1"


def test_naive_remote_timestamps_are_taken_as_utc() -> None:
    activity = parse_activity(minimal_follow(published="2024-05-14T09:12:44"))

    assert activity.published == datetime(2024, 5, 14, 9, 12, 44, tzinfo=UTC)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"id": None}, "activity.id"),
        ({"id": "ftp://a.example/1"}, "http(s)"),
        ({"id": "javascript:alert(1)"}, "http(s)"),
        ({"id": 17}, "URL string"),
        ({"type": None}, "no type"),
        ({"actor": None}, "exactly one actor"),
        ({"actor": [ALICE, COMMUNITY]}, "exactly one actor"),
        ({"object": None}, "has no object"),
        ({"object": 5}, "activity.object"),
        ({"object": {"id": "urn:uuid:1"}}, "activity.object.id"),
        ({"to": 3}, "activity.to"),
        ({"cc": ["not a url"]}, "activity.cc"),
        ({"published": "last tuesday"}, "ISO 8601"),
        ({"partnership": "yes"}, "true or false"),
    ],
)
def test_malformed_activities_are_refused_with_a_clear_message(
    change: dict[str, Any], message: str
) -> None:
    document = {key: value for key, value in minimal_follow(**change).items() if value is not None}

    with pytest.raises(VocabError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_activity(document)


def test_intransitive_activity_without_object_is_accepted() -> None:
    activity = parse_activity({"id": "https://a.example/q/1", "type": "Arrive", "actor": ALICE})

    assert activity.object is None
    assert activity.object_id is None


def test_non_objects_are_refused() -> None:
    with pytest.raises(VocabError, match="JSON object"):
        parse_activity(["not", "an", "object"])


def test_an_actor_must_be_an_actor_type_with_an_inbox() -> None:
    person = fixture("actor.json")

    with pytest.raises(VocabError, match="expected an actor"):
        parse_actor({**person, "type": "Note"})
    with pytest.raises(VocabError, match=r"actor\.inbox"):
        parse_actor({key: value for key, value in person.items() if key != "inbox"})


def test_actor_claiming_someone_elses_key_is_refused() -> None:
    person = fixture("actor.json")
    stolen = copy.deepcopy(person)
    stolen["publicKey"]["owner"] = "https://victim.example/users/bob"
    elsewhere = copy.deepcopy(person)
    elsewhere["publicKey"]["id"] = "https://attacker.example/keys/1"

    with pytest.raises(VocabError, match="owned by"):
        parse_actor(stolen)
    with pytest.raises(VocabError, match="hosted elsewhere"):
        parse_actor(elsewhere)


def test_actor_with_its_inbox_on_another_host_is_refused() -> None:
    person = fixture("actor.json")
    for inbox in (
        "https://collector.example/inbox",
        "https://mastodon.example:8443/users/alice/inbox",
        "https://sub.mastodon.example/users/alice/inbox",
    ):
        with pytest.raises(VocabError, match="inbox on another host"):
            parse_actor({**person, "inbox": inbox})


def test_actor_inbox_on_its_own_host_is_kept_whatever_the_port_spelling() -> None:
    person = fixture("actor.json")
    inbox = "https://MASTODON.example:443/users/alice/inbox"
    assert parse_actor({**person, "inbox": inbox}).inbox == inbox


def test_actor_collections_and_shared_inbox_elsewhere_are_dropped() -> None:
    person = fixture("actor.json")
    foreign = {
        **person,
        "endpoints": {"sharedInbox": "https://relay.example/inbox"},
        "outbox": "https://victim.example/c/x/partner-listings",
        "followers": "https://victim.example/followers",
    }
    actor = parse_actor(foreign)
    assert (actor.shared_inbox, actor.outbox, actor.followers) == (None, None, None)
    assert actor.delivery_inbox == actor.inbox == "https://mastodon.example/users/alice/inbox"
    own = parse_actor(person)
    assert own.shared_inbox == "https://mastodon.example/inbox"
    assert own.outbox == "https://mastodon.example/users/alice/outbox"


@pytest.mark.parametrize(
    ("location", "message"),
    [
        ({"type": "Place", "latitude": 91, "longitude": 0}, "outside the globe"),
        ({"type": "Place", "latitude": "north", "longitude": 0}, "must be a number"),
        ({"type": "Place", "latitude": True, "longitude": 0}, "must be a number"),
    ],
)
def test_impossible_places_are_refused(location: dict[str, Any], message: str) -> None:
    with pytest.raises(VocabError, match=message):
        parse_note({"id": "https://a.example/n/1", "type": "Note", "location": location})


def test_negative_counts_are_refused() -> None:
    group = build_actor_document(**actor_arguments())
    group["publicOfferCount"] = -1

    with pytest.raises(VocabError, match="non-negative"):
        parse_actor(group)


# --- our documents -----------------------------------------------------------


def test_built_note_parses_back_to_the_same_fields() -> None:
    note = parse_note(listing_note())

    assert note.id == "https://commons.example/listings/42"
    assert note.type == "Note"
    assert note.attributed_to == COMMUNITY
    assert note.name == "Track pump <to lend>"
    assert note.summary is None
    assert note.published == datetime(2024, 5, 14, 9, 12, 44, tzinfo=UTC)
    assert note.updated == datetime(2024, 5, 15, 7, 0, 0, tzinfo=UTC)
    assert note.to == (PUBLIC,)
    assert note.cc == (f"{COMMUNITY}/followers",)
    assert (note.kind, note.category, note.status, note.visibility) == (
        "offer",
        "tools",
        "open",
        "public",
    )
    assert note.location == Place(52.52, 13.4, "Mitte")
    assert note.url == "https://commons.example/listings/42/page"


def test_built_note_reads_well_in_mastodon() -> None:
    document = listing_note()

    assert document["@context"] == DEFAULT_CONTEXT
    assert document["content"] == (
        "<p><strong>Track pump &lt;to lend&gt;</strong></p>"
        "<p>Presta and Schrader.<br>Ask at the café.</p>"
        "<p>Back by Sunday &amp; thanks!</p>"
    )
    assert "summary" not in document
    assert html_to_plain_text(document["content"]).startswith("Track pump <to lend>\n\n")


def test_built_note_leaves_out_unset_extension_terms() -> None:
    document = listing_note(kind=None, category=None, location=None, url=None, updated=None)

    assert not {"kind", "category", "location", "url", "updated"} & document.keys()
    assert parse_note(document).kind is None


def test_exact_coordinates_never_leave_the_node() -> None:
    document = listing_note(location=Place(52.5200081, 13.4049541))

    assert document["location"] == {"type": "Place", "latitude": 52.52, "longitude": 13.4}


def test_timestamps_are_written_in_utc_and_naive_ones_refused() -> None:
    plus_two = timezone(timedelta(hours=2))
    document = listing_note(published=datetime(2024, 5, 14, 11, 12, 44, 999, tzinfo=plus_two))

    assert document["published"] == "2024-05-14T09:12:44Z"
    with pytest.raises(ValueError, match="naive"):
        listing_note(published=datetime(2024, 5, 14, 9, 0, 0))


def actor_arguments() -> dict[str, Any]:
    return {
        "actor_id": COMMUNITY,
        "preferred_username": "riverside",
        "name": "Riverside Commons",
        "description": "Tools, seeds & time.\n\nMeet on Saturdays.",
        "inbox": f"{COMMUNITY}/inbox",
        "outbox": f"{COMMUNITY}/outbox",
        "followers": f"{COMMUNITY}/followers",
        "shared_inbox": "https://commons.example/inbox",
        "public_key_pem": fixture("actor.json")["publicKey"]["publicKeyPem"],
        "url": "https://commons.example/communities/riverside",
        "location": Place(48.85661, 2.35222, "Paris"),
        "public_offer_count": 12,
        "public_need_count": 3,
        "published": datetime(2024, 1, 1, tzinfo=UTC),
    }


def test_built_group_has_what_mastodon_and_our_peers_read() -> None:
    document = build_actor_document(**actor_arguments())
    actor = parse_actor(document)

    assert document["type"] == "Group"
    assert document["discoverable"] is True
    assert document["manuallyApprovesFollowers"] is False
    assert document["summary"] == "<p>Tools, seeds &amp; time.</p><p>Meet on Saturdays.</p>"
    assert actor.id == COMMUNITY
    assert actor.preferred_username == "riverside"
    assert actor.shared_inbox == "https://commons.example/inbox"
    assert actor.public_key_id == f"{COMMUNITY}#main-key"
    assert actor.public_key_owner == COMMUNITY
    assert actor.location == Place(48.86, 2.35, "Paris")
    assert (actor.public_offer_count, actor.public_need_count) == (12, 3)
    assert actor.url == "https://commons.example/communities/riverside"


def test_built_activity_embeds_objects_without_their_context() -> None:
    published = datetime(2024, 5, 14, 9, 12, 44, tzinfo=UTC)
    document = build_activity(
        "Create",
        "https://commons.example/activities/1",
        COMMUNITY,
        listing_note(),
        to=[PUBLIC],
        cc=[f"{COMMUNITY}/followers"],
        published=published,
    )
    activity = parse_activity(document)

    assert "@context" not in document["object"]
    assert document["published"] == "2024-05-14T09:12:44Z"
    assert isinstance(activity, Activity)
    assert activity.published == published
    assert parse_note(activity.object) == parse_note(listing_note())


def test_partnership_follow_round_trips() -> None:
    document = build_activity(
        "Follow", "https://a.example/f/1", COMMUNITY, ALICE, to=[ALICE], partnership=True
    )

    assert parse_activity(document).partnership is True


def test_tombstone_and_collections_have_their_as2_shapes() -> None:
    deleted = datetime(2024, 5, 15, tzinfo=UTC)
    tombstone = build_tombstone("https://a.example/n/1", former_type="Note", deleted=deleted)
    collection = ordered_collection(
        f"{COMMUNITY}/outbox", total_items=30, first=f"{COMMUNITY}/outbox?page=1"
    )
    page = ordered_collection_page(
        f"{COMMUNITY}/outbox?page=1",
        part_of=f"{COMMUNITY}/outbox",
        ordered_items=[listing_note()],
        next_page=f"{COMMUNITY}/outbox?page=2",
    )

    assert tombstone["type"] == "Tombstone"
    assert tombstone["formerType"] == "Note"
    assert tombstone["deleted"] == "2024-05-15T00:00:00Z"
    assert collection["type"] == "OrderedCollection"
    assert collection["totalItems"] == 30
    assert "orderedItems" not in collection
    assert page["type"] == "OrderedCollectionPage"
    assert page["next"] == f"{COMMUNITY}/outbox?page=2"
    assert "@context" not in page["orderedItems"][0]
    assert parse_note(page["orderedItems"][0]).kind == "offer"


# --- HTML --------------------------------------------------------------------


def test_plain_text_is_escaped_into_paragraphs_and_line_breaks() -> None:
    assert plain_text_to_html("a < b\r\nc\n \n\n<script>") == (
        "<p>a &lt; b<br>c</p><p>&lt;script&gt;</p>"
    )
    assert plain_text_to_html("  \n\n ") == ""


def test_remote_html_loses_every_tag_script_and_attribute() -> None:
    hostile = (
        '<p onclick="steal()">Hi <b>there</b>&amp; welcome</p>'
        "<script>alert('x')</script><style>p{}</style>"
        '<img src=x onerror="steal()"><a href="javascript:steal()">link</a><br/>next'
    )

    assert html_to_plain_text(hostile) == "Hi there& welcome\n\nlink\nnext"


def test_unclosed_script_swallows_only_its_own_text() -> None:
    assert html_to_plain_text("<p>ok</p><script>never shown") == "ok"


words = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Z")))
lines = st.lists(words.filter(bool), min_size=1, max_size=4).map(" ".join)
paragraphs = st.lists(lines, min_size=1, max_size=3).map("\n".join)
texts = st.lists(paragraphs, min_size=1, max_size=3).map("\n\n".join)


@given(texts)
def test_plain_text_survives_a_trip_through_html(text: str) -> None:
    assert html_to_plain_text(plain_text_to_html(text)) == text


# --- the fast path's contract ------------------------------------------------


class RecordingDict(dict[str, Any]):
    """Records every key a parser asks for, at any depth."""

    def __init__(self, data: dict[str, Any], seen: set[str]) -> None:
        super().__init__({key: wrap(value, seen) for key, value in data.items()})
        self.seen = seen

    def get(self, key: str, default: Any = None) -> Any:
        self.seen.add(key)
        return super().get(key, default)

    def __getitem__(self, key: str) -> Any:
        self.seen.add(key)
        return super().__getitem__(key)

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str):
            self.seen.add(key)
        return super().__contains__(key)


def wrap(value: Any, seen: set[str]) -> Any:
    if isinstance(value, dict):
        return RecordingDict(value, seen)
    if isinstance(value, list):
        return [wrap(item, seen) for item in value]
    return value


def test_parsers_read_only_terms_the_fast_path_checks() -> None:
    seen: set[str] = set()
    group = build_actor_document(**actor_arguments())
    group["nameMap"] = {"en": "x"}
    parse_actor(wrap(group, seen))
    parse_actor(wrap({key: v for key, v in group.items() if key != "name"}, seen))
    note = fixture("create_note.json")["object"]
    parse_note(wrap({key: v for key, v in note.items() if key != "content"}, seen))
    parse_note(wrap(listing_note(), seen))
    parse_activity(wrap(fixture("accept_follow.json"), seen))

    assert seen - READ_TERMS <= {"@value", "@context"}
