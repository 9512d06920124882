"""Domain blocks: which hosts a block covers, however either side is written.

A block is written down by `normalize_domain` (what `BlockRepository.add`
stores) and matched by `host_is_blocked` (the in-memory form the inbox and
the delivery queue use) and `BlockRepository.is_blocked` (the query); all
three must agree on ports, subdomains, case, trailing dots, IP literals and
internationalised names, or a blocked server gets through by spelling its
name differently.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.engine import create_engine, create_session_factory
from storage.models import BlockedDomain
from storage.repositories import BlockRepository
from storage.repositories.actors import host_is_blocked, normalize_domain

Sessions = async_sessionmaker[AsyncSession]


def blocked_by(entry: str, host: str) -> bool:
    return host_is_blocked(frozenset({normalize_domain(entry)}), host)


COVERED = [
    # case and stray spelling
    ("example.com", "example.com"),
    ("Example.COM", "example.com"),
    ("example.com", "EXAMPLE.com"),
    (" example.com ", "example.com"),
    ("example.com.", "example.com"),
    ("example.com", "example.com."),
    # subdomains
    ("example.com", "social.example.com"),
    ("example.com", "a.b.example.com"),
    ("example.com", "Social.Example.Com."),
    # ports
    ("example.com", "example.com:8443"),
    ("example.com", "social.example.com:8443"),
    ("example.com:8443", "example.com:8443"),
    ("example.com:443", "example.com"),
    ("example.com:80", "example.com"),
    ("example.com:443", "example.com:443"),
    # IP literals
    ("192.0.2.1", "192.0.2.1"),
    ("192.0.2.1", "192.0.2.1:8080"),
    ("2001:db8::1", "[2001:db8::1]"),
    ("[2001:db8::1]", "[2001:db8::1]:8443"),
    ("[2001:DB8::1]", "[2001:db8::1]"),
    ("2001:db8::1", "[2001:db8:0:0::1]"),
    ("[2001:0db8:0000::0001]", "[2001:db8::1]:8443"),
    # internationalised names: URLs carry them as punycode or as Unicode
    ("bücher.example", "xn--bcher-kva.example"),
    ("xn--bcher-kva.example", "bücher.example"),
    ("BÜCHER.example", "xn--bcher-kva.example"),
    ("XN--BCHER-KVA.EXAMPLE", "xn--bcher-kva.example"),
    ("bücher.example", "shop.xn--bcher-kva.example:8443"),
    ("bücher.example.", "Bücher.Example"),
]

NOT_COVERED = [
    ("social.example.com", "example.com"),
    ("social.example.com", "other.example.com"),
    ("example.com", "notexample.com"),
    ("example.com", "example.com.evil.example"),
    ("example.com", "example.co"),
    ("example.com:8443", "example.com"),
    ("example.com:8443", "example.com:9443"),
    ("example.com:443", "example.com:8443"),
    ("0.2.1", "192.0.2.1"),
    ("2.1", "192.0.2.1"),
    ("192.0.2.1:8080", "192.0.2.1"),
    ("192.0.2.1", "192.0.2.10"),
    ("[2001:db8::1]:8443", "[2001:db8::1]"),
    ("2001:db8::1", "[2001:db8::2]"),
    ("bücher.example", "bucher.example"),
    ("xn--bcher-kva.example", "xn--bcher-kva.example.org"),
]


@pytest.mark.parametrize(("entry", "host"), COVERED)
def test_block_covers_host(entry: str, host: str) -> None:
    assert blocked_by(entry, host)


@pytest.mark.parametrize(("entry", "host"), NOT_COVERED)
def test_block_does_not_cover_host(entry: str, host: str) -> None:
    assert not blocked_by(entry, host)


@pytest.mark.parametrize(
    ("written", "stored"),
    [
        ("Example.COM.", "example.com"),
        ("example.com:8443", "example.com:8443"),
        ("2001:DB8:0::1", "[2001:db8::1]"),
        ("[2001:db8::1]:8443", "[2001:db8::1]:8443"),
        ("bücher.example", "xn--bcher-kva.example"),
    ],
)
def test_a_block_is_stored_in_one_spelling(written: str, stored: str) -> None:
    assert normalize_domain(written) == stored


@pytest.mark.parametrize("entry", sorted({entry for entry, _ in COVERED + NOT_COVERED}))
def test_normalising_a_stored_block_again_changes_nothing(entry: str) -> None:
    assert normalize_domain(normalize_domain(entry)) == normalize_domain(entry)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=40))
def test_any_text_is_refused_or_stored_in_a_spelling_that_stays_put(text: str) -> None:
    """The API normalises a block, the repository normalises it again: never a 500."""
    try:
        stored = normalize_domain(text)
    except ValueError:
        return
    assert normalize_domain(stored) == stored


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        ".",
        "\xa0",
        "ex\xa0ample.com",
        "exa mple.com",
        "example.com/path",
        "alice@example.com",
        "a\x00b",
    ],
)
def test_what_is_not_a_domain_cannot_be_blocked(text: str) -> None:
    with pytest.raises(ValueError):
        normalize_domain(text)


@pytest.mark.parametrize("host", ["", "not a host", "[::1", "exa\x00mple.com", "ex/ample.com"])
def test_an_unreadable_host_is_not_taken_for_a_blocked_one(host: str) -> None:
    assert not host_is_blocked(frozenset({"example.com"}), host)


@pytest.mark.parametrize(
    "host", ["xn--zz.example.com", "bad..label.example.com", "€\ufffd.example.com"]
)
def test_a_subdomain_that_is_not_valid_idna_is_still_covered(host: str) -> None:
    assert blocked_by("example.com", host)


def test_an_empty_block_list_blocks_nothing() -> None:
    assert not host_is_blocked(frozenset(), "example.com")


# --- the repository, on SQLite and PostgreSQL --------------------------------


@pytest.fixture
async def sessions(database_url: str) -> AsyncIterator[Sessions]:
    engine = create_engine(database_url)
    try:
        yield create_session_factory(engine)
    finally:
        await engine.dispose()


async def block(sessions: Sessions, *domains: str) -> list[str]:
    async with sessions() as session, session.begin():
        repo = BlockRepository(session)
        return [await repo.add(domain) for domain in domains]


async def is_blocked(sessions: Sessions, host: str) -> bool:
    async with sessions() as session:
        return await BlockRepository(session).is_blocked(host)


async def test_repository_stores_each_block_once_in_its_normal_spelling(
    sessions: Sessions,
) -> None:
    stored = await block(sessions, "Example.COM.", "example.com", "bücher.example")

    assert stored == ["example.com", "example.com", "xn--bcher-kva.example"]
    async with sessions() as session:
        assert [b.domain for b in await BlockRepository(session).list()] == [
            "example.com",
            "xn--bcher-kva.example",
        ]


async def test_query_and_in_memory_matching_agree(sessions: Sessions) -> None:
    entries = sorted({entry for entry, _ in COVERED + NOT_COVERED})
    for entry in entries:
        await block(sessions, entry)
        hosts = [host for e, host in COVERED + NOT_COVERED if e == entry]
        async with sessions() as session:
            domains = await BlockRepository(session).domains()
        for host in hosts:
            assert await is_blocked(sessions, host) == host_is_blocked(domains, host), (
                entry,
                host,
            )
        async with sessions() as session, session.begin():
            assert await BlockRepository(session).remove(entry)


@pytest.mark.parametrize(("entry", "host"), [COVERED[7], COVERED[13], COVERED[22], COVERED[20]])
async def test_repository_blocks_what_the_rule_covers(
    sessions: Sessions, entry: str, host: str
) -> None:
    await block(sessions, entry)

    assert await is_blocked(sessions, host)
    assert not await is_blocked(sessions, "unrelated.example")


async def test_a_block_stored_in_unicode_before_names_were_kept_in_ascii_still_applies(
    sessions: Sessions,
) -> None:
    async with sessions() as session, session.begin():
        session.add(BlockedDomain(domain="bücher.example"))

    for host in ("bücher.example", "xn--bcher-kva.example", "shop.xn--bcher-kva.example:8443"):
        assert await is_blocked(sessions, host), host
        async with sessions() as session:
            assert host_is_blocked(await BlockRepository(session).domains(), host), host


async def test_unblocking_accepts_any_spelling_of_the_block(sessions: Sessions) -> None:
    await block(sessions, "example.com", "bücher.example")

    async with sessions() as session, session.begin():
        repo = BlockRepository(session)
        assert await repo.remove("EXAMPLE.com.")
        assert await repo.remove("xn--bcher-kva.example")
        assert not await repo.remove("example.com")
    assert not await is_blocked(sessions, "social.example.com")
    assert not await is_blocked(sessions, "xn--bcher-kva.example")
