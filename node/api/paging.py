"""The API's paging contract: `limit` and an opaque `cursor` in, `next` out.

A cursor is the position (sort value, id) of the last item served, encoded
so that clients treat it as a token. A cursor that does not decode, or that
names a position of the wrong shape, is a 400.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TypeVar

import orjson
from pydantic import Field

from node.api.schemas import StrictModel
from node.errors import BadRequest
from storage.paging import Position

T = TypeVar("T")

DEFAULT_LIMIT = 50
MAX_LIMIT = 200


class PageQuery(StrictModel):
    limit: int = Field(default=DEFAULT_LIMIT, ge=1, le=MAX_LIMIT)
    cursor: str | None = Field(default=None, max_length=512)


def encode_cursor(position: Position) -> str:
    sort = position.sort
    tagged = ["t", sort.isoformat()] if isinstance(sort, datetime) else ["v", sort]
    raw = orjson.dumps([*tagged, position.id])
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_cursor(cursor: str | None) -> Position | None:
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        tag, sort, row_id = orjson.loads(raw)
        if tag == "t":
            sort = datetime.fromisoformat(sort)
            if sort.tzinfo is None:
                raise ValueError("naive time")
        elif tag != "v" or not isinstance(sort, str | int | float):
            raise ValueError("bad sort value")
        if not isinstance(row_id, str | int) or isinstance(row_id, bool):
            raise ValueError("bad id")
    except (binascii.Error, orjson.JSONDecodeError, ValueError, TypeError) as exc:
        raise BadRequest("cursor is not one this server gave out") from exc
    return Position(sort, row_id)


def page_of(
    rows: Sequence[T], limit: int, position_of: Callable[[T], Position]
) -> tuple[list[T], str | None]:
    """The page's items and the `next` cursor (None on the last page).

    `rows` is what `storage.paging.page_after` fetched: up to `limit + 1` rows.
    """
    items = list(rows[:limit])
    more = len(rows) > limit
    return items, encode_cursor(position_of(items[-1])) if more and items else None
