"""Per-day counters, end to end: beacons → the stream function (as Lambda calls it) → counters.

Most tests run in-process against moto: tables from template.yaml, the function environment the
template declares, the key ring from Secrets Manager, the stream function loaded from its CodeUri
and called with events in the Lambda DynamoDB stream format (INSERT records carrying the stored
item as ``NewImage``). The last test goes through the real local stack (DynamoDB Local, HTTP,
the stream feed).

The failing record of the partial-failure tests is a ``probe:flaky-<id>`` beacon: the test plugin
``stream_test_plugins.probe`` (loaded through ``WEBBUGGER_PLUGINS``) has a deferred hook that
raises on its first call for that id, then succeeds.
"""

from __future__ import annotations

import copy
import http.client
import itertools
import json
import os
import re
import sys
import time
import uuid
from datetime import UTC, date, datetime, timedelta
from functools import cache, partial
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import boto3
import moto_stack
import pytest
from moto import mock_aws
from moto_stack import Handler
from stored_labels import with_day_labels
from stream_test_plugins import probe
from webbugger import runtime, stream_batch
from webbugger.counters import daily_salt, daily_stats, visitor_key
from webbugger.ids import epoch_ms, new_beacon_id
from webbugger.minting import tracking_url
from webbugger.models import Beacon, beacon_partition, expiry
from webbugger.modes import Mode
from webbugger.plugins import PLUGINS_VARIABLE
from webbugger.refs import Ref
from webbugger.registry import Kind
from webbugger.tokens import KeyRing, TokenClaims
from webbugger_plugins.campaign import create_campaign
from webbugger_plugins.link import create_link

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from types import ModuleType

    from conftest import RunningStack

ROOT = Path(__file__).resolve().parents[2]
BEACONS = "test-counters-beacons"
COUNTERS = "test-counters-counters"
PROBES = "test-counters-probes"
RING_JSON = json.dumps({"current": "k1", "k1": "C" * 48})
RING = KeyRing.from_json(RING_JSON)
SALT = b"visitor-salt-" + b"x" * 40
STREAM_CODE_URI = ROOT / "functions" / "stream"
# The name load_handler gives the stream function's module (it caches it in sys.modules).
STREAM_MODULE = f"webbugger_function_{STREAM_CODE_URI.name}_app"
UA_A = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) CounterTestA/1.0"
UA_B = "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) CounterTestB/2.0"
IP_A = "198.51.100.23"  # stored anonymised, as 198.51.100.0
IP_B = "192.0.2.201"
DESTINATION = "https://example.com/counted"
STREAM_ARN = f"arn:aws:dynamodb:us-east-1:123456789012:table/{BEACONS}/stream/2024-01-01T00:00:00.000"
_SEQUENCE = itertools.count(1)

FakeContext = partial(
    moto_stack.FakeContext,
    function_name="StreamFunction",
    aws_request_id="c0ffee00-0000-4000-8000-0000000000c7",
)
reset_caches = moto_stack.reset_caches


# --- fixtures -----------------------------------------------------------------------------------


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fake AWS with the stack's tables, the probe plugin's table and the signing secret; the
    environment of the track and stream functions, as template.yaml declares it."""
    moto_stack.fake_aws_environment(monkeypatch)
    reset_caches()
    with mock_aws():
        client.cache_clear()
        dynamodb = client()
        names = moto_stack.template_table_names("test-counters-")
        names |= {"BeaconsTable": BEACONS, "CountersTable": COUNTERS}
        # The stream is fed by hand here (events built from stored items). moto would keep each
        # stream record and deep-copy them all on every transaction: slower with every write.
        moto_stack.create_template_tables(dynamodb, names, streams=False)
        dynamodb.create_table(
            TableName=PROBES,
            KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
            AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
            BillingMode="PAY_PER_REQUEST",
        )
        environment = moto_stack.set_function_environment(
            monkeypatch, names, "TrackFunction", "StreamFunction"
        )
        assert environment["COUNTERS_TABLE"] == COUNTERS  # the stream function's, from the template
        monkeypatch.setenv(PLUGINS_VARIABLE, probe.__name__)
        monkeypatch.setenv(probe.TABLE_VARIABLE, PROBES)
        moto_stack.create_signing_secret(monkeypatch, RING_JSON)
        monkeypatch.setenv("WEBBUGGER_VISITOR_SALT", SALT.decode())
        runtime.default_settings()  # binds every model to its table
        yield
        reset_caches()
        client.cache_clear()


@pytest.fixture
def stream(aws: None) -> Iterator[Handler]:
    """The stream function's handler, loaded anew (a cold start) under this test's environment."""
    with moto_stack.fresh_handler(STREAM_CODE_URI) as handler:
        yield handler


@pytest.fixture
def stream_module(stream: Handler) -> ModuleType:
    """The module of :func:`stream` (to patch what its record handler calls)."""
    return sys.modules[STREAM_MODULE]


@pytest.fixture
def track(aws: None) -> Handler:
    return moto_stack.load_track_handler()


# --- helpers ------------------------------------------------------------------------------------


@cache
def client() -> Any:
    """A DynamoDB client of the fake AWS (one per test: the aws fixture forgets it)."""
    return boto3.client("dynamodb", region_name="us-east-1")


def store(
    *,
    target: str | None = None,
    entity: str | None = None,
    source: str | None = None,
    ip: str | None = "198.51.100.0",
    user_agent: str | None = UA_A,
    at: datetime | None = None,
    mode: str = "redirect",
) -> str:
    """Store a beacon with Beacon.save, as the track function would; its id."""
    moment = at or datetime.now(UTC)
    beacon_id = new_beacon_id(epoch_ms(moment))
    Beacon(
        pk=beacon_partition(beacon_id),
        id=beacon_id,
        created_at=moment,
        mode=mode,
        method="GET",
        target=target,
        entity=entity,
        source=source,
        ip=ip,
        user_agent=user_agent,
        expires=expiry(moment, 400),
    ).save()
    return beacon_id


def stored_items() -> list[dict[str, Any]]:
    """Every beacon item, raw (the form a stream record's NewImage has), oldest first."""
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"TableName": BEACONS, "ConsistentRead": True}
    while True:
        page = client().scan(**kwargs)
        items += page["Items"]
        if "LastEvaluatedKey" not in page:
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return sorted(items, key=lambda item: item["id"]["S"])


def stored_item(beacon_id: str) -> dict[str, Any]:
    item: dict[str, Any] = client().get_item(
        TableName=BEACONS,
        Key={"pk": {"S": beacon_partition(beacon_id)}, "id": {"S": beacon_id}},
        ConsistentRead=True,
    )["Item"]
    return item


def stream_record(image: dict[str, Any], event_name: str = "INSERT") -> dict[str, Any]:
    """One record of a DynamoDB stream event as Lambda delivers it (StreamViewType NEW_IMAGE)."""
    return {
        "eventID": uuid.uuid4().hex,
        "eventName": event_name,
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "eventSourceARN": STREAM_ARN,
        "dynamodb": {
            "ApproximateCreationDateTime": int(time.time()),
            "Keys": {"pk": image["pk"], "id": image["id"]},
            "NewImage": copy.deepcopy(image),
            "SequenceNumber": f"{next(_SEQUENCE):021d}",
            "SizeBytes": len(json.dumps(image)),
            "StreamViewType": "NEW_IMAGE",
        },
    }


def batch(*records: dict[str, Any]) -> dict[str, Any]:
    """A stream event (through JSON, as Lambda passes it)."""
    made: dict[str, Any] = json.loads(json.dumps({"Records": list(records)}))
    return made


def insert_event(beacon_ids: list[str]) -> dict[str, Any]:
    """A stream event of INSERT records for the stored beacons, in this order."""
    return batch(*(stream_record(stored_item(beacon_id)) for beacon_id in beacon_ids))


def today() -> date:
    return datetime.now(UTC).date()


def counts(kind: Kind, ref: str, day: date | None = None) -> tuple[int, int]:
    """(total, unique) of ``ref`` for ``day`` (today by default)."""
    stats = daily_stats(kind, ref, day or today(), day or today())
    (only,) = stats.days
    return only.total, only.unique


def all_counter_items() -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"TableName": COUNTERS, "ConsistentRead": True}
    while True:
        page = client().scan(**kwargs)
        items += page["Items"]
        if "LastEvaluatedKey" not in page:
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return items


def ledgers() -> list[dict[str, Any]]:
    """Every batch ledger in the counters table."""
    return [item for item in all_counter_items() if item["pk"]["S"].startswith("l#")]


def failures(response: dict[str, Any]) -> list[str]:
    return [failure["itemIdentifier"] for failure in response["batchItemFailures"]]


def sequence(record: dict[str, Any]) -> str:
    number: str = record["dynamodb"]["SequenceNumber"]
    return number


def redirect_event(path: str, user_agent: str, source_ip: str) -> dict[str, Any]:
    """An HTTP API (payload 2.0) GET of ``path`` by a visitor."""
    return moto_stack.http_event(
        path,
        headers={"user-agent": user_agent, "accept-language": "en-GB"},
        source_ip=source_ip,
        request_id=uuid.uuid4().hex,
    )


# --- (1) counts after a batch -------------------------------------------------------------------


def test_a_batch_of_tracked_hits_counts_totals_and_distinct_people(track: Handler, stream: Handler) -> None:
    link = create_link(DESTINATION)
    create_campaign("spring")
    probe_id = f"c-{uuid.uuid4().hex[:12]}"
    target, entity, source = Ref("link", link.id), Ref(probe.TYPE_NAME, probe_id), Ref("campaign", "spring")
    claims = TokenClaims(mode=Mode.REDIRECT, target=target, entity=entity, source=source)
    path = tracking_url("https://t.example", claims, RING).removeprefix("https://t.example")
    hits = [(UA_A, IP_A)] * 3 + [(UA_B, IP_B)] * 2
    for user_agent, ip in hits:
        response = track(redirect_event(path, user_agent, ip), FakeContext())
        assert response["statusCode"] == 302, response

    items = stored_items()
    assert len(items) == 5
    response = stream(batch(*(stream_record(item) for item in items)), FakeContext())

    assert response == {"batchItemFailures": []}
    # One person (the entity), whatever the two agents: unique 1.
    assert counts(Kind.TARGET, str(target)) == (5, 1)
    # The source is counted under its own kind, not as a target; entities are not counted by
    # default (COUNTED_KINDS): the entity's own record counts its hits.
    assert counts(Kind.SOURCE, str(source)) == (5, 1)
    assert counts(Kind.ENTITY, str(entity)) == (0, 0)
    assert counts(Kind.TARGET, str(source)) == (0, 0)
    assert counts(Kind.SOURCE, str(target)) == (0, 0)
    # The deferred hook ran first, once per beacon (its transaction marked each beacon); every
    # beacon is claimed to the batch's one ledger.
    applied = probe.load(probe_id)
    assert applied is not None
    assert applied.applied == 5
    stored = with_day_labels(client(), COUNTERS, [stored_item(item["id"]["S"]) for item in items])
    assert all(set(item["applied"]["SS"]) == {probe.TYPE_NAME} for item in stored)
    assert len({item["lg"]["S"] for item in stored}) == 1
    assert [ledger["state"]["S"] for ledger in ledgers()] == ["committed"]


def test_a_busy_entity_day_labels_its_later_beacons_on_themselves_and_counts_exactly(stream: Handler) -> None:
    """An entity's day item takes its beacons' labels while it stays within 1 KB (one write a
    hit), later ones are labelled on the beacon (the item must not grow with every hit); both are
    read back alike, counted once, and stay so when the batch comes again whole and in halves."""
    from webbugger.beacon_queries import beacons_between
    from webbugger.persons import DAY_ITEM_BYTES, item_bytes

    entity, source = "recipient:busy@example.com", "campaign:busy"
    total = 12
    ids = [
        store(entity=entity, source=source, at=NOON + timedelta(minutes=10 * n), mode="pixel")
        for n in range(total)
    ]
    assert stream(insert_event(ids), FakeContext()) == {"batchItemFailures": []}
    day = client().get_item(
        TableName=COUNTERS, Key={"pk": {"S": f"p#e#{entity}"}, "sk": {"S": NOON.date().isoformat()}}
    )["Item"]
    on_day = sorted(name.removeprefix("b#") for name in day if name.startswith("b#"))
    assert 2 <= len(on_day) < total
    assert on_day == ids[: len(on_day)]  # the first ones, while the item had room
    assert ["class" in stored_item(beacon_id) for beacon_id in ids] == [False] * len(on_day) + [True] * (
        total - len(on_day)
    )
    # The item as it was when the last label went on it: within one write unit.
    assert item_bytes({**day, "hits": {"SS": on_day}}) <= DAY_ITEM_BYTES

    first = figures(Kind.SOURCE, source, NOON.date())
    assert (first["total"], first["unique"], first["human"] + first["machine"]) == (total, 1, total)

    def check() -> None:
        assert figures(Kind.SOURCE, source, NOON.date()) == first

    check()
    listed = list(
        beacons_between(
            NOON - timedelta(hours=1), NOON + timedelta(days=1), kind=Kind.ENTITY, ref=Ref.parse(entity)
        )
    )
    assert sorted(beacon.id for beacon in listed) == ids
    assert sum(beacon.classification == "human" for beacon in listed) == first["human"]
    assert all(beacon.ledger and beacon.tally for beacon in listed)
    redeliver_every_shape(stream, ids[len(on_day) - 2 :], check)


def test_same_visitor_on_two_references_is_unique_on_each(stream: Handler) -> None:
    ids = [store(target="link:one"), store(target="link:two"), store(target="link:one")]
    assert stream(insert_event(ids), FakeContext()) == {"batchItemFailures": []}
    assert counts(Kind.TARGET, "link:one") == (2, 1)
    assert counts(Kind.TARGET, "link:two") == (1, 1)


def test_only_inserts_are_counted(stream: Handler) -> None:
    """The stream's MODIFY (the marks) and REMOVE (TTL) records are not hits."""
    beacon_id = store(target="link:mod")
    image = stored_item(beacon_id)
    event = batch(stream_record(image, "MODIFY"), stream_record(image, "REMOVE"))
    assert stream(event, FakeContext()) == {"batchItemFailures": []}
    assert counts(Kind.TARGET, "link:mod") == (0, 0)


# --- (2) replays ---------------------------------------------------------------------------------


def test_replaying_a_batch_changes_nothing(stream: Handler) -> None:
    ids = [store(target="link:x", user_agent=UA_A) for _ in range(3)]
    ids += [store(target="link:x", user_agent=UA_B) for _ in range(2)]
    event = insert_event(ids)

    assert stream(copy.deepcopy(event), FakeContext()) == {"batchItemFailures": []}
    assert counts(Kind.TARGET, "link:x") == (5, 2)
    before = sorted(map(json.dumps, all_counter_items()))

    # At least once: the same records again (their NewImage without the marks).
    for _ in range(2):
        assert stream(copy.deepcopy(event), FakeContext()) == {"batchItemFailures": []}
    assert counts(Kind.TARGET, "link:x") == (5, 2)
    assert sorted(map(json.dumps, all_counter_items())) == before


# --- (3) partial batch failures ------------------------------------------------------------------


def test_a_failing_record_is_reported_alone_and_counted_once_when_redelivered(stream: Handler) -> None:
    flaky = f"flaky-{uuid.uuid4().hex[:12]}"
    ok_a = store(
        target="link:partial", entity=f"{probe.TYPE_NAME}:ok-{uuid.uuid4().hex[:8]}", user_agent=UA_A
    )
    bad = store(target="link:partial", entity=f"{probe.TYPE_NAME}:{flaky}", user_agent=UA_B)
    ok_b = store(target="link:partial", user_agent=UA_A)
    records = [stream_record(stored_item(beacon_id)) for beacon_id in (ok_a, bad, ok_b)]

    response = stream(batch(*records), FakeContext())

    assert failures(response) == [sequence(records[1])]
    assert probe.CALLS[flaky] == 1
    # The two others, once: two people (an entity, and a visitor without one).
    assert counts(Kind.TARGET, "link:partial") == (2, 2)
    assert "lg" not in stored_item(bad)  # not claimed for counting

    # Lambda resumes a stream from the failed record: it and those after it come again.
    response = stream(batch(*(copy.deepcopy(r) for r in records[1:])), FakeContext())
    assert response == {"batchItemFailures": []}
    assert counts(Kind.TARGET, "link:partial") == (3, 3)
    # And once more, just the record that failed: counted once still.
    assert stream(batch(copy.deepcopy(records[1])), FakeContext()) == {"batchItemFailures": []}
    assert counts(Kind.TARGET, "link:partial") == (3, 3)
    applied = probe.load(flaky)
    assert applied is not None
    assert applied.applied == 1


def test_counting_that_fails_for_one_beacon_fails_only_its_record(
    stream: Handler, stream_module: ModuleType, monkeypatch: pytest.MonkeyPatch
) -> None:
    ids = [store(target="link:cfail", user_agent=agent) for agent in (UA_A, UA_B, UA_A)]
    poison = ids[1]
    real = stream_batch.claim
    attempts: list[str] = []

    def failing_once(beacon: Beacon, *args: Any) -> bool:
        attempts.append(beacon.id)
        if beacon.id == poison and attempts.count(poison) == 1:
            raise RuntimeError("beacons table unavailable")
        result: bool = real(beacon, *args)
        return result

    monkeypatch.setattr(stream_batch, "claim", failing_once)
    records = [stream_record(stored_item(beacon_id)) for beacon_id in ids]

    response = stream(batch(*records), FakeContext())
    assert failures(response) == [sequence(records[1])]
    assert counts(Kind.TARGET, "link:cfail") == (2, 1)

    assert stream(batch(copy.deepcopy(records[1])), FakeContext()) == {"batchItemFailures": []}
    assert counts(Kind.TARGET, "link:cfail") == (3, 2)
    assert stream(batch(*(copy.deepcopy(r) for r in records)), FakeContext()) == {"batchItemFailures": []}
    assert counts(Kind.TARGET, "link:cfail") == (3, 2)


def test_a_beacon_whose_processing_stopped_after_its_unique_claim_still_counts_unique(
    stream: Handler, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The person-day claim is made before the beacon is claimed for counting: a retry of the
    same beacon must find its own claim and still count the visitor, and a later beacon of that
    visitor not."""
    first, second = store(target="link:claimed"), store(target="link:claimed")
    real = stream_batch.claim

    def interrupted(beacon: Beacon, *args: Any) -> bool:
        if beacon.id == first:
            raise RuntimeError("after the person-day claim, before the beacon's own write")
        result: bool = real(beacon, *args)
        return result

    with monkeypatch.context() as patch:
        patch.setattr(stream_batch, "claim", interrupted)
        response = stream(insert_event([first]), FakeContext())
    assert len(failures(response)) == 1
    assert counts(Kind.TARGET, "link:claimed") == (0, 0)  # nothing committed

    assert stream(insert_event([second]), FakeContext()) == {"batchItemFailures": []}
    assert counts(Kind.TARGET, "link:claimed") == (1, 0)  # the unique claim is the first beacon's
    assert stream(insert_event([first]), FakeContext()) == {"batchItemFailures": []}
    assert counts(Kind.TARGET, "link:claimed") == (2, 1)  # its retry finds its own claim


# --- (4) visitors that cannot be told apart -----------------------------------------------------


def test_a_beacon_without_address_or_agent_counts_in_total_not_unique(stream: Handler) -> None:
    ids = [
        store(target="link:anon", ip=None, user_agent=None),
        store(target="link:anon", ip=None, user_agent=None),
        store(target="link:anon", ip="198.51.100.0", user_agent=UA_A),
    ]
    assert stream(insert_event(ids), FakeContext()) == {"batchItemFailures": []}
    assert counts(Kind.TARGET, "link:anon") == (3, 1)


def test_address_only_and_agent_only_visitors_are_visitors(stream: Handler) -> None:
    ids = [
        store(target="link:partial-id", ip="198.51.100.0", user_agent=None),
        store(target="link:partial-id", ip=None, user_agent=UA_A),
        store(target="link:partial-id", ip=None, user_agent=UA_A),
    ]
    assert stream(insert_event(ids), FakeContext()) == {"batchItemFailures": []}
    assert counts(Kind.TARGET, "link:partial-id") == (3, 2)


# --- (5) days ------------------------------------------------------------------------------------


def test_beacons_of_two_utc_days_land_in_two_day_rows(stream: Handler) -> None:
    late = datetime(2024, 3, 9, 23, 59, 59, 500_000, tzinfo=UTC)
    early = datetime(2024, 3, 10, 0, 0, 0, 250_000, tzinfo=UTC)
    ids = [
        store(target="link:days", at=late, user_agent=UA_A),
        store(target="link:days", at=late, user_agent=UA_B),
        store(target="link:days", at=early, user_agent=UA_A),  # the same visitor, the next day
    ]
    assert stream(insert_event(ids), FakeContext()) == {"batchItemFailures": []}

    rows = sorted(item["sk"]["S"] for item in all_counter_items() if item["pk"]["S"] == "c#target#link:days")
    assert rows == ["2024-03-09", "2024-03-10"]
    stats = daily_stats(Kind.TARGET, "link:days", date(2024, 3, 7), date(2024, 3, 12))
    assert [(d.day, d.total, d.unique) for d in stats.days] == [
        ("2024-03-07", 0, 0),
        ("2024-03-08", 0, 0),
        ("2024-03-09", 2, 2),
        ("2024-03-10", 1, 1),
        ("2024-03-11", 0, 0),
        ("2024-03-12", 0, 0),
    ]
    as_dict = stats.as_dict()
    assert (as_dict["from"], as_dict["to"]) == ("2024-03-07", "2024-03-12")
    # Visitor-days; the stream labelled the three browser hits human (clicks: no entity, so the
    # visitor is the person).
    assert as_dict["totals"] == {
        "total": 3,
        "unique": 3,
        "human": 3,
        "machine": 0,
        "unique_human_opens": 0,
        "unique_human_clicks": 3,
    }
    assert daily_stats(Kind.TARGET, "link:days", date(2024, 3, 10), date(2024, 3, 10)).totals.total == 1
    empty = daily_stats(Kind.TARGET, "link:never", date(2024, 3, 7), date(2024, 3, 9))
    assert [(d.day, d.total, d.unique, d.human, d.machine) for d in empty.days] == [
        (f"2024-03-0{n}", 0, 0, 0, 0) for n in (7, 8, 9)
    ]


def test_a_day_row_expires_with_the_counter_retention(stream: Handler) -> None:
    moment = datetime.now(UTC)
    beacon_id = store(target="link:ttl", at=moment)
    assert stream(insert_event([beacon_id]), FakeContext()) == {"batchItemFailures": []}
    retention = runtime.default_settings().counter_retention_days
    rows = [item for item in all_counter_items() if item["pk"]["S"].startswith("c#target#link:ttl")]
    assert len(rows) == 1
    assert int(rows[0]["expires"]["N"]) == expiry(moment, retention)


# --- (6) privacy ----------------------------------------------------------------------------------


def test_the_counters_table_holds_no_address_or_user_agent(track: Handler, stream: Handler) -> None:
    link = create_link(DESTINATION)
    claims = TokenClaims(mode=Mode.REDIRECT, target=Ref("link", link.id))
    path = tracking_url("https://t.example", claims, RING).removeprefix("https://t.example")
    for user_agent, ip in [(UA_A, IP_A), (UA_B, IP_B), (UA_A, IP_B)]:
        assert track(redirect_event(path, user_agent, ip), FakeContext())["statusCode"] == 302
    ids = [item["id"]["S"] for item in stored_items()]
    ids.append(store(target=f"link:{link.id}", ip="2001:db8:85a3::", user_agent="curl/8.5.0"))
    assert stream(insert_event(ids), FakeContext()) == {"batchItemFailures": []}
    assert counts(Kind.TARGET, f"link:{link.id}") == (4, 4)

    stored_ips = {item["ip"]["S"] for item in stored_items()}
    assert stored_ips == {"198.51.100.0", "192.0.2.0", "2001:db8:85a3::"}
    secrets = {
        IP_A,
        IP_B,
        *stored_ips,
        UA_A,
        UA_B,
        "curl/8.5.0",
        "CounterTestA",
        "CounterTestB",
        "198.51.100",
    }
    dump = json.dumps(all_counter_items())
    assert all_counter_items()  # counters and visitor markers were written
    for secret in secrets:
        assert secret not in dump, secret
    counted = {"total", "unique", "human", "machine", "unique_human_opens", "unique_human_clicks"}
    for item in all_counter_items():
        # Counters, batch ledgers, and person-days: their beacons' ids and their claims (named
        # by kind and reference, holding a beacon id).
        fixed = {"pk", "sk", "expires", "state", "hits", *counted}
        claims = {name for name in item if re.match(r"(u[tes]|h[oc][tes])#", name)}
        assert set(item) - fixed == claims, item


def test_visitor_markers_do_not_outlive_their_day(stream: Handler) -> None:
    moment = datetime(2024, 3, 9, 15, 0, tzinfo=UTC)
    beacon_id = store(target="link:marker", at=moment, ip="198.51.100.0", user_agent=UA_A)
    assert stream(insert_event([beacon_id]), FakeContext()) == {"batchItemFailures": []}
    (marker,) = [item for item in all_counter_items() if "ut#link:marker" in item]
    # Anyone holding the salt secret and the marker can still tell who it was (what a marker allows).
    guess = Beacon(ip="198.51.100.0", user_agent=UA_A)
    assert marker["pk"]["S"] == f"p#v#{visitor_key(guess, daily_salt(SALT, '2024-03-09'))}"
    assert marker["sk"]["S"] == "2024-03-09"
    assert marker["ut#link:marker"]["S"] == beacon_id
    end_of_day = datetime(2024, 3, 10, tzinfo=UTC)
    assert int(marker["expires"]["N"]) <= (end_of_day + timedelta(days=2)).timestamp()


# --- exactness ------------------------------------------------------------------------------------


def test_unique_visitors_are_exact_for_200_visitors(stream: Handler) -> None:
    visitors = [(f"10.{n // 250}.{n % 250}.0", f"Mozilla/5.0 Exact/{n}") for n in range(200)]
    hits = [visitor for n, visitor in enumerate(visitors) for _ in range(1 + (n % 5 == 0))]
    # Neighbours that differ in one field only are distinct visitors too.
    hits.append(("10.0.0.0", "Mozilla/5.0 Exact/1"))
    for start in range(0, len(hits), 100):  # the template's BatchSize
        ids = [store(target="link:exact", ip=ip, user_agent=agent) for ip, agent in hits[start : start + 100]]
        assert stream(insert_event(ids), FakeContext()) == {"batchItemFailures": []}
        # Counted beacons are dropped (as the TTL would, later): moto copies each table a
        # transaction touches, so a smaller beacons table keeps this test fast.
        for beacon_id in ids:
            key = {"pk": {"S": beacon_partition(beacon_id)}, "id": {"S": beacon_id}}
            client().delete_item(TableName=BEACONS, Key=key)

    assert counts(Kind.TARGET, "link:exact") == (len(hits), 201)


# --- key rotation ---------------------------------------------------------------------------------


def test_a_key_rotation_mid_day_keeps_uniques_exact(aws: None, stream: Handler) -> None:
    # The same visitor before and after the URL-signing keys rotate: one unique. The salt
    # derives from its own secret, which the rotation does not touch.
    first = store(target="link:rotate")
    assert stream(insert_event([first]), FakeContext()) == {"batchItemFailures": []}
    rotated = json.dumps({"current": "k2", "k1": "C" * 48, "k2": "D" * 48})
    boto3.client("secretsmanager", region_name="us-east-1").put_secret_value(
        SecretId=os.environ["SIGNING_SECRET_ARN"], SecretString=rotated
    )
    reset_caches()
    second = store(target="link:rotate")
    assert stream(insert_event([second]), FakeContext()) == {"batchItemFailures": []}
    assert counts(Kind.TARGET, "link:rotate") == (2, 1)


# --- (7) redelivery: every shape counts each beacon once ------------------------------------------

MPP = "Mozilla/5.0"  # Apple Mail Privacy Protection's prefetch
SAFARI = "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 Version/18.1 Mobile"
NOON = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def figures(kind: Kind, ref: str, day: date) -> dict[str, int]:
    totals: dict[str, int] = daily_stats(kind, ref, day, day).as_dict()["totals"]
    return totals


def mail_hits(tag: str) -> list[dict[str, Any]]:
    """One recipient's mail: Apple's prefetch of the pixel, the person's click an hour later (which
    makes that open human), another click ten minutes after."""
    person = {"entity": f"recipient:{tag}", "source": f"campaign:{tag}"}
    return [
        {**person, "mode": "pixel", "at": NOON, "user_agent": MPP, "ip": "17.58.97.0"},
        {**person, "target": f"link:{tag}", "at": NOON + timedelta(hours=1), "user_agent": SAFARI},
        {
            **person,
            "target": f"link:{tag}",
            "at": NOON + timedelta(hours=1, minutes=10),
            "user_agent": SAFARI,
        },
    ]


MAIL_SOURCE = {
    "unique_human_opens": 1,
    "unique_human_clicks": 1,
    "total": 3,
    "unique": 1,
    "human": 3,
    "machine": 0,
}
MAIL_LINK = {**MAIL_SOURCE, "unique_human_opens": 0, "total": 2, "human": 2}


def assert_mail_counted(tag: str) -> None:
    assert figures(Kind.SOURCE, f"campaign:{tag}", NOON.date()) == MAIL_SOURCE
    assert figures(Kind.TARGET, f"link:{tag}", NOON.date()) == MAIL_LINK


def redeliver_every_shape(stream: Handler, ids: list[str], check: Callable[[], None]) -> None:
    """The beacons' records again: whole, in bisected halves, and from each record on."""
    records = [stream_record(stored_item(beacon_id)) for beacon_id in ids]
    middle = len(records) // 2
    shapes = [records, records[:middle], records[middle:], *(records[n:] for n in range(1, len(records)))]
    distinct = {tuple(sequence(record) for record in shape): shape for shape in shapes}
    for shape in distinct.values():
        assert stream(batch(*(copy.deepcopy(r) for r in shape)), FakeContext()) == {"batchItemFailures": []}
        check()


@pytest.mark.parametrize("together", [False, True], ids=["one-by-one", "one-batch"])
def test_every_arrival_order_of_one_recipients_hits_counts_exactly(stream: Handler, together: bool) -> None:
    """Each order a sharded stream can deliver one mail's hits in: alone (a later hit not stored yet
    when an earlier one is processed) or in one batch (the open claimed for counting, then
    relabelled human by the click before the batch's counts commit). Then every redelivery."""
    for n, order in enumerate(itertools.permutations(range(3))):
        tag = f"order-{together}-{n}"
        specs = mail_hits(tag)
        made: dict[int, str] = {}
        for index in order:
            made[index] = store(**specs[index])
            if not together:
                assert stream(insert_event([made[index]]), FakeContext()) == {"batchItemFailures": []}
        if together:
            assert stream(insert_event([made[i] for i in order]), FakeContext()) == {"batchItemFailures": []}
        assert_mail_counted(tag)
        redeliver_every_shape(stream, [made[i] for i in order], partial(assert_mail_counted, tag))


class _LostCommitError(RuntimeError):
    """The batch's commit fails (the invocation ends before its counts are written)."""


@pytest.fixture
def first_commit_lost(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Makes the next batch commit fail; keeps its transaction, to commit it late afterwards."""
    from webbugger import ledger

    lost: list[Any] = []

    class LosingFirst(ledger.TransactWrite):
        def _commit(self) -> Any:
            if not lost:
                lost.append(self)
                raise _LostCommitError
            return super()._commit()

    monkeypatch.setattr(ledger, "TransactWrite", LosingFirst)
    return lost


@pytest.mark.parametrize("shape", ["whole", "halves"])
def test_a_batch_whose_counts_never_committed_counts_once_when_delivered_again(
    stream: Handler, first_commit_lost: list[Any], shape: str
) -> None:
    from pynamodb.exceptions import TransactWriteError
    from pynamodb.transactions import TransactWrite

    tag = f"lost-{shape}"
    ids = [store(**spec) for spec in mail_hits(tag)]
    ids += [
        store(target=f"link:{tag}", source=f"campaign:{tag}", user_agent=a, at=NOON) for a in (UA_A, UA_B)
    ]
    records = [stream_record(stored_item(beacon_id)) for beacon_id in ids]
    # The open is claimed, then relabelled human by the click in the same batch: its move is
    # counted at once, and its claim is lost with the commit.
    response = stream(batch(*records), FakeContext())
    assert failures(response) == [sequence(record) for record in records]
    assert figures(Kind.SOURCE, f"campaign:{tag}", NOON.date())["total"] == 0
    (lost,) = first_commit_lost

    parts = [records] if shape == "whole" else [records[:2], records[2:]]
    for part in parts:
        assert stream(batch(*(copy.deepcopy(r) for r in part)), FakeContext()) == {"batchItemFailures": []}
    # The mail's recipient, and two visitors clicking: three people, each a human click.
    expected_source = {**MAIL_SOURCE, "total": 5, "unique": 3, "human": 5, "unique_human_clicks": 3}
    expected_link = {**MAIL_LINK, "total": 4, "unique": 3, "human": 4, "unique_human_clicks": 3}
    assert figures(Kind.SOURCE, f"campaign:{tag}", NOON.date()) == expected_source
    assert figures(Kind.TARGET, f"link:{tag}", NOON.date()) == expected_link
    states = sorted(ledger["state"]["S"] for ledger in ledgers())
    assert states == ["aborted", *["committed"] * len(parts)]

    # The lost commit arrives after all (it was on the wire): refused, the ledger being aborted.
    with pytest.raises(TransactWriteError):
        TransactWrite._commit(lost)
    redeliver_every_shape(stream, ids, lambda: None)
    assert figures(Kind.SOURCE, f"campaign:{tag}", NOON.date()) == expected_source
    assert figures(Kind.TARGET, f"link:{tag}", NOON.date()) == expected_link


# --- the real local stack ---------------------------------------------------------------------------


def http_get(url: str, agent: str) -> int:
    """GET ``url`` over a fresh connection (no redirect followed); the status."""
    parts = urlsplit(url)
    assert parts.hostname == "127.0.0.1"
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.request(
            "GET", f"{parts.path}?{parts.query}" if parts.query else parts.path, headers={"User-Agent": agent}
        )
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def poll(check: Callable[[], Any], timeout: float = 15.0) -> Any:
    """The last result of ``check``, polled until it is truthy or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


@pytest.mark.ddblocal
def test_redirects_over_http_are_counted_by_the_stream(local_stack: RunningStack) -> None:
    assert local_stack.env.get("COUNTERS_TABLE")
    link_id = local_stack.create_link("https://example.com/counted-locally")  # also binds Counter here
    url = local_stack.mint(TokenClaims(mode=Mode.REDIRECT, target=Ref("link", link_id)))
    tag = uuid.uuid4().hex
    agent_a, agent_b = f"webbugger-counter-test/A-{tag}", f"webbugger-counter-test/B-{tag}"
    first_day = today()
    for agent in [agent_a] * 3 + [agent_b] * 2:
        assert http_get(url, agent) == 302
    last_day = today()  # the same, unless the hits straddled midnight UTC

    def seen() -> tuple[int, int]:
        totals = daily_stats(Kind.TARGET, f"link:{link_id}", first_day, last_day).totals
        return totals.total, totals.unique

    found = poll(lambda: seen() if seen() == (5, 2) else None)
    assert found == (5, 2), f"not within 15 s: counters of link:{link_id} are {seen()}"
    time.sleep(0.5)  # the marks the stream wrote are MODIFY records: not counted again
    assert seen() == (5, 2)
    stats = daily_stats(Kind.TARGET, f"link:{link_id}", first_day - timedelta(days=1), last_day)
    assert stats.days[0].total == 0 and stats.totals.total == 5
