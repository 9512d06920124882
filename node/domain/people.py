"""Rules about people that need no database: invitation states, profile limits, link lifetimes."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum

from storage.models import Invitation

DISPLAY_NAME_MAX = 100
BIO_MAX = 1000
INVITE_DEFAULT_HOURS = 7 * 24
INVITE_MAX_HOURS = 30 * 24
RESET_LIFETIME = timedelta(hours=24)


class InvitationState(StrEnum):
    """Read from an invitation's times, never stored, so it cannot disagree with them."""

    UNUSED = "unused"
    USED = "used"
    EXPIRED = "expired"
    REVOKED = "revoked"


def invitation_state(invitation: Invitation, now: datetime) -> InvitationState:
    if invitation.revoked_at is not None:
        return InvitationState.REVOKED
    if invitation.used_at is not None:
        return InvitationState.USED
    if invitation.expires_at <= now:
        return InvitationState.EXPIRED
    return InvitationState.UNUSED


def clean_display_name(text: str) -> str:
    """One line, trimmed, bounded: it shows in headers and on other communities' pages."""
    name = " ".join(text.split())
    if len(name) > DISPLAY_NAME_MAX:
        raise ValueError(f"a display name has at most {DISPLAY_NAME_MAX} characters")
    if not name.isprintable():
        raise ValueError("a display name cannot contain control characters")
    return name


def clean_bio(text: str) -> str:
    bio = text.replace("\r\n", "\n").strip()
    if len(bio) > BIO_MAX:
        raise ValueError(f"a bio has at most {BIO_MAX} characters")
    if "\x00" in bio:
        raise ValueError("a bio cannot contain NUL characters")
    return bio
