"""The API's paging contract: `limit` and an opaque `cursor` in, `next` out.

A cursor is the position (sort value, id) of the last item served, encoded
so that clients treat it as a token. A cursor that does not decode, or that
names a position of the wrong shape, is a 400.
"""

from __future__ import annotations

import base64
import binascii
from datetime import datetime

import orjson
from pydantic import Field

from node.api.schemas import StrictModel
from node.errors import BadRequest
from storage.paging import Position

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
