"""The poster's display name travels on a listing's Note as `authorName` and is read back
bounded and on one line; without a display name nothing about the poster is sent."""

from __future__ import annotations

from datetime import UTC, datetime

from federation.builders import build_note
from federation.vocab import PUBLIC, parse_note
from node.domain.conversion import note_to_mirrored_fields

NOTE_ID = "https://riverside.example/c/riverside/listings/1"


def note(**extra: object) -> dict[str, object]:
    return build_note(
        note_id=NOTE_ID,
        attributed_to="https://riverside.example/c/riverside",
        title="Ladder",
        description="3 m",
        to=[PUBLIC],
        cc=[],
        published=datetime(2026, 1, 1, tzinfo=UTC),
        **extra,  # type: ignore[arg-type]
    )


def test_author_name_round_trips_and_attribution_stays_the_community() -> None:
    document = note(author_name="Nia K.")
    assert document["authorName"] == "Nia K."
    parsed = parse_note(document)
    assert parsed.attributed_to == "https://riverside.example/c/riverside"
    assert note_to_mirrored_fields(parsed).author_name == "Nia K."


def test_no_author_name_is_sent_when_none_was_chosen() -> None:
    document = note()
    assert "authorName" not in document
    assert note_to_mirrored_fields(parse_note(document)).author_name is None


def test_a_received_author_name_is_one_bounded_line() -> None:
    parsed = parse_note(note(author_name="  Nia\n\tK.\x07 " + "x" * 300))
    name = note_to_mirrored_fields(parsed).author_name
    assert name is not None and name.startswith("Nia K. x") and len(name) == 100
