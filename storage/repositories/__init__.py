"""Repositories: the queries the application needs, one class per aggregate."""

from storage.repositories.actors import BlockRepository, RemoteActorRepository
from storage.repositories.communities import CommunityRepository
from storage.repositories.deliveries import DeliveryRepository
from storage.repositories.inbox import InboxRepository
from storage.repositories.listings import ListingFilters, ListingRepository
from storage.repositories.members import MemberRepository, TokenRepository

__all__ = [
    "BlockRepository",
    "CommunityRepository",
    "DeliveryRepository",
    "InboxRepository",
    "ListingFilters",
    "ListingRepository",
    "MemberRepository",
    "RemoteActorRepository",
    "TokenRepository",
]
