"""Repositories: the queries the application needs, one class per aggregate."""

from storage.repositories.communities import CommunityRepository
from storage.repositories.listings import ListingFilters, ListingRepository
from storage.repositories.members import MemberRepository, TokenRepository

__all__ = [
    "CommunityRepository",
    "ListingFilters",
    "ListingRepository",
    "MemberRepository",
    "TokenRepository",
]
