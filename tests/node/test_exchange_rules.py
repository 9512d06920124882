"""The exchange rules: a status heard twice or out of order ends the same on both sides."""

from __future__ import annotations

from itertools import permutations

from federation.exchanges import Agreement, build_agreement, parse_agreement
from node.domain.exchanges import Action, Standing, merged, refusal
from storage.states import ExchangeStatus

S = ExchangeStatus


def test_any_order_and_any_repetition_of_the_same_news_ends_in_one_status() -> None:
    news = [S.ACCEPTED, S.COMPLETED, S.ACCEPTED, S.COMPLETED]
    ends = set()
    for order in permutations(news):
        status = S.REQUESTED
        for heard in order:
            status = merged(status, heard)
        ends.add(status)
    assert ends == {S.COMPLETED}


def test_a_completion_before_its_acceptance_is_not_undone_by_it() -> None:
    assert merged(merged(S.REQUESTED, S.COMPLETED), S.ACCEPTED) == S.COMPLETED


def test_concurrent_ends_settle_the_same_way_on_both_sides() -> None:
    assert merged(S.CANCELLED, S.COMPLETED) == merged(S.COMPLETED, S.CANCELLED) == S.COMPLETED
    assert merged(S.DECLINED, S.CANCELLED) == merged(S.CANCELLED, S.DECLINED) == S.CANCELLED


def test_wrong_party_is_403_and_wrong_state_is_409() -> None:
    requester = Standing(is_receiver=True)
    author = Standing(is_provider=True, answers_for_listing=True)
    assert refusal(Action.ACCEPT, S.REQUESTED, requester) == (
        403,
        "you may not accept this exchange",
    )
    assert refusal(Action.ACCEPT, S.REQUESTED, author) is None
    assert refusal(Action.COMPLETE, S.REQUESTED, author)[0] == 409  # type: ignore[index]
    assert refusal(Action.CANCEL, S.COMPLETED, requester)[0] == 409  # type: ignore[index]
    assert refusal(Action.CANCEL, S.ACCEPTED, Standing()) is not None


def test_an_agreement_reads_back_as_it_was_built() -> None:
    agreement = Agreement(
        id="https://a.example/c/garden/exchanges/1",
        listing="https://b.example/c/tools/listings/9",
        provider="https://b.example/c/tools",
        receiver="https://a.example/c/garden",
        provider_member=None,
        receiver_member="ada@a.example",
        provider_name=None,
        receiver_name="Ada",
        title="Long ladder",
        note=None,
        quantity=1,
        hours=2.5,
        status="completed",
    )
    assert parse_agreement(build_agreement(agreement)) == agreement
