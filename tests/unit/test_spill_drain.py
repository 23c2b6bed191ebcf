"""The drain function's handler, loaded from its CodeUri, against moto's DynamoDB: spill-queue
batches (partial failures, duplicates, a failing table) and log-subscription deliveries."""

from __future__ import annotations

import base64
import gzip
import json
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError
from moto import mock_aws
from webbugger import runtime
from webbugger.ids import new_beacon_id
from webbugger.models import Beacon, beacon_partition
from webbugger.spill import spill_message
from webbugger_cli.template import load_handler, load_template

if TYPE_CHECKING:
    from collections.abc import Iterator
    from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
TABLE = "drain-beacons"


@dataclass(frozen=True)
class Context:
    function_name: str = "DrainFunction"
    aws_request_id: str = "drain-1"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = f"arn:aws:lambda:{REGION}:123456789012:function:DrainFunction"


@pytest.fixture
def drain(monkeypatch: pytest.MonkeyPatch) -> Iterator[ModuleType]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": REGION,
        "BEACONS_TABLE": TABLE,
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("DYNAMODB_ENDPOINT", raising=False)
    runtime.reset()
    with mock_aws():
        spec = load_template(ROOT).tables()["BeaconsTable"]
        boto3.client("dynamodb", region_name=REGION).create_table(TableName=TABLE, **spec)
        load_handler(ROOT / "functions" / "drain", "app.lambda_handler")
        module = sys.modules["webbugger_function_drain_app"]
        module.bind_beacons.cache_clear()
        yield module
        module.bind_beacons.cache_clear()
    runtime.reset()


def _beacon() -> Beacon:
    beacon_id = new_beacon_id()
    return Beacon(
        pk=beacon_partition(beacon_id), id=beacon_id, created_at=datetime.now(UTC), mode="pixel", method="GET"
    )


def _sqs_event(bodies: list[str]) -> dict[str, Any]:
    return {
        "Records": [
            {
                "messageId": f"m{number}",
                "receiptHandle": f"r{number}",
                "body": body,
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:{REGION}:123456789012:spill",
                "awsRegion": REGION,
            }
            for number, body in enumerate(bodies)
        ]
    }


def _stored_ids() -> list[str]:
    items = boto3.client("dynamodb", region_name=REGION).scan(TableName=TABLE)["Items"]
    return sorted(item["id"]["S"] for item in items)


def test_a_batch_stores_each_beacon_once_and_returns_only_bad_messages(drain: ModuleType) -> None:
    first, second = _beacon(), _beacon()
    bodies = [spill_message(first), "not json", spill_message(second), spill_message(first)]

    result = drain.lambda_handler(_sqs_event(bodies), Context())

    assert result == {"batchItemFailures": [{"itemIdentifier": "m1"}]}
    assert _stored_ids() == sorted([first.id, second.id])
    # Delivered again (SQS is at least once): nothing new, nothing failed.
    assert drain.lambda_handler(_sqs_event([spill_message(first)]), Context()) == {"batchItemFailures": []}
    assert _stored_ids() == sorted([first.id, second.id])


def test_a_message_with_infinity_or_nan_fails_alone(drain: ModuleType) -> None:
    """Python's JSON reader takes these; int(inf) then raised OverflowError, which the drain took
    for a failing table: the whole batch went back to the queue untried."""
    first, second = _beacon(), _beacon()
    hostile = [
        spill_message(_beacon()).replace('"minted":null', '"minted":Infinity'),
        spill_message(_beacon()).replace('"expires":null', '"expires":NaN'),
        spill_message(_beacon()).replace('"minted":null', '"minted":1e400'),
        spill_message(_beacon()).replace('"expires":null', '"expires":-Infinity'),
    ]
    bodies = [spill_message(first), *hostile, spill_message(second)]

    result = drain.lambda_handler(_sqs_event(bodies), Context())

    assert result == {"batchItemFailures": [{"itemIdentifier": f"m{n}"} for n in range(1, 5)]}
    assert _stored_ids() == sorted([first.id, second.id])


def test_once_the_table_fails_the_rest_of_the_batch_goes_back_untried(
    drain: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempts: list[str] = []
    saved = Beacon.save

    def table_down(beacon: Beacon, *args: Any, **kwargs: Any) -> None:
        attempts.append(beacon.id)
        raise ConnectionError("dynamodb unreachable")

    monkeypatch.setattr(Beacon, "save", table_down)
    beacons = [_beacon() for _ in range(4)]

    # Every message failed: Powertools fails the invocation, and the whole batch comes back.
    with pytest.raises(BatchProcessingError, match="All records failed"):
        drain.lambda_handler(_sqs_event([spill_message(b) for b in beacons]), Context())

    assert attempts == [beacons[0].id]
    # The next batch is tried again.
    monkeypatch.setattr(Beacon, "save", saved)
    assert drain.lambda_handler(_sqs_event([spill_message(beacons[1])]), Context()) == {
        "batchItemFailures": []
    }


def _logs_event(messages: list[str]) -> dict[str, Any]:
    payload = {
        "messageType": "DATA_MESSAGE",
        "owner": "123456789012",
        "logGroup": "/aws/lambda/track",
        "logStream": "2026/11/23/[$LATEST]abc",
        "subscriptionFilters": ["SpilledLogsSubscription"],
        "logEvents": [
            {"id": str(number), "timestamp": 1795000000000, "message": message}
            for number, message in enumerate(messages)
        ],
    }
    return {"awslogs": {"data": base64.b64encode(gzip.compress(json.dumps(payload).encode())).decode()}}


def _log_line(beacon: Beacon) -> str:
    """The track function's log record of a beacon it could not store."""
    return json.dumps(
        {"level": "ERROR", "message": "beacon write failed", **json.loads(spill_message(beacon))}
    )


def test_a_log_subscription_delivery_stores_its_spilled_beacons(drain: ModuleType) -> None:
    first, second = _beacon(), _beacon()
    messages = [
        _log_line(first),
        _log_line(second),
        json.dumps({"level": "ERROR", "spilled_beacon": {"id": "nope"}}),
    ]

    result = drain.lambda_handler(_logs_event(messages), Context())

    assert result == {"records": 3, "invalid": 1}
    assert _stored_ids() == sorted([first.id, second.id])


def test_a_log_delivery_fails_while_the_table_does(
    drain: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    def table_down(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("dynamodb unreachable")

    monkeypatch.setattr(Beacon, "save", table_down)
    with pytest.raises(ConnectionError):  # Lambda retries the delivery
        drain.lambda_handler(_logs_event([_log_line(_beacon())]), Context())
