"""JSON-LD: offline contexts, and a fast path that reads like pyld would."""

from __future__ import annotations

import copy
import dataclasses
import json
import socket
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pyld import jsonld as pyld_jsonld
from pyld.jsonld import JsonLdError

from federation.builders import (
    build_activity,
    build_actor_document,
    build_note,
    ordered_collection_page,
)
from federation.contexts import (
    AS_CONTEXT_URL,
    COMMONS_CONTEXT_URL,
    COMMONS_NS,
    COMMONS_TERMS,
    DEFAULT_CONTEXT,
    GOTOSOCIAL_CONTEXT_URL,
    LEMMY_CONTEXT_URL,
    LITEPUB_CONTEXT_PATH,
    SECURITY_V1_URL,
    WEBFINGER_CONTEXT_URL,
    commons_context_document,
    load_per_host_context,
)
from federation.jsonld import (
    OfflineDocumentLoader,
    compact,
    expand,
    install_document_loader,
    make_document_loader,
    normalize_activity,
    normalize_embedded,
    normalize_with_pyld,
)
from federation.jsonld_fastpath import MAX_DEPTH, NormalizationError, takes_fast_path
from federation.vocab import (
    NOTE_TYPES,
    PUBLIC,
    READ_TERMS,
    Place,
    VocabError,
    parse_activity,
    parse_actor,
    parse_note,
)
from tests.conftest import examples

ALL_FIXTURES = Path(__file__).parent.parent / "fixtures"
FIXTURES = ALL_FIXTURES / "mastodon"
CONTEXTS = Path(__file__).parent.parent.parent / "federation" / "contexts"
MASTODON_NOTE_CONTEXT = json.loads((FIXTURES / "create_note.json").read_text())["@context"]
ACTIVITY_FIXTURES = [
    "follow.json",
    "accept_follow.json",
    "undo_follow.json",
    "create_note.json",
    "delete_tombstone.json",
]
# Every payload kept from the other servers (see each README.md there).
OTHER_SERVER_FIXTURES = sorted(
    str(path.relative_to(ALL_FIXTURES))
    for path in ALL_FIXTURES.glob("*/*.json")
    if path.parent.name != "mastodon"
)


def fixture(name: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((FIXTURES / name).read_text())
    return document


def server_fixture(path: str) -> dict[str, Any]:
    document: dict[str, Any] = json.loads((ALL_FIXTURES / path).read_text())
    return document


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any attempt to resolve or connect fails the test loudly."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"network access attempted: {args!r}")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)


@pytest.fixture
def restore_pyld_loader(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pyld_jsonld, "_default_document_loader", pyld_jsonld.get_document_loader())


def read_fields(document: dict[str, Any]) -> Any:
    """Everything our parsers extract from a document, embedded objects included."""
    if document.get("type") in ("Person", "Group"):
        return parse_actor(document)
    activity = parse_activity(document)
    embedded = activity.object if isinstance(activity.object, dict) else None
    inner: Any = embedded
    if embedded is not None and embedded.get("type") in NOTE_TYPES:
        inner = parse_note(embedded)
    elif embedded is not None and embedded.get("type") == "Follow":
        inner = read_fields(embedded)
    elif embedded is not None:
        kind = embedded.get("type")
        inner = (embedded.get("id"), kind[0] if isinstance(kind, list) and kind else kind or None)
    return (dataclasses.replace(activity, object=activity.object_id), inner)


# --- bundled contexts --------------------------------------------------------


def test_commons_context_file_defines_exactly_the_inlined_terms() -> None:
    document = commons_context_document()

    assert document == {"@context": COMMONS_TERMS}
    assert document["@context"]["commons"] == COMMONS_NS == "https://commons-node.org/ns#"
    assert DEFAULT_CONTEXT[:2] == [AS_CONTEXT_URL, SECURITY_V1_URL]
    assert COMMONS_TERMS.items() <= DEFAULT_CONTEXT[2].items()


def test_context_document_is_a_fresh_copy_each_time() -> None:
    commons_context_document()["@context"]["kind"] = "tampered"

    assert commons_context_document()["@context"]["kind"] == "commons:kind"


def test_bundled_copies_are_pyld_s() -> None:
    pyld_bundle = Path(pyld_jsonld.__file__).parent / "documentloader" / "frozen" / "bundled"
    if not pyld_bundle.is_dir():
        pytest.skip("this pyld ships no bundled contexts")
    for ours, theirs in [
        ("activitystreams.json", "activitystreams.jsonld"),
        ("security-v1.json", "security-v1.jsonld"),
    ]:
        assert json.loads((CONTEXTS / ours).read_text()) == json.loads(
            (pyld_bundle / theirs).read_text()
        )


def test_extension_terms_expand_to_their_fixed_iris() -> None:
    note = build_note(
        note_id="https://a.example/n/1",
        attributed_to="https://a.example/c/x",
        title="Ladder",
        description="Three metres.",
        to=[PUBLIC],
        cc=[],
        published=datetime(2024, 5, 1, tzinfo=UTC),
        kind="offer",
    )
    [node] = expand(note)

    assert node[f"{COMMONS_NS}kind"] == [{"@value": "offer"}]
    assert node["@type"] == ["https://www.w3.org/ns/activitystreams#Note"]


# --- the document loader -----------------------------------------------------


@pytest.mark.usefixtures("no_network")
def test_loader_serves_bundled_contexts_offline() -> None:
    loader = make_document_loader()

    for url in (AS_CONTEXT_URL, SECURITY_V1_URL, COMMONS_CONTEXT_URL):
        answer = loader(url, {})
        assert answer["documentUrl"] == url
        assert "@context" in answer["document"]


@pytest.mark.usefixtures("no_network")
@pytest.mark.parametrize(
    "url",
    [
        "https://evil.example/context.jsonld",
        "https://w3id.org/security/v2",
        "http://127.0.0.1:9/ns",
        "file:///etc/passwd",
    ],
)
def test_loader_refuses_everything_else_without_touching_the_network(url: str) -> None:
    with pytest.raises(JsonLdError) as caught:
        make_document_loader()(url, {})

    assert caught.value.code == "loading document failed"


@pytest.mark.usefixtures("no_network")
@pytest.mark.parametrize(
    "url",
    [
        "https://pleroma.example/schemas/litepub-0.1.jsonld",
        "http://akkoma.example/schemas/litepub-0.1.jsonld",
        "https://social.example:8443/schemas/litepub-0.1.jsonld",
        "http://127.0.0.1:4000/schemas/litepub-0.1.jsonld",
        "https://xn--bcher-kva.example/schemas/litepub-0.1.jsonld",
    ],
)
def test_litepub_context_on_any_host_is_the_bundled_copy(url: str) -> None:
    answer = make_document_loader()(url, {})

    assert answer["documentUrl"] == url
    assert answer["document"] == load_per_host_context(LITEPUB_CONTEXT_PATH)
    assert "http://litepub.social/ns#" in json.dumps(answer["document"])


@pytest.mark.usefixtures("no_network")
@pytest.mark.parametrize(
    "url",
    [
        "https://pleroma.example/schemas/litepub-0.1.jsonld?v=2",
        "https://pleroma.example/schemas/litepub-0.1.jsonld?",
        "https://pleroma.example/schemas/litepub-0.1.jsonld#terms",
        "https://pleroma.example/schemas/litepub-0.2.jsonld",
        "https://pleroma.example/schemas/litepub-0.1.jsonld/",
        "https://pleroma.example/static/schemas/litepub-0.1.jsonld",
        "https://pleroma.example/SCHEMAS/litepub-0.1.jsonld",
        "https://user:secret@pleroma.example/schemas/litepub-0.1.jsonld",
        "ftp://pleroma.example/schemas/litepub-0.1.jsonld",
        "file:///schemas/litepub-0.1.jsonld",
        "/schemas/litepub-0.1.jsonld",
        "https:///schemas/litepub-0.1.jsonld",
        "https://pleroma.example:99999/schemas/litepub-0.1.jsonld",
    ],
)
def test_only_the_exact_litepub_path_is_served_per_host(url: str) -> None:
    with pytest.raises(JsonLdError) as caught:
        make_document_loader()(url, {})

    assert caught.value.code == "loading document failed"


@pytest.mark.usefixtures("no_network")
@pytest.mark.parametrize("url", [GOTOSOCIAL_CONTEXT_URL, LEMMY_CONTEXT_URL, WEBFINGER_CONTEXT_URL])
def test_contexts_other_servers_name_are_served_offline(url: str) -> None:
    assert "@context" in make_document_loader()(url, {})["document"]


@pytest.mark.usefixtures("no_network")
def test_pleroma_activity_naming_its_host_context_is_read_offline() -> None:
    document = {
        "@context": [
            AS_CONTEXT_URL,
            "https://pleroma.example/schemas/litepub-0.1.jsonld",
            {"@language": "und"},
        ],
        **{key: value for key, value in fixture("follow.json").items() if key != "@context"},
    }

    activity = parse_activity(normalize_activity(document))

    assert (activity.type, activity.object_id) == ("Follow", "https://commons.example/c/riverside")


@pytest.mark.usefixtures("no_network")
def test_documents_with_unknown_contexts_are_refused_offline() -> None:
    document = {**fixture("follow.json"), "@context": "https://evil.example/ctx"}

    with pytest.raises(NormalizationError, match=r"evil\.example/ctx.* not available offline"):
        normalize_activity(document)
    assert issubclass(NormalizationError, VocabError)


def test_loader_answers_are_fresh_copies() -> None:
    loader = make_document_loader()
    loader(AS_CONTEXT_URL, {})["document"]["@context"]["Note"] = "tampered"

    assert loader(AS_CONTEXT_URL, {})["document"]["@context"]["Note"] == "as:Note"


def test_importing_does_not_install_the_loader() -> None:
    probe = (
        "import federation.jsonld, federation.vocab, federation.discovery_docs\n"
        "from pyld import jsonld\n"
        "print(type(jsonld.get_document_loader()).__name__)"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )

    assert result.stdout.strip() != "OfflineDocumentLoader"


@pytest.mark.usefixtures("no_network", "restore_pyld_loader")
def test_installed_loader_with_extras_serves_our_ns_document() -> None:
    own_ns = "https://commons.example/ns"
    loader = install_document_loader({own_ns: commons_context_document()})
    document = {**fixture("follow.json"), "@context": [AS_CONTEXT_URL, own_ns], "kind": "need"}

    assert isinstance(pyld_jsonld.get_document_loader(), OfflineDocumentLoader)
    assert pyld_jsonld.get_document_loader() is loader
    assert normalize_activity(document)["kind"] == "need"


# --- the fast path -----------------------------------------------------------


@pytest.mark.parametrize("name", [*ACTIVITY_FIXTURES, "actor.json"])
def test_mastodon_payloads_take_the_fast_path_untouched(name: str) -> None:
    document = fixture(name)
    pristine = copy.deepcopy(document)

    assert takes_fast_path(document)
    assert normalize_activity(document) is document
    assert document == pristine


@pytest.mark.parametrize("name", [*ACTIVITY_FIXTURES, "actor.json"])
def test_fast_and_pyld_paths_read_mastodon_payloads_alike(name: str) -> None:
    document = fixture(name)

    assert read_fields(normalize_activity(document)) == read_fields(normalize_with_pyld(document))


@pytest.mark.usefixtures("no_network")
@pytest.mark.parametrize("path", OTHER_SERVER_FIXTURES)
def test_fast_and_pyld_paths_read_other_servers_payloads_alike(path: str) -> None:
    document = server_fixture(path)
    pristine = copy.deepcopy(document)

    assert read_fields(normalize_activity(document)) == read_fields(normalize_with_pyld(document))
    assert document == pristine


@pytest.mark.parametrize(
    "path",
    [p for p in OTHER_SERVER_FIXTURES if p.startswith(("pleroma/", "lemmy/"))],
)
def test_contexts_the_fast_path_does_not_model_fall_back_to_pyld(path: str) -> None:
    """Pleroma's per-host context and Lemmy's nested one are not modelled: pyld reads them."""
    document = server_fixture(path)

    assert not takes_fast_path(document)
    assert normalize_activity(document) is not document


@pytest.mark.parametrize("path", [p for p in OTHER_SERVER_FIXTURES if p.startswith("gotosocial/")])
def test_gotosocial_payloads_take_the_fast_path_untouched(path: str) -> None:
    document = server_fixture(path)

    assert takes_fast_path(document)
    assert normalize_activity(document) is document


def test_our_own_documents_take_the_fast_path() -> None:
    group = build_actor_document(
        actor_id="https://a.example/c/x",
        preferred_username="x",
        name="X",
        description="",
        inbox="https://a.example/c/x/inbox",
        outbox="https://a.example/c/x/outbox",
        followers="https://a.example/c/x/followers",
        shared_inbox="https://a.example/inbox",
        public_key_pem="pem",
        url="https://a.example/c/x",
        location=Place(1.0, 2.0),
        public_offer_count=4,
    )

    assert takes_fast_path(group)
    assert parse_actor(normalize_with_pyld(group)) == parse_actor(group)


@pytest.mark.parametrize("context", [DEFAULT_CONTEXT, [*MASTODON_NOTE_CONTEXT, COMMONS_TERMS]])
def test_embedded_object_keeps_its_meaning_when_normalized_on_its_own(context: Any) -> None:
    note = build_note(
        note_id="https://a.example/n/1",
        attributed_to="https://a.example/c/x",
        title="Ladder",
        description="Three metres.",
        to=[PUBLIC],
        cc=[],
        published=datetime(2024, 5, 1, tzinfo=UTC),
        kind="offer",
    )
    create = build_activity("Create", "https://a.example/a/1", "https://a.example/c/x", note)
    create["@context"] = context

    for normalized in (normalize_activity(create), normalize_with_pyld(create)):
        embedded = parse_activity(normalized).object
        assert isinstance(embedded, dict)
        assert parse_note(normalize_activity(embedded)).kind == "offer"


def test_outbox_page_items_are_normalized_under_the_page_context() -> None:
    note = build_note(
        note_id="https://a.example/n/1",
        attributed_to="https://a.example/c/x",
        title="Ladder",
        description="",
        to=[PUBLIC],
        cc=[],
        published=datetime(2024, 5, 1, tzinfo=UTC),
        kind="need",
    )
    page = ordered_collection_page(
        "https://a.example/c/x/outbox?page=1",
        part_of="https://a.example/c/x/outbox",
        ordered_items=[note],
    )
    [item] = page["orderedItems"]

    assert parse_note(normalize_embedded(item, page)).kind == "need"
    assert parse_note(normalize_activity(item)).kind is None


def test_missing_context_is_read_as_activitystreams() -> None:
    document = {key: value for key, value in fixture("follow.json").items() if key != "@context"}

    assert takes_fast_path(document)
    assert read_fields(normalize_with_pyld(document)) == read_fields(document)


def redefined(context_entry: dict[str, Any], **changes: Any) -> dict[str, Any]:
    document = fixture("create_note.json")
    document["@context"] = [*MASTODON_NOTE_CONTEXT, context_entry]
    document.update(changes)
    return document


def test_context_that_renames_what_we_read_goes_through_pyld() -> None:
    document = redefined({"content": "http://example.org/ns#body"})

    assert not takes_fast_path(document)
    assert "content" not in normalize_activity(document)["object"]


def test_alias_for_a_read_term_is_resolved_by_pyld() -> None:
    document = redefined({"body": "as:content"})
    document["object"]["body"] = document["object"].pop("content")
    del document["object"]["contentMap"]

    assert not takes_fast_path(document)
    note = parse_note(normalize_activity(document)["object"])
    assert note.content.startswith("<p>We have a spare track pump")


def test_extension_terms_without_our_context_are_not_read_as_ours() -> None:
    document = {**fixture("follow.json"), "partnership": True}

    assert not takes_fast_path(document)
    assert parse_activity(normalize_activity(document)).partnership is False


@pytest.mark.parametrize(
    "change",
    [
        {"as:actor": "https://mastodon.example/users/alice"},
        {"@id": "https://mastodon.example/other"},
        {"object": {"@context": AS_CONTEXT_URL, "id": "https://a.example/x", "type": "Note"}},
        {"type": "as:Create"},
    ],
)
def test_documents_that_need_json_ld_to_read_go_through_pyld(change: dict[str, Any]) -> None:
    document = {**fixture("follow.json"), **change}

    assert not takes_fast_path(document)


def test_redefined_type_name_at_a_read_position_goes_through_pyld() -> None:
    document = redefined({"Note": "http://example.org/ns#Note"})

    assert not takes_fast_path(document)
    assert normalize_activity(document)["object"]["type"] == "http://example.org/ns#Note"


def test_unread_mastodon_types_do_not_leave_the_fast_path() -> None:
    document = fixture("create_note.json")

    assert document["object"]["tag"][1]["type"] == "Hashtag"
    assert takes_fast_path(document)


def test_language_context_is_left_to_pyld_and_still_read() -> None:
    document = redefined({"@language": "en"})

    assert not takes_fast_path(document)
    note = parse_note(normalize_activity(document)["object"])
    assert note.content == fixture("create_note.json")["object"]["content"]


def test_excessive_nesting_is_refused() -> None:
    nested: dict[str, Any] = {"id": "https://a.example/deep"}
    for _ in range(MAX_DEPTH + 2):
        nested = {"type": "Note", "object": nested}
    document = {**fixture("follow.json"), "object": nested}

    with pytest.raises(NormalizationError, match="nests deeper"):
        normalize_activity(document)


@pytest.mark.parametrize("document", [None, [], "Follow", 7])
def test_non_object_documents_are_refused(document: Any) -> None:
    with pytest.raises(NormalizationError, match="JSON object"):
        normalize_activity(document)


def test_compact_against_another_context() -> None:
    compacted = compact(
        fixture("follow.json"), {"@vocab": "https://www.w3.org/ns/activitystreams#"}
    )

    assert compacted["@type"] == "Follow"


# --- fast and slow agree on generated documents ------------------------------

CONTEXT_VARIANTS = [
    DEFAULT_CONTEXT,
    [AS_CONTEXT_URL, SECURITY_V1_URL, COMMONS_CONTEXT_URL],
    [AS_CONTEXT_URL, COMMONS_TERMS],
    [*MASTODON_NOTE_CONTEXT, COMMONS_TERMS],
    AS_CONTEXT_URL,
    MASTODON_NOTE_CONTEXT,
]
safe_text = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cc", "Cs")), max_size=40
)
optional_word = st.none() | st.text(alphabet="abcdefghij-", min_size=1, max_size=12)
urls = st.sampled_from(
    [
        "https://a.example/c/x/followers",
        "https://mastodon.example/users/alice",
        "http://127.0.0.1:8001/c/y",
    ]
)
audiences = st.lists(st.sampled_from([PUBLIC, "as:Public", "Public"]) | urls, max_size=3)


@st.composite
def generated_creates(draw: st.DrawFn) -> dict[str, Any]:
    location = draw(
        st.none()
        | st.builds(
            Place,
            st.floats(-90, 90, allow_nan=False),
            st.floats(-180, 180, allow_nan=False),
            st.none() | safe_text,
        )
    )
    note = build_note(
        note_id="https://a.example/listings/1",
        attributed_to="https://a.example/c/x",
        title=draw(safe_text),
        description=draw(safe_text),
        to=draw(audiences),
        cc=draw(audiences),
        published=datetime(2024, 5, 1, 12, 0, draw(st.integers(0, 59)), tzinfo=UTC),
        kind=draw(optional_word),
        category=draw(optional_word),
        status=draw(optional_word),
        visibility=draw(optional_word),
        location=location,
    )
    if draw(st.booleans()):
        note["to"] = note["to"][0] if note["to"] else PUBLIC
    document = build_activity(
        draw(st.sampled_from(["Create", "Update"])),
        "https://a.example/activities/1",
        "https://a.example/c/x",
        note,
        to=draw(audiences),
        partnership=draw(st.booleans()),
    )
    if draw(st.booleans()):
        document["actor"] = {"id": document["actor"], "type": "Group"}
    document["@context"] = copy.deepcopy(draw(st.sampled_from(CONTEXT_VARIANTS)))
    return document


@settings(max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(generated_creates())
def test_fast_and_pyld_paths_agree_on_every_field_we_read(document: dict[str, Any]) -> None:
    if document["@context"] in CONTEXT_VARIANTS[:4]:
        assert takes_fast_path(document)
    assert read_fields(normalize_activity(document)) == read_fields(normalize_with_pyld(document))


read_keys = st.sampled_from([*sorted(READ_TERMS), "sensitive", "atomUri", "tag"])
odd_values = (
    st.none()
    | st.booleans()
    | st.integers(-5, 5)
    | st.floats(-100, 100, allow_nan=False)
    | st.sampled_from(
        ["https://a.example/x", "Note", "Public", "as:Public", "2024-01-01T00:00:00Z"]
    )
    | st.lists(st.sampled_from(["https://a.example/y", "Public"]) | st.none(), max_size=2)
    | st.fixed_dictionaries({"id": st.just("https://a.example/z")})
    | st.fixed_dictionaries({"en": st.just("<p>hi</p>")})
)


@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from([*ACTIVITY_FIXTURES, "actor.json"]),
    st.dictionaries(read_keys, odd_values, max_size=3),
    st.dictionaries(read_keys, odd_values, max_size=3),
    st.none() | st.sampled_from(CONTEXT_VARIANTS),
)
def test_both_paths_read_odd_shapes_alike(
    name: str, top: dict[str, Any], inner: dict[str, Any], context: Any
) -> None:
    """Whatever pyld accepts, both paths read the same, or both refuse."""
    document = fixture(name)
    document.update(top)
    if isinstance(document.get("object"), dict):
        document["object"].update(inner)
    if context is not None:
        document["@context"] = copy.deepcopy(context)
    try:
        slow = normalize_with_pyld(document)
    except NormalizationError:
        return
    assert outcome(normalize_activity(document)) == outcome(slow)


@settings(max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(OTHER_SERVER_FIXTURES),
    st.dictionaries(read_keys, odd_values, max_size=3),
    st.dictionaries(read_keys, odd_values, max_size=3),
)
def test_both_paths_read_odd_shapes_of_other_servers_alike(
    path: str, top: dict[str, Any], inner: dict[str, Any]
) -> None:
    """Other servers' contexts, with odd values where we read: same reading, or both refuse."""
    document = server_fixture(path)
    document.update(top)
    if isinstance(document.get("object"), dict):
        document["object"].update(inner)
    try:
        slow = normalize_with_pyld(document)
    except NormalizationError:
        return
    assert outcome(normalize_activity(document)) == outcome(slow)


def outcome(document: dict[str, Any]) -> Any:
    try:
        return read_fields(document)
    except VocabError as error:
        return type(error)
