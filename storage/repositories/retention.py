"""Pruning finished federation work, so the queue and the log do not grow forever.

Dropping old inbox entries does not reopen replays: a signed request older than
the allowed clock skew (minutes) is refused before dedupe is consulted.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Delivery, InboxEntry
from storage.states import DeliveryState, InboxState

FINISHED_DELIVERIES = (DeliveryState.DELIVERED, DeliveryState.FAILED, DeliveryState.CANCELLED)
FINISHED_ENTRIES = (InboxState.HANDLED, InboxState.IGNORED, InboxState.FAILED)


async def prune_finished(session: AsyncSession, older_than: datetime) -> tuple[int, int]:
    """Delete delivered/failed/cancelled deliveries and handled/ignored/failed inbox entries."""
    deliveries = await session.execute(
        delete(Delivery).where(
            Delivery.state.in_(
                (DeliveryState.DELIVERED, DeliveryState.FAILED, DeliveryState.CANCELLED)
            ),
            Delivery.created_at < older_than,
        )
    )
    entries = await session.execute(
        delete(InboxEntry).where(
            InboxEntry.state.in_(FINISHED_ENTRIES),
            InboxEntry.received_at < older_than,
        )
    )
    return int(getattr(deliveries, "rowcount", 0)), int(getattr(entries, "rowcount", 0))
