"""The stream function's hit feed under moto: EventBridge events (schema-validated, 10 to a
PutEvents call, a failed entry retried, then dead-lettered) and analytics rows through Firehose,
with the example rule of docs/events.md delivering to an SQS queue.

Beacons are stored as the track function stores them and fed to the stream function as INSERT
records (the helpers of test_stream_classification.py).
"""

from __future__ import annotations

import json
import sys
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import jsonschema
import moto_stack
import pytest
from moto import mock_aws
from test_stream_classification import DAY, MPP, SAFARI, FakeContext, insert_record, store
from webbugger import runtime
from webbugger.feed import sinks
from webbugger.feed.shapes import analytics_entity
from webbugger_cli.analytics import analytics_columns
from webbugger_cli.template import load_handler, load_template

if TYPE_CHECKING:
    from collections.abc import Iterator

    from moto_stack import Handler
    from webbugger.models import Beacon

ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
STREAM_CODE_URI = ROOT / "functions" / "stream"
STREAM_MODULE = f"webbugger_function_{STREAM_CODE_URI.name}_app"
SCHEMA = json.loads((ROOT / "docs" / "hit-event.schema.json").read_text())
SALT_SECRET = b"feed-salt-" + b"z" * 40
BUS = "test-hits"
# The example rule of docs/events.md: every hit event of the bus, to a queue.
EVERY_HIT_EVENT = {"source": ["webbugger"], "detail-type": ["Hit labelled", "Hit relabelled"]}


class Feed:
    """The fake AWS around the stream function: its handler, and where the feed lands."""

    def __init__(self, handler: Handler, target_queue: str, dead_letters: str, bucket: str) -> None:
        self.handler, self.target_queue, self.dead_letters, self.bucket = (
            handler,
            target_queue,
            dead_letters,
            bucket,
        )
        self.sqs = boto3.client("sqs", region_name=REGION)
        self.s3 = boto3.client("s3", region_name=REGION)

    def deliver(self, *beacons: Beacon) -> dict[str, Any]:
        event = json.loads(json.dumps({"Records": [insert_record(beacon) for beacon in beacons]}))
        answer: dict[str, Any] = self.handler(event, FakeContext())
        return answer

    def drain(self, queue: str) -> list[dict[str, Any]]:
        bodies: list[dict[str, Any]] = []
        for _ in range(100):
            got = self.sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10)
            if not got.get("Messages"):
                return bodies
            for message in got["Messages"]:
                bodies.append(json.loads(message["Body"]))
                self.sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
        return bodies

    def events(self) -> list[dict[str, Any]]:
        return self.drain(self.target_queue)

    def rows(self) -> list[dict[str, Any]]:
        """Every analytics row Firehose has written to the bucket (then removed)."""
        rows = []
        for item in self.s3.list_objects_v2(Bucket=self.bucket).get("Contents", []):
            body = self.s3.get_object(Bucket=self.bucket, Key=item["Key"])["Body"].read().decode()
            rows += [json.loads(line) for line in body.splitlines() if line.strip()]
            self.s3.delete_object(Bucket=self.bucket, Key=item["Key"])
        return rows


@pytest.fixture(scope="module")
def feed() -> Iterator[Feed]:
    previous = sys.modules.pop(STREAM_MODULE, None)
    with pytest.MonkeyPatch.context() as monkeypatch, mock_aws():
        moto_stack.fake_aws_environment(monkeypatch)
        moto_stack.reset_caches()
        names = moto_stack.template_table_names("test-feed-")
        moto_stack.create_template_tables(boto3.client("dynamodb", region_name=REGION), names, streams=False)
        moto_stack.set_function_environment(monkeypatch, names, "TrackFunction", "StreamFunction")
        monkeypatch.setenv("WEBBUGGER_VISITOR_SALT", SALT_SECRET.decode())
        sqs = boto3.client("sqs", region_name=REGION)
        target = sqs.create_queue(QueueName="hit-events-target")["QueueUrl"]
        dead_letters = sqs.create_queue(QueueName="hit-feed-dead-letters")["QueueUrl"]
        events = boto3.client("events", region_name=REGION)
        events.create_event_bus(Name=BUS)
        events.put_rule(Name="every-hit", EventBusName=BUS, EventPattern=json.dumps(EVERY_HIT_EVENT))
        target_arn = sqs.get_queue_attributes(QueueUrl=target, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        events.put_targets(Rule="every-hit", EventBusName=BUS, Targets=[{"Id": "queue", "Arn": target_arn}])
        s3 = boto3.client("s3", region_name=REGION)
        s3.create_bucket(Bucket="test-analytics")
        boto3.client("firehose", region_name=REGION).create_delivery_stream(
            DeliveryStreamName="test-analytics",
            ExtendedS3DestinationConfiguration={
                "RoleARN": f"arn:aws:iam::{moto_stack.ACCOUNT}:role/firehose",
                "BucketARN": "arn:aws:s3:::test-analytics",
                "Prefix": "beacons/",
            },
        )
        monkeypatch.setenv("EVENT_BUS_NAME", BUS)
        monkeypatch.setenv("ANALYTICS_STREAM_NAME", "test-analytics")
        monkeypatch.setenv("FEED_DEAD_LETTER_QUEUE_URL", dead_letters)
        monkeypatch.setattr(sinks, "BACKOFF_S", 0.0)
        runtime.default_settings()
        try:
            yield Feed(
                load_handler(STREAM_CODE_URI, "app.lambda_handler"), target, dead_letters, "test-analytics"
            )
        finally:
            sys.modules.pop(STREAM_MODULE, None)
            if previous is not None:
                sys.modules[STREAM_MODULE] = previous
            moto_stack.reset_caches()


@pytest.fixture(autouse=True)
def empty_sinks(feed: Feed) -> None:
    """Each test starts with nothing in the queues and the bucket: what another test left there
    (rows it did not read, in whatever order the tests run) is not this test's."""
    feed.events(), feed.rows(), feed.drain(feed.dead_letters)


def _calls(monkeypatch: pytest.MonkeyPatch, fail: Any = None) -> list[list[dict[str, Any]]]:
    """Record every PutEvents call's entries; ``fail(entry, attempt)`` answers an error code
    for an entry instead of putting it (the others go to moto)."""
    client = sinks.client("events", REGION)
    real = client.put_events
    calls: list[list[dict[str, Any]]] = []

    def put_events(Entries: list[dict[str, Any]]) -> dict[str, Any]:  # noqa: N803 - boto3's name
        calls.append(Entries)
        failing = {i for i, entry in enumerate(Entries) if fail is not None and fail(entry, len(calls))}
        kept = [entry for i, entry in enumerate(Entries) if i not in failing]
        answered = iter(real(Entries=kept)["Entries"] if kept else [])
        results = [
            {"ErrorCode": "InternalFailure"} if i in failing else next(answered) for i in range(len(Entries))
        ]
        return {"FailedEntryCount": len(failing), "Entries": results}

    monkeypatch.setattr(client, "put_events", put_events)
    return calls


def test_each_labelled_hit_is_one_schema_valid_event_ten_to_a_call(
    feed: Feed, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _calls(monkeypatch)
    beacons = [
        store(
            mode="redirect",
            entity=f"recipient:batch-{n}",
            at=DAY + timedelta(seconds=n),
            user_agent=SAFARI,
            source="campaign:ten",
        )
        for n in range(12)
    ]
    assert feed.deliver(*beacons) == {"batchItemFailures": []}

    assert [len(entries) for entries in calls] == [10, 2]
    events = feed.events()
    for event in events:
        jsonschema.validate(event, SCHEMA)
    assert sorted(e["detail"]["id"] for e in events) == sorted(b.id for b in beacons)
    first = next(e for e in events if e["detail"]["id"] == beacons[0].id)
    assert first["detail-type"] == "Hit labelled"
    assert first["detail"] | {"label_version": 0} == {
        "schema_version": 1, "id": beacons[0].id, "time": "2026-11-20T09:00:00.000Z", "mode": "redirect",
        "target": "link:offer", "entity": "recipient:batch-0", "source": "campaign:ten", "class": "human",
        "reasons": [], "browser": "Mobile Safari", "os": "iOS", "device": "iPhone", "country": None,
        "label_version": 0,
    }  # fmt: skip
    # Never the address or the user agent (the beacons have both).
    assert "81.2.69" not in json.dumps(events) and "AppleWebKit" not in json.dumps(events)

    # The same hits as analytics rows, with the analytics table's columns (and its partition).
    rows = feed.rows()
    assert sorted(row["id"] for row in rows) == sorted(b.id for b in beacons)
    assert {*(name for name, _ in analytics_columns(load_template(ROOT))), "day"} == set(rows[0])
    # The entity by its pseudonym (the stack's default AnalyticsEntities), in both columns.
    pseudonyms = {analytics_entity(SALT_SECRET, f"recipient:batch-{n}") for n in range(12)}
    assert {row["entity"] for row in rows} == pseudonyms
    assert {row["person"] for row in rows} == {f"e#{pseudonym}" for pseudonym in pseudonyms}
    assert "batch-" not in json.dumps(rows)
    assert {row["day"] for row in rows} == {"2026-11-20"}
    assert feed.drain(feed.dead_letters) == []


def test_a_class_change_is_a_relabel_event_with_a_higher_version(
    feed: Feed, monkeypatch: pytest.MonkeyPatch
) -> None:
    _calls(monkeypatch)
    entity = "recipient:relabel"
    opened = store(mode="pixel", entity=entity, at=DAY, user_agent=MPP, ip="17.58.97.0")
    feed.deliver(opened)
    (labelled,) = feed.events()
    assert (labelled["detail-type"], labelled["detail"]["class"]) == ("Hit labelled", "privacy-prefetch")
    # The recipient clicks an hour later: the open was theirs, so it becomes human.
    clicked = store(mode="redirect", entity=entity, at=DAY + timedelta(hours=1), user_agent=SAFARI)
    feed.deliver(clicked)
    events = {(e["detail-type"], e["detail"]["id"]): e["detail"] for e in feed.events()}
    for event in events.values():
        jsonschema.validate({"detail-type": "Hit relabelled", "source": "webbugger", "detail": event}, SCHEMA)
    relabel = events["Hit relabelled", opened.id]
    assert (relabel["previous_class"], relabel["class"]) == ("privacy-prefetch", "human")
    assert relabel["label_version"] > labelled["detail"]["label_version"]
    assert events["Hit labelled", clicked.id]["class"] == "human"
    # The analytics rows say the same: the open's latest row (highest version) is human.
    rows = [row for row in feed.rows() if row["id"] == opened.id]
    assert max(rows, key=lambda row: row["label_version"])["class"] == "human"


def test_a_failed_entry_is_retried_then_dead_lettered_and_counted(
    feed: Feed, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    first, second = (
        store(
            mode="redirect", entity=f"recipient:retry-{n}", at=DAY, user_agent=SAFARI, source="campaign:retry"
        )
        for n in range(2)
    )
    # The first entry fails once: it is sent again, alone, and arrives.
    calls = _calls(monkeypatch, fail=lambda entry, call: call == 1 and first.id in entry["Detail"])
    capsys.readouterr()
    assert feed.deliver(first, second) == {"batchItemFailures": []}
    assert [len(entries) for entries in calls] == [2, 1]
    assert sorted(e["detail"]["id"] for e in feed.events()) == sorted([first.id, second.id])
    assert _metric(capsys.readouterr().out, "HitEventsRetried") == 1

    # An entry that keeps failing is dead-lettered after three attempts; the hits stay counted.
    calls = _calls(monkeypatch, fail=lambda entry, call: second.id in entry["Detail"])
    assert feed.deliver(second) == {"batchItemFailures": []}
    assert [len(entries) for entries in calls] == [1, 1, 1]
    assert feed.events() == []
    (letter,) = feed.drain(feed.dead_letters)
    assert letter["sink"] == "events"
    assert json.loads(letter["entry"]["Detail"])["id"] == second.id
    assert _metric(capsys.readouterr().out, "HitEventsDeadLettered") == 1


def _metric(output: str, name: str) -> float:
    """The value of metric ``name`` in the EMF lines Powertools printed."""
    for line in output.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            found = json.loads(line).get(name)
            if found is not None:
                return float(sum(found) if isinstance(found, list) else found)
    raise AssertionError(f"no {name} metric in {output!r}")
