"""The categories a community's forms offer: the defaults and what its stewards add."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from node.domain.categories import DEFAULT_CATEGORIES, Category, valid_slug
from node.errors import Conflict, Forbidden, ValidationFailed
from storage.models import Community, CommunityCategory, Member

MAX_LABEL = 100


async def list_categories(session: AsyncSession, community: Community) -> list[Category]:
    """The defaults in their order, then the community's own by label."""
    result = await session.execute(
        select(CommunityCategory)
        .where(CommunityCategory.community_id == community.id)
        .order_by(CommunityCategory.label, CommunityCategory.slug)
    )
    added = [Category(row.slug, row.label) for row in result.scalars()]
    return [*DEFAULT_CATEGORIES, *added]


async def add_category(session: AsyncSession, steward: Member, slug: str, label: str) -> Category:
    """Add a category to the steward's community: 422 for a bad slug, 409 if it exists."""
    if not steward.is_steward:
        raise Forbidden("stewards only")
    slug, label = slug.strip().lower(), " ".join(label.split())
    if not valid_slug(slug):
        raise ValidationFailed(
            "slug must be lower-case letters, digits and inner hyphens, at most 64 characters"
        )
    if not label or len(label) > MAX_LABEL:
        raise ValidationFailed(f"label must have 1 to {MAX_LABEL} characters")
    existing = {category.slug for category in await list_categories(session, steward.community)}
    if slug in existing:
        raise Conflict(f"category {slug!r} already exists")
    session.add(CommunityCategory(community_id=steward.community_id, slug=slug, label=label))
    try:
        await session.flush()
    except IntegrityError as exc:  # added at the same moment by another steward
        await session.rollback()
        raise Conflict(f"category {slug!r} already exists") from exc
    return Category(slug, label)
