"""The API's paging contract: `limit` and an opaque `cursor` in, `next` out.

A cursor is the position (sort value, id) of the last item served, encoded
so that clients treat it as a token. A cursor that does not decode, or that
names a position of the wrong shape, is a 400.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from pydantic import Field

from node.api.schemas import StrictModel
from node.errors import BadRequest
from storage.paging import Position, position_from_token, position_token

T = TypeVar("T")

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


class PageQuery(StrictModel):
    limit: int = Field(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)
    cursor: str | None = Field(default=None, max_length=512)


def encode_cursor(position: Position) -> str:
    return position_token(position)


def decode_cursor(cursor: str | None) -> Position | None:
    if cursor is None:
        return None
    try:
        return position_from_token(cursor)
    except ValueError as exc:
        raise BadRequest("cursor is not one this server gave out") from exc


def page_of(
    rows: Sequence[T], limit: int, position_of: Callable[[T], Position]
) -> tuple[list[T], str | None]:
    """The page's items and the `next` cursor (None on the last page).

    `rows` is what `storage.paging.page_after` fetched: up to `limit + 1` rows.
    """
    items = list(rows[:limit])
    more = len(rows) > limit
    return items, encode_cursor(position_of(items[-1])) if more and items else None
