"""Exchanges on the wire, shaped after FEP-0837 (Federated Marketplace).

A listing is a proposal; a member asking for it is an `Agreement` the
requester's community offers (`Offer`) to the listing's community. The
agreement `stipulates` one `Commitment` that `satisfies` the listing's
primary intent (`{listing}#primary`), between a `provider` and a
`receiver` community, with the members on each side named by handle
(`providerMember`, `receiverMember`: `user@host`, since members are not
actors here). How much is a `resourceQuantity` in units of `one`; how long
an `effortQuantity` in hours. The listing's community answers with
`Accept` (its `result` the agreement, now naming its member) or `Reject`
of the Offer; either side ends it with an `Update` of the agreement whose
`status` is `completed` or `cancelled`. A message of the exchange thread is
a `Note` whose `context` is the agreement.

Builders and parsers only: which exchange a document belongs to, and
whether its sender may speak for it, is decided by the node.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from federation.builders import _timestamp
from federation.contexts import default_context
from federation.html_text import plain_text_to_html
from federation.vocab import (
    VocabError,
    _datetime,
    _first,
    _literal,
    _reference,
    _string,
    _type,
    _url,
)

PRIMARY = "#primary"
UNIT_ONE = "one"
UNIT_HOUR = "hour"
STATUSES = frozenset({"requested", "accepted", "declined", "cancelled", "completed"})
MAX_QUANTITY = 1_000_000
MAX_HOURS = 100_000.0


@dataclass(frozen=True, slots=True)
class Agreement:
    """An exchange as both nodes agree on it."""

    id: str
    listing: str
    provider: str
    receiver: str
    provider_member: str | None
    receiver_member: str | None
    provider_name: str | None
    receiver_name: str | None
    title: str | None
    note: str | None
    quantity: int | None
    hours: float | None
    status: str | None


@dataclass(frozen=True, slots=True)
class ThreadMessage:
    """One message of an exchange's thread."""

    id: str
    agreement: str
    attributed_to: str
    member: str | None
    member_name: str | None
    content: str
    published: datetime | None


def _quantity(unit: str, value: float | int) -> dict[str, str]:
    return {"hasUnit": unit, "hasNumericalValue": str(value)}


def build_agreement(agreement: Agreement) -> dict[str, Any]:
    commitment: dict[str, Any] = {
        "id": f"{agreement.id}{PRIMARY}",
        "type": "Commitment",
        "satisfies": f"{agreement.listing}{PRIMARY}",
        "provider": agreement.provider,
        "receiver": agreement.receiver,
    }
    if agreement.quantity is not None:
        commitment["resourceQuantity"] = _quantity(UNIT_ONE, agreement.quantity)
    if agreement.hours is not None:
        commitment["effortQuantity"] = _quantity(UNIT_HOUR, agreement.hours)
    document: dict[str, Any] = {
        "@context": default_context(),
        "id": agreement.id,
        "type": "Agreement",
        "stipulates": commitment,
    }
    optional = {
        "providerMember": agreement.provider_member,
        "receiverMember": agreement.receiver_member,
        "providerName": agreement.provider_name,
        "receiverName": agreement.receiver_name,
        "name": agreement.title,
        "content": plain_text_to_html(agreement.note) if agreement.note else None,
        "status": agreement.status,
    }
    document.update({key: value for key, value in optional.items() if value is not None})
    return document


def _amount(value: Any, unit: str, what: str) -> float | None:
    value = _first(value)
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise VocabError(f"{what} must be an object with hasUnit and hasNumericalValue")
    if _literal(value.get("hasUnit")) != unit:
        raise VocabError(f"{what} must be counted in {unit!r}")
    raw = _literal(value.get("hasNumericalValue"))
    if isinstance(raw, bool) or not isinstance(raw, int | float | str):
        raise VocabError(f"{what}.hasNumericalValue must be a number")
    try:
        number = float(raw)
    except ValueError:
        raise VocabError(f"{what}.hasNumericalValue is not a number: {str(raw)[:40]!r}") from None
    if not 0 < number <= (MAX_HOURS if unit == UNIT_HOUR else MAX_QUANTITY):
        raise VocabError(f"{what} is out of range: {number}")
    return number


def _handle(doc: Mapping[str, Any], key: str) -> str | None:
    value = _string(doc, key, "agreement")
    if value is None:
        return None
    user, _, host = value.partition("@")
    if not user or not host or len(value) > 320 or any(c.isspace() for c in value):
        raise VocabError(f"agreement.{key} must be user@host")
    return value


def parse_agreement(doc: Any) -> Agreement:
    if not isinstance(doc, Mapping):
        raise VocabError("an agreement must be a JSON object")
    if _type(doc, "agreement") != "Agreement":
        raise VocabError("expected an Agreement")
    commitment = _first(doc.get("stipulates"))
    if not isinstance(commitment, Mapping):
        raise VocabError("agreement.stipulates must be one Commitment")
    satisfies = _reference(commitment.get("satisfies"), "agreement.stipulates.satisfies")
    if satisfies is None or not satisfies.endswith(PRIMARY):
        raise VocabError("the commitment must satisfy a listing's #primary intent")
    provider = _reference(commitment.get("provider"), "agreement.stipulates.provider")
    receiver = _reference(commitment.get("receiver"), "agreement.stipulates.receiver")
    if provider is None or receiver is None:
        raise VocabError("the commitment must name a provider and a receiver")
    quantity = _amount(commitment.get("resourceQuantity"), UNIT_ONE, "resourceQuantity")
    if quantity is not None and quantity != int(quantity):
        raise VocabError("resourceQuantity must be a whole number")
    status = _string(doc, "status", "agreement")
    if status is not None and status not in STATUSES:
        raise VocabError(f"agreement.status {status[:40]!r} is not an exchange status")
    return Agreement(
        id=_url(doc.get("id"), "agreement.id"),
        listing=satisfies[: -len(PRIMARY)],
        provider=provider,
        receiver=receiver,
        provider_member=_handle(doc, "providerMember"),
        receiver_member=_handle(doc, "receiverMember"),
        provider_name=_string(doc, "providerName", "agreement"),
        receiver_name=_string(doc, "receiverName", "agreement"),
        title=_string(doc, "name", "agreement"),
        note=_string(doc, "content", "agreement"),
        quantity=int(quantity) if quantity is not None else None,
        hours=_amount(commitment.get("effortQuantity"), UNIT_HOUR, "effortQuantity"),
        status=status,
    )


def build_thread_message(message: ThreadMessage, to: str) -> dict[str, Any]:
    """A Note for one community only: never public, never to followers."""
    document: dict[str, Any] = {
        "@context": default_context(),
        "id": message.id,
        "type": "Note",
        "attributedTo": message.attributed_to,
        "context": message.agreement,
        "content": plain_text_to_html(message.content),
        "to": [to],
        "cc": [],
    }
    if message.member is not None:
        document["member"] = message.member
    if message.member_name is not None:
        document["memberName"] = message.member_name
    if message.published is not None:
        document["published"] = _timestamp(message.published)
    return document


def is_thread_message(doc: Mapping[str, Any]) -> bool:
    """A Note that belongs to an exchange's thread rather than being a listing."""
    return doc.get("context") is not None and _first(doc.get("type")) == "Note"


def parse_thread_message(doc: Any) -> ThreadMessage:
    if not isinstance(doc, Mapping) or _type(doc, "message") != "Note":
        raise VocabError("an exchange message must be a Note")
    agreement = _reference(doc.get("context"), "message.context")
    attributed_to = _reference(doc.get("attributedTo"), "message.attributedTo")
    if agreement is None or attributed_to is None:
        raise VocabError("an exchange message names its agreement and its author")
    member = _string(doc, "member", "message")
    return ThreadMessage(
        id=_url(doc.get("id"), "message.id"),
        agreement=agreement,
        attributed_to=attributed_to,
        member=member,
        member_name=_string(doc, "memberName", "message"),
        content=_string(doc, "content", "message") or "",
        published=_datetime(doc, "published", "message"),
    )
