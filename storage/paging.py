"""Keyset paging: a page starts strictly after the last row the previous page ended on.

Offsets shift when rows are added while someone pages (an item is seen twice
or skipped); a position made of the sort value and the row id does not. Every
list ordered for paging ends its ORDER BY with the id, so positions are total.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVarTuple

import orjson
from sqlalchemy import ColumnElement, Select, and_, or_
from sqlalchemy.orm import QueryableAttribute

_Ts = TypeVarTuple("_Ts")

SortValue = datetime | str | int | float
Column = ColumnElement[Any] | QueryableAttribute[Any]


@dataclass(frozen=True)
class Position:
    """Where the previous page ended: its last row's sort value and id."""

    sort: SortValue
    id: str | int


def page_after(
    query: Select[*_Ts],
    sort_column: Column,
    id_column: Column,
    position: Position | None,
    limit: int,
    *,
    descending: bool = True,
) -> Select[*_Ts]:
    """`query` ordered by (sort, id), starting after `position`, one row more than `limit`.

    The extra row tells the caller whether there is a next page without a count.
    """
    if position is not None:
        query = query.where(after(sort_column, id_column, position, descending=descending))
    order = (sort_column.desc(), id_column.desc()) if descending else (sort_column, id_column)
    return query.order_by(*order).limit(limit + 1)


def after(
    sort_column: Column, id_column: Column, position: Position, *, descending: bool = True
) -> ColumnElement[bool]:
    """Strictly after `position` in (sort, id) order.

    The plain bound on the sort column comes first, so an index on it serves
    the range instead of reading from the top past every row already shown.
    """
    if descending:
        return and_(
            sort_column <= position.sort,
            or_(sort_column < position.sort, id_column < position.id),
        )
    return and_(
        sort_column >= position.sort,
        or_(sort_column > position.sort, id_column > position.id),
    )


def position_token(position: Position) -> str:
    """`position` as an opaque, URL-safe token (API cursors, collection page links)."""
    sort = position.sort
    tagged = ["t", sort.isoformat()] if isinstance(sort, datetime) else ["v", sort]
    raw = orjson.dumps([*tagged, position.id])
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def position_from_token(token: str) -> Position:
    """The position a `position_token` names; `ValueError` for anything else."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
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
        raise ValueError("not a position this server gave out") from exc
    return Position(sort, row_id)
