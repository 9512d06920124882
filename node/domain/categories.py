"""Listing categories: the short slugs listings carry, and the list a community offers.

A category federates as its slug. Each community's forms offer the defaults
below plus what its stewards add; a listing may still carry any slug, since
other communities have lists of their own.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$")


@dataclass(frozen=True)
class Category:
    slug: str
    label: str


DEFAULT_CATEGORIES: tuple[Category, ...] = (
    Category("tools", "Tools"),
    Category("kitchen", "Kitchen"),
    Category("garden", "Garden"),
    Category("bikes", "Bikes"),
    Category("electronics", "Electronics"),
    Category("books", "Books"),
    Category("clothing", "Clothing"),
    Category("childcare", "Childcare"),
    Category("transport", "Transport"),
    Category("skills", "Skills and time"),
    Category("food", "Food"),
    Category("housing", "Housing"),
    Category("repairs", "Repairs"),
    Category("other", "Other"),
)


def valid_slug(slug: str) -> bool:
    """Lower-case letters, digits and inner hyphens, at most 64 characters."""
    return bool(SLUG.fullmatch(slug))
