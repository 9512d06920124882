"""WebFinger and NodeInfo documents, and reading the handles people type."""

from __future__ import annotations

import pytest

from federation.discovery_docs import (
    NODEINFO_SCHEMA,
    nodeinfo_document,
    nodeinfo_index,
    parse_acct,
    webfinger_document,
)
from federation.vocab import VocabError

ACTOR = "https://commons.example/c/riverside"
PROFILE = "https://commons.example/communities/riverside"


@pytest.mark.parametrize(
    ("resource", "expected"),
    [
        ("acct:riverside@commons.example", ("riverside", "commons.example")),
        ("riverside@commons.example", ("riverside", "commons.example")),
        ("@riverside@commons.example", ("riverside", "commons.example")),
        ("  ACCT:riverside@Commons.Example  ", ("riverside", "commons.example")),
        ("riverside@127.0.0.1:8001", ("riverside", "127.0.0.1:8001")),
        (
            "acct:tool-library_2@node.commons.example:8443",
            ("tool-library_2", "node.commons.example:8443"),
        ),
        ("riverside@[::1]:8001", ("riverside", "[::1]:8001")),
    ],
)
def test_handles_are_read_in_every_form_people_type(
    resource: str, expected: tuple[str, str]
) -> None:
    assert parse_acct(resource) == expected


@pytest.mark.parametrize(
    "resource",
    [
        "",
        "riverside",
        "@riverside",
        "riverside@",
        "@commons.example",
        "a@b@commons.example",
        "river side@commons.example",
        "riverside@commons.example:0",
        "riverside@commons.example:70000",
        "riverside@-commons.example",
        "riverside@commons..example",
        "riverside@commons.example/path",
        "https://commons.example/c/riverside",
    ],
)
def test_anything_else_is_not_a_handle(resource: str) -> None:
    with pytest.raises(VocabError, match="not an account handle"):
        parse_acct(resource)


def test_webfinger_points_self_at_the_activitypub_actor() -> None:
    document = webfinger_document("riverside@Commons.Example", ACTOR, PROFILE)

    assert document["subject"] == "acct:riverside@commons.example"
    assert document["aliases"] == [PROFILE, ACTOR]
    [self_link] = [link for link in document["links"] if link["rel"] == "self"]
    assert self_link == {"rel": "self", "type": "application/activity+json", "href": ACTOR}
    [page] = [link for link in document["links"] if link["type"] == "text/html"]
    assert page["href"] == PROFILE


def test_nodeinfo_index_links_the_2_1_document() -> None:
    assert nodeinfo_index("http://127.0.0.1:8001/") == {
        "links": [{"rel": NODEINFO_SCHEMA, "href": "http://127.0.0.1:8001/nodeinfo/2.1"}]
    }


def test_nodeinfo_lists_protocol_usage_and_hosted_communities() -> None:
    communities = [{"handle": "riverside@commons.example", "actor": ACTOR, "name": "Riverside"}]
    document = nodeinfo_document("commons-node", "0.1.0", 42, 310, communities, False)

    assert document["version"] == "2.1"
    assert document["software"] == {"name": "commons-node", "version": "0.1.0"}
    assert document["protocols"] == ["activitypub"]
    assert document["usage"] == {"users": {"total": 42}, "localPosts": 310}
    assert document["openRegistrations"] is False
    assert document["metadata"]["communities"] == communities
    assert document["metadata"]["communities"][0] is not communities[0]


@pytest.mark.parametrize("name", ["Commons Node", "commons_node", ""])
def test_nodeinfo_refuses_a_software_name_outside_the_schema(name: str) -> None:
    with pytest.raises(ValueError, match="software name"):
        nodeinfo_document(name, "0.1.0", 1, 1, [], True)


def test_nodeinfo_refuses_negative_usage() -> None:
    with pytest.raises(ValueError, match="negative"):
        nodeinfo_document("commons-node", "0.1.0", -1, 0, [], True)
