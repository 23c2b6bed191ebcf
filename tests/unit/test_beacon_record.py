"""The export columns are the beacon record's fields, in order (one definition)."""

from datetime import UTC, datetime

from webbugger.models import BEACON_RECORD_FIELDS, Beacon


def test_export_columns_are_the_records_fields() -> None:
    beacon = Beacon(pk="2026-11-23#0", id="0" * 26, created_at=datetime.now(UTC), mode="pixel", method="GET")
    assert tuple(beacon.to_record()) == BEACON_RECORD_FIELDS
