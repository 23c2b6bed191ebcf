"""An erasure's tombstone names nobody (a keyed hash of the entity), and buries the entity's hits
made up to the erasure, not those made after it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from webbugger.ids import epoch_ms
from webbugger.models import Beacon
from webbugger.tombstones import Tombstones, tombstone_key

SECRET = b"s" * 48
ENTITY = "recipient:alice@example.com"
ERASED = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def test_the_key_is_a_keyed_hash_that_names_nobody() -> None:
    key = tombstone_key(SECRET, ENTITY)
    assert key.startswith("x#") and len(key) == 2 + 64
    assert "alice" not in key and "recipient" not in key
    assert key == tombstone_key(SECRET, ENTITY)  # the same entity, the same stone
    assert key != tombstone_key(b"t" * 48, ENTITY)  # without the secret, a guess cannot be tested
    assert key != tombstone_key(SECRET, "recipient:bob@example.com")


def _beacon(entity: str | None, made: datetime) -> Beacon:
    return Beacon(pk="p", id="01", created_at=made, mode="pixel", method="GET", entity=entity)


def test_hits_up_to_the_erasure_are_buried_later_ones_are_not() -> None:
    stones = Tombstones(SECRET, {ENTITY: epoch_ms(ERASED), "recipient:bob@example.com": None})
    assert stones.buried(_beacon(ENTITY, ERASED - timedelta(hours=3)))
    assert stones.buried(_beacon(ENTITY, ERASED))
    assert not stones.buried(_beacon(ENTITY, ERASED + timedelta(milliseconds=1)))  # a new hit
    assert not stones.buried(_beacon("recipient:bob@example.com", ERASED - timedelta(hours=3)))
    assert not stones.buried(_beacon(None, ERASED - timedelta(hours=3)))
