"""Image attachments on listings: the shape we send, and what we read from others."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from federation.builders import build_note
from federation.jsonld import normalize_activity, normalize_with_pyld
from federation.vocab import Attachment, parse_note

NOTE_ID = "https://far.example/c/far/listings/1"


def note_with(attachment: Any) -> dict[str, Any]:
    return {
        "@context": "https://www.w3.org/ns/activitystreams",
        "id": NOTE_ID,
        "type": "Note",
        "attributedTo": "https://far.example/c/far",
        "content": "<p>Canoe</p>",
        "to": ["https://www.w3.org/ns/activitystreams#Public"],
        "attachment": attachment,
    }


def test_our_notes_carry_images_that_read_back_alike_with_and_without_pyld() -> None:
    image = Attachment("https://a.example/media/k/display", "image/jpeg", "Side view", 960, 1280)
    note = build_note(
        note_id=NOTE_ID,
        attributed_to="https://far.example/c/far",
        title="Canoe",
        description="",
        to=["https://www.w3.org/ns/activitystreams#Public"],
        cc=[],
        published=datetime(2026, 1, 1, tzinfo=UTC),
        kind="offer",
        attachments=[image],
    )
    assert note["attachment"] == [
        {
            "type": "Image",
            "url": "https://a.example/media/k/display",
            "mediaType": "image/jpeg",
            "name": "Side view",
            "width": 960,
            "height": 1280,
        }
    ]
    assert parse_note(normalize_activity(note)).attachments == (image,)
    assert parse_note(normalize_with_pyld(note)).attachments == (image,)


def test_mastodon_documents_of_images_are_read_and_everything_else_ignored() -> None:
    attachments = [
        {
            "type": "Document",
            "mediaType": "image/webp",
            "url": "https://far.example/system/a.webp",
            "name": "A canoe on a lake",
            "width": 640,
            "height": "480",
            "blurhash": "UBL_:rOpGG-;~qRjWBay",
        },
        {"type": "Document", "mediaType": "video/mp4", "url": "https://far.example/v.mp4"},
        {"type": "PropertyValue", "name": "Website", "value": "<a>x</a>"},
        {"type": "Image", "url": "javascript:alert(1)"},
        {"type": "Image", "url": {"type": "Link", "href": "https://far.example/b.png"}},
        "https://far.example/just-a-string.png",
        {"type": "Image", "url": "https://far.example/c.jpg", "width": -3, "name": 7},
    ]
    parsed = parse_note(normalize_activity(note_with(attachments))).attachments
    assert parsed == (
        Attachment(
            "https://far.example/system/a.webp", "image/webp", "A canoe on a lake", 640, 480
        ),
        Attachment("https://far.example/b.png", None, None, None, None),
        Attachment("https://far.example/c.jpg", None, None, None, None),
    )


def test_a_single_attachment_object_is_read_and_none_is_nothing() -> None:
    one = {"type": "Image", "url": "https://far.example/a.jpg", "mediaType": "image/jpeg"}
    assert len(parse_note(normalize_activity(note_with(one))).attachments) == 1
    assert parse_note(normalize_activity(note_with(None))).attachments == ()
