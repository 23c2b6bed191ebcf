"""Labels kept on an entity's day item (:mod:`webbugger.day_labels`): counting stays exact and the
labels stay readable when the stream's one write on the day item is followed by a failure, a
concurrent writer, or a reader that reads the beacon item alone (in-process, against moto, with the
fixtures and helpers of :mod:`test_counters`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from test_counters import (  # noqa: F401 - aws, stream: fixtures
    COUNTERS,
    NOON,
    FakeContext,
    aws,
    client,
    failures,
    figures,
    insert_event,
    sequence,
    store,
    stored_item,
    stream,
    stream_record,
)
from webbugger.registry import Kind
from webbugger.tombstones import Tombstones

if TYPE_CHECKING:
    import pytest
    from moto_stack import Handler


def day_item(entity: str) -> dict[str, Any]:
    """The entity's day item of NOON, raw."""
    key = {"pk": {"S": f"p#e#{entity}"}, "sk": {"S": NOON.date().isoformat()}}
    item: dict[str, Any] = client().get_item(TableName=COUNTERS, Key=key, ConsistentRead=True)["Item"]
    return item


def test_a_failure_after_the_day_write_leaves_its_count_to_the_retry(
    stream: Handler,  # noqa: F811 - the fixture
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The day item's one write claims the beacon's tally to the batch's ledger; if the beacon's
    processing then fails (its tombstone read again, before the tally is added to the ledger), the
    ledger must not commit without that tally: the retried record would find it committed and
    count nothing."""
    source = "campaign:after-write"
    first = store(entity="recipient:a@example.com", source=source, at=NOON, mode="pixel")
    second = store(entity="recipient:b@example.com", source=source, at=NOON, mode="pixel")
    real = Tombstones.erased_at
    calls: list[str] = []

    def unreachable_once(self: Tombstones, entity: str, *, fresh: bool = False) -> int | None:
        if fresh and entity == "recipient:a@example.com" and not calls:
            calls.append(entity)
            raise RuntimeError("counters table unreachable")
        return real(self, entity, fresh=fresh)

    monkeypatch.setattr(Tombstones, "erased_at", unreachable_once)
    records = [stream_record(stored_item(beacon_id)) for beacon_id in (first, second)]
    response = stream({"Records": records}, FakeContext())
    assert calls, "the tombstone was read again after the day item's write"
    assert sequence(records[0]) in failures(response)
    assert "b#" + first in day_item("recipient:a@example.com")  # its label and claim are written

    # Lambda retries from the first failed record on.
    assert stream(insert_event([first, second]), FakeContext()) == {"batchItemFailures": []}
    assert figures(Kind.SOURCE, source, NOON.date())["total"] == 2
    assert stream(insert_event([first, second]), FakeContext()) == {"batchItemFailures": []}
    assert stream(insert_event([first]), FakeContext()) == {"batchItemFailures": []}
    assert figures(Kind.SOURCE, source, NOON.date())["total"] == 2
