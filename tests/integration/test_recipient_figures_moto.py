"""A recipient's figures are folded from its day items, against moto: the stream function lists
each click on the recipient's person-day (``clicks``, in the registration's one write) and writes
no recipient record; ``load`` gives the same figures whatever order the beacons came in, a
redelivered one counted once.

Beacons are stored as the track function stores them and fed to the stream function as INSERT
records (as in test_stream_classification.py).
"""

from __future__ import annotations

import contextlib
import io
import json
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any
from unittest import mock

import boto3
import botocore.client
import moto_stack
import pytest
from moto import mock_aws
from test_stream_classification import insert_record
from webbugger import runtime
from webbugger.ids import epoch_ms, new_beacon_id
from webbugger.models import Beacon, beacon_partition, expiry
from webbugger.persons import entity_person, forget, read

if TYPE_CHECKING:
    from collections.abc import Iterator

    from moto_stack import Handler

ROOT = Path(__file__).resolve().parents[2]
PREFIX = "test-recipient-"
STREAM_CODE_URI = ROOT / "functions" / "stream"
SAFARI = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Mobile/15E148 Safari/604.1"
)
DAY1 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
DAY2 = DAY1 + timedelta(days=1)
FakeContext = partial(moto_stack.FakeContext, function_name="StreamFunction", aws_request_id="rec1p")


@pytest.fixture(scope="module")
def stream() -> Iterator[tuple[Handler, dict[str, str]]]:
    """Fake AWS with the stack's tables and the stream function's environment; its handler, loaded
    anew (the one a session loaded before is put back afterwards), and the table names."""
    with pytest.MonkeyPatch.context() as monkeypatch, mock_aws():
        moto_stack.fake_aws_environment(monkeypatch)
        moto_stack.reset_caches()
        names = moto_stack.template_table_names(PREFIX)
        moto_stack.create_template_tables(
            boto3.client("dynamodb", region_name="us-east-1"), names, streams=False
        )
        moto_stack.set_function_environment(monkeypatch, names, "TrackFunction", "StreamFunction")
        monkeypatch.setenv("WEBBUGGER_VISITOR_SALT", "recipient-salt-" + "z" * 40)
        runtime.reset()
        runtime.default_settings()
        try:
            with moto_stack.fresh_handler(STREAM_CODE_URI) as handler:
                yield handler, names
        finally:
            moto_stack.reset_caches()


def store(mode: str, entity: str, at: datetime) -> Beacon:
    """A beacon as the track function stores it: a person's hit a day after the send."""
    beacon_id = new_beacon_id(epoch_ms(at))
    beacon = Beacon(
        pk=beacon_partition(beacon_id),
        id=beacon_id,
        created_at=at,
        mode=mode,
        method="GET",
        target="link:offer" if mode == "redirect" else None,
        entity=entity,
        source="campaign:autumn",
        ip="81.2.69.0",
        user_agent=SAFARI,
        minted=int((at - timedelta(days=1)).timestamp()),
        expires=expiry(at, 400),
    )
    beacon.save()
    return beacon


def deliver(handler: Handler, *beacons: Beacon) -> list[tuple[str, dict[str, Any]]]:
    """Deliver the beacons' records as one batch; the DynamoDB calls the stream function made."""
    calls: list[tuple[str, dict[str, Any]]] = []
    original = botocore.client.BaseClient._make_api_call

    def counted(client: Any, operation: str, params: dict[str, Any]) -> Any:
        calls.append((operation, params))
        return original(client, operation, params)

    event = json.loads(json.dumps({"Records": [insert_record(beacon) for beacon in beacons]}))
    with (
        mock.patch.object(botocore.client.BaseClient, "_make_api_call", counted),
        contextlib.redirect_stdout(io.StringIO()),
    ):
        assert handler(event, FakeContext()) == {"batchItemFailures": []}
    return calls


def written_tables(calls: list[tuple[str, dict[str, Any]]]) -> set[str]:
    """The tables the calls wrote to."""
    tables = {
        params["TableName"]
        for operation, params in calls
        if operation in ("PutItem", "UpdateItem", "DeleteItem")
    }
    for operation, params in calls:
        if operation == "TransactWriteItems":
            tables |= {next(iter(item.values()))["TableName"] for item in params["TransactItems"]}
    return tables


def iso(moment: datetime) -> str:
    return moment.isoformat()


def test_a_recipients_figures_fold_its_days_whatever_the_order_a_redelivery_counted_once(
    stream: tuple[Handler, dict[str, str]],
) -> None:
    handler, names = stream
    entity = "recipient:two-days@example.com"
    open1 = store("pixel", entity, DAY1)
    click1 = store("redirect", entity, DAY1 + timedelta(minutes=5))
    open2 = store("pixel", entity, DAY2 + timedelta(hours=1))
    click2 = store("redirect", entity, DAY2 + timedelta(hours=2))
    # Newest first, then the rest with the second day's click delivered again.
    calls = deliver(handler, click2, open2)
    calls += deliver(handler, click1, open1, click2)

    # The stream writes the counters table only (the person-days, which keep these beacons'
    # labels too, counters, ledgers): no recipient record, and nothing on the beacons.
    assert written_tables(calls) == {names["CountersTable"]}
    recipient = runtime.default_registry().entity("recipient")
    assert recipient.load is not None
    figures = recipient.load("two-days@example.com")
    assert figures is not None
    assert figures.to_record() == {
        "id": "two-days@example.com",
        "created_at": iso(DAY1),
        "opens": 2,
        "clicks": 2,
        "first_open": iso(DAY1),
        "last_open": iso(DAY2 + timedelta(hours=1)),
        "first_click": iso(DAY1 + timedelta(minutes=5)),
        "last_click": iso(DAY2 + timedelta(hours=2)),
    }
    assert recipient.load("never-seen@example.com") is None


def test_a_click_is_listed_in_its_person_days_clicks_an_open_is_not(
    stream: tuple[Handler, dict[str, str]],
) -> None:
    handler, _ = stream
    entity = "recipient:one-day@example.com"
    opened, clicked = store("pixel", entity, DAY1), store("redirect", entity, DAY1 + timedelta(minutes=1))
    deliver(handler, opened, clicked)
    day = read(entity_person(entity), DAY1.date().isoformat())
    assert day is not None
    assert day.hits == {opened.id, clicked.id}
    assert day.clicks == {clicked.id}


def test_forgetting_a_click_takes_it_off_clicks_too(stream: tuple[Handler, dict[str, str]]) -> None:
    handler, _ = stream
    entity = "recipient:forgotten@example.com"
    opened, clicked = store("pixel", entity, DAY1), store("redirect", entity, DAY1 + timedelta(minutes=1))
    deliver(handler, opened, clicked)
    forget(entity_person(entity), DAY1.date().isoformat(), clicked.id)
    day = read(entity_person(entity), DAY1.date().isoformat())
    assert day is not None
    assert (day.hits, day.clicks) == ({opened.id}, frozenset())
    figures = runtime.default_registry().entity("recipient").load
    assert figures is not None
    assert figures("forgotten@example.com").to_record()["clicks"] == 0
