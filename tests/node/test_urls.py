"""The node's URL scheme: what it mints parses back, and which inbox a message goes to."""

from __future__ import annotations

from node.domain import urls

BASE = "https://commons.example"


def test_the_urls_of_a_community_hang_off_its_actor_id() -> None:
    actor = urls.actor_id(BASE, "tools")
    assert actor == "https://commons.example/c/tools"
    assert urls.actor_inbox(actor) == f"{actor}/inbox"
    assert urls.outbox(actor) == f"{actor}/outbox"
    assert urls.followers(actor) == f"{actor}/followers"
    assert urls.key_id(actor) == f"{actor}#main-key"
    assert urls.partner_collection(actor) == f"{actor}/partner-listings"
    assert urls.listing(actor, "abc") == f"{actor}/listings/abc"
    assert urls.shared_inbox(BASE) == "https://commons.example/inbox"
    first, second = urls.new_activity_id(actor), urls.new_activity_id(actor)
    assert first.startswith(f"{actor}/activities/") and first != second


def test_only_an_actor_id_we_could_have_minted_parses_back_to_a_slug() -> None:
    assert urls.slug_of_actor(BASE, urls.actor_id(BASE, "tools")) == "tools"
    for other in [
        "https://commons.example/c/tools/inbox",
        "https://commons.example/c/tools#main-key",
        "https://commons.example/c/",
        "https://elsewhere.example/c/tools",
        "https://commons.example.evil/c/tools",
    ]:
        assert urls.slug_of_actor(BASE, other) is None, other


def test_a_fan_out_goes_to_the_shared_inbox_and_a_message_for_one_actor_to_its_own() -> None:
    own, shared = "https://x.example/users/a/inbox", "https://x.example/inbox"
    assert urls.delivery_inbox(own, shared, fan_out=True) == shared
    assert urls.delivery_inbox(own, shared, fan_out=False) == own
    assert urls.delivery_inbox(own, None, fan_out=True) == own
    assert urls.delivery_inbox(None, shared, fan_out=False) == shared
    assert urls.delivery_inbox(None, None, fan_out=False) is None
