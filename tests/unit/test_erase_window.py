"""``erase_entity(..., since=...)``: the unlisted beacons are looked for from ``since`` only (the
doctor erases its own run's entity without reading a day of everyone's beacons)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from webbugger import erase
from webbugger.refs import Ref
from webbugger.registry import Registry

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
SALT = b"s" * 48


@pytest.fixture
def windows(monkeypatch: pytest.MonkeyPatch) -> list[tuple[datetime, datetime]]:
    """The (since, until) of each scan erase makes; nothing is stored, nothing deleted."""
    seen: list[tuple[datetime, datetime]] = []

    def scanned(since: datetime, until: datetime, *args: Any) -> list[Any]:
        seen.append((since, until))
        return []

    monkeypatch.setattr(erase, "utcnow", lambda: NOW)
    monkeypatch.setattr(erase, "scanned_beacons", scanned)
    monkeypatch.setattr(erase, "all_entity_days", lambda person: [])
    monkeypatch.setattr(erase, "_delete_all", lambda model, items: len(list(items)))
    monkeypatch.setattr(erase, "bury", lambda *args: None)  # the tombstone: not stored either
    monkeypatch.setattr(erase.Counter, "query", lambda *args, **kwargs: iter([]))
    monkeypatch.setattr(erase, "entity_marks", lambda ref: iter([]))  # its send marks: none
    return seen


@pytest.fixture
def registry() -> Registry:
    found = Registry()
    found.register_entity("ip", lambda ident: None, origin="tests")
    return found


def test_since_narrows_the_scan_of_unlisted_beacons(windows: list[Any], registry: Registry) -> None:
    erase.erase_entity(Ref("ip", "doctor-1"), registry, SALT)
    erase.erase_entity(Ref("ip", "doctor-1"), registry, SALT, since=NOW - timedelta(minutes=5))
    erase.erase_entity(Ref("ip", "doctor-1"), registry, SALT, since=NOW - timedelta(days=9))
    assert windows == [
        (NOW - timedelta(hours=erase.UNLISTED_HOURS), NOW),
        (NOW - timedelta(minutes=5), NOW),
        (NOW - timedelta(hours=erase.UNLISTED_HOURS), NOW),  # never wider than the default
    ]
