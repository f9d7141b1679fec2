"""Entity records: ids, the latest-version rule, and the document round trip."""

from __future__ import annotations

import uuid

from wrapper.entities.record import EntityRecord, new_id


def test_ids_are_fresh_uuid4s_in_hex() -> None:
    ids = {new_id() for _ in range(2000)}
    assert len(ids) == 2000
    for text in ids:
        parsed = uuid.UUID(text)
        assert parsed.hex == text and parsed.version == 4 and parsed.variant == uuid.RFC_4122


def test_the_document_round_trips_and_the_latest_version_wins() -> None:
    first = EntityRecord(
        "demo", "model", "sklearn", "m", created_ns=1_700_000_000_123_456_789,
        labels={"team": "a"}, spec={"path": "s3://b/k", "framework": "sklearn"}, run="r1",
    )  # fmt: skip
    again = EntityRecord.from_dict(first.to_dict())
    assert again.to_dict() == first.to_dict()
    assert first.created == "2023-11-14T22:13:20.123456+00:00"
    assert str(first.key) == f"store://demo/model/sklearn/m:{first.id}"
    later = EntityRecord("demo", "model", "sklearn", "m", created_ns=first.created_ns + 1)
    tie = EntityRecord("demo", "model", "sklearn", "m", id="f" * 32, created_ns=first.created_ns)
    assert later.newer_than(first) and not first.newer_than(later)
    assert tie.newer_than(first)  # same time: the higher id
