"""A new node's first state: its database at head, its community, its first people.

`commons-node init`, the demo and the test suites all start a node this way,
so a node made for a test is made exactly as an operator's is.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from node.config import NodeConfig
from node.services.accounts import create_member
from node.services.communities import create_local_community
from storage.engine import create_engine, create_session_factory
from storage.migrate import upgrade_to_head_async
from storage.models import Community


@dataclass(frozen=True)
class Person:
    username: str
    password: str
    role: str = "member"
    operator: bool = False


async def provision_node(
    config: NodeConfig,
    *,
    description: str = "",
    location: tuple[float, float] | None = None,
    people: Sequence[Person] = (),
    migrate: bool = True,
) -> Community:
    """Create the node's own community (`config.slug`) and its people, in one transaction.

    `migrate=False` is for a database already at head (a copied test template).
    """
    if migrate:
        await upgrade_to_head_async(config.database_url)
    engine = create_engine(config.database_url)
    try:
        async with create_session_factory(engine)() as session:
            community = await create_local_community(
                session,
                config,
                slug=config.slug,
                name=config.name,
                description=description,
                location=location,
            )
            for person in people:
                await create_member(
                    session,
                    community,
                    person.username,
                    person.password,
                    person.role,
                    is_operator=person.operator,
                )
            await session.commit()
            return community
    finally:
        await engine.dispose()
