"""Classification in the stream function, against moto: labels stored on beacons, counters split
human from machine, and the per-entity rules (honeypot window, a click as evidence of an open)
give the same result whatever order the stream delivers the hits in, and on replays.

Beacons are stored as the track function stores them (with ``minted`` and ``hints``), then fed to
the stream function as INSERT records, in the orders a sharded stream can deliver them.
"""

from __future__ import annotations

import copy
import itertools
import json
import sys
import uuid
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import moto_stack
import pytest
from moto import mock_aws
from webbugger import runtime
from webbugger.counters import daily_stats
from webbugger.day_labels import reload
from webbugger.ids import epoch_ms, new_beacon_id
from webbugger.models import Beacon, beacon_partition, expiry
from webbugger.registry import Kind
from webbugger_cli.template import load_handler

if TYPE_CHECKING:
    from collections.abc import Iterator

    from moto_stack import Handler

ROOT = Path(__file__).resolve().parents[2]
BEACONS = "test-classify-beacons"
COUNTERS = "test-classify-counters"
RING_JSON = json.dumps({"current": "k1", "k1": "D" * 48})
STREAM_CODE_URI = ROOT / "functions" / "stream"
STREAM_MODULE = f"webbugger_function_{STREAM_CODE_URI.name}_app"
STREAM_ARN = f"arn:aws:dynamodb:us-east-1:123456789012:table/{BEACONS}/stream/2024-01-01T00:00:00.000"
SAFARI = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Mobile/15E148 Safari/604.1"
)
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
MPP = "Mozilla/5.0"
FIRST = "campaign:first"
HEIR = "campaign:heir"
DAY = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
_SEQUENCE = itertools.count(1)
FakeContext = partial(moto_stack.FakeContext, function_name="StreamFunction", aws_request_id="c1a55")


@pytest.fixture(scope="module")
def stream() -> Iterator[Handler]:
    """Fake AWS with the stack's tables and the stream function's environment; its handler, loaded
    anew (the one a session loaded before is put back afterwards). One per module: each test uses
    references of its own."""
    previous = sys.modules.pop(STREAM_MODULE, None)
    with pytest.MonkeyPatch.context() as monkeypatch, mock_aws():
        moto_stack.fake_aws_environment(monkeypatch)
        moto_stack.reset_caches()
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        names = moto_stack.template_table_names("test-classify-")
        names |= {"BeaconsTable": BEACONS, "CountersTable": COUNTERS}
        moto_stack.create_template_tables(dynamodb, names, streams=False)
        moto_stack.set_function_environment(monkeypatch, names, "TrackFunction", "StreamFunction")
        # The per-entity rules are checked on the entities' own counters, off by default.
        monkeypatch.setenv("COUNTED_KINDS", "target,entity,source")
        moto_stack.create_signing_secret(monkeypatch, RING_JSON)
        monkeypatch.setenv("WEBBUGGER_VISITOR_SALT", "classify-salt-" + "y" * 40)
        runtime.default_settings()
        try:
            yield load_handler(STREAM_CODE_URI, "app.lambda_handler")
        finally:
            sys.modules.pop(STREAM_MODULE, None)
            if previous is not None:
                sys.modules[STREAM_MODULE] = previous
            moto_stack.reset_caches()


def store(
    *,
    mode: str,
    entity: str,
    at: datetime,
    user_agent: str | None,
    source: str = "campaign:autumn",
    target: str = "link:offer",
    minted: datetime | None = None,
    hints: set[str] | None = None,
    ip: str = "81.2.69.0",
) -> Beacon:
    """A beacon as the track function stores it."""
    beacon_id = new_beacon_id(epoch_ms(at))
    beacon = Beacon(
        pk=beacon_partition(beacon_id),
        id=beacon_id,
        created_at=at,
        mode=mode,
        method="GET",
        target=target,
        entity=entity,
        source=source,
        ip=ip,
        user_agent=user_agent,
        minted=int((minted or at - timedelta(days=1)).timestamp()),
        hints=hints or None,
        expires=expiry(at, 400),
    )
    beacon.save()
    return beacon


def insert_record(beacon: Beacon) -> dict[str, Any]:
    """The INSERT record of a beacon as first written (no label, not counted)."""
    image = beacon.serialize()
    return {
        "eventID": uuid.uuid4().hex,
        "eventName": "INSERT",
        "eventVersion": "1.1",
        "eventSource": "aws:dynamodb",
        "awsRegion": "us-east-1",
        "eventSourceARN": STREAM_ARN,
        "dynamodb": {
            "Keys": {"pk": image["pk"], "id": image["id"]},
            "NewImage": copy.deepcopy(image),
            "SequenceNumber": f"{next(_SEQUENCE):021d}",
            "SizeBytes": len(json.dumps(image)),
            "StreamViewType": "NEW_IMAGE",
        },
    }


def deliver(stream: Handler, *records: dict[str, Any]) -> None:
    event = json.loads(json.dumps({"Records": list(records)}))
    assert stream(event, FakeContext()) == {"batchItemFailures": []}


def label(beacon: Beacon) -> tuple[str | None, list[str]]:
    stored = reload(beacon)
    assert stored is not None
    return stored.classification, list(stored.reasons or [])


def figures(kind: Kind, ref: str) -> dict[str, int]:
    day = DAY.date()
    totals = daily_stats(kind, ref, day, day).as_dict()["totals"]
    figures: dict[str, int] = totals
    return figures


def test_a_new_beacon_is_labelled_and_device_parsed_before_it_is_counted(stream: Handler) -> None:
    mpp = store(mode="pixel", entity="recipient:r1", at=DAY, user_agent=MPP, ip="17.58.97.0", source=FIRST)
    click = store(mode="redirect", entity="recipient:r2", at=DAY, user_agent=SAFARI, source=FIRST)
    deliver(stream, insert_record(mpp), insert_record(click))

    stored = reload(click)
    assert stored is not None
    assert (stored.classification, stored.browser, stored.os, stored.device) == (
        "human",
        "Mobile Safari",
        "iOS",
        "iPhone",
    )
    assert label(mpp) == ("privacy-prefetch", ["ua:apple-mpp"])
    assert figures(Kind.SOURCE, FIRST) == {
        "unique_human_opens": 0,
        "unique_human_clicks": 1,
        "total": 2,
        "unique": 2,
        "human": 1,
        "machine": 1,
    }

    # A scanner's click seconds after an email was sent, from a cloud address, is a machine's.
    sent = DAY
    scanner = store(
        mode="redirect",
        entity="recipient:r3",
        at=sent + timedelta(seconds=2),
        user_agent=CHROME,
        minted=sent,
        hints={"email"},
        ip="3.91.174.0",
    )
    deliver(stream, insert_record(scanner))
    assert label(scanner) == ("security-scanner", ["timing:2s", "cloud:aws", "lang:none"])
    assert figures(Kind.ENTITY, "recipient:r3")["machine"] == 1


def scenario(entity: str) -> list[dict[str, Any]]:
    """An Apple Mail reader's mail: the MPP prefetch at delivery, a click an hour later by the
    person (the beacons' fields, stored when they "arrive")."""
    return [
        {"mode": "pixel", "entity": entity, "at": DAY, "user_agent": MPP, "ip": "17.58.97.0"},
        {"mode": "redirect", "entity": entity, "at": DAY + timedelta(hours=1), "user_agent": SAFARI},
    ]


def arrive(stream: Handler, specs: list[dict[str, Any]], order: tuple[int, ...]) -> list[Beacon]:
    """Store each hit and deliver it at once, in ``order``: a later hit is not in the table yet
    when an earlier one is processed (the stream's worst case). The beacons, in ``specs`` order."""
    made: dict[int, Beacon] = {}
    for index in order:
        made[index] = store(**specs[index])
        deliver(stream, insert_record(made[index]))
    return [made[index] for index in range(len(specs))]


def test_a_click_upgrades_the_proxy_open_whatever_the_arrival_order(stream: Handler) -> None:
    for n, order in enumerate(itertools.permutations(range(2))):
        entity = f"recipient:evidence-{n}"
        opened, clicked = arrive(stream, scenario(entity), order)
        assert label(clicked) == ("human", [])
        assert label(opened) == ("human", ["ua:apple-mpp", f"click:{clicked.id}"])
        assert figures(Kind.ENTITY, entity) == {
            "unique_human_opens": 1,
            "unique_human_clicks": 1,
            "total": 2,
            "unique": 1,  # one person: the recipient, whichever agent fetched for them
            "human": 2,
            "machine": 0,
        }, order


def test_a_honeypot_hit_makes_the_hits_around_it_machine_whatever_the_arrival_order(
    stream: Handler,
) -> None:
    expected = {
        "unique_human_opens": 0,
        "unique_human_clicks": 0,
        "total": 3,
        "unique": 1,
        "human": 0,
        "machine": 3,
    }
    for n, order in enumerate(itertools.permutations(range(3))):
        entity = f"recipient:honeypot-{n}"
        # ...and a gateway following the honeypot link a second after that click.
        specs = [
            *scenario(entity),
            {
                "mode": "redirect",
                "entity": entity,
                "at": DAY + timedelta(hours=1, seconds=1),
                "user_agent": SAFARI,
                "hints": {"honeypot"},
            },
        ]
        beacons = arrive(stream, specs, order)
        opened, clicked, trap = beacons
        assert label(trap) == ("security-scanner", ["honeypot"]), order
        assert label(clicked) == ("security-scanner", ["honeypot-window"]), order
        # The click it vouched for was the scanner's: the open is Apple's prefetch again.
        assert label(opened) == ("privacy-prefetch", ["ua:apple-mpp"]), order
        assert figures(Kind.ENTITY, entity) == expected, order

        # Replaying the whole batch changes nothing.
        deliver(stream, *(insert_record(beacon) for beacon in beacons))
        assert figures(Kind.ENTITY, entity) == expected, order


def test_a_relabelled_first_human_hit_hands_its_unique_mark_to_the_next(stream: Handler) -> None:
    entity = "recipient:heir"
    first = store(mode="redirect", entity=entity, at=DAY, user_agent=SAFARI, source=HEIR)
    second = store(
        mode="redirect", entity=entity, at=DAY + timedelta(minutes=30), user_agent=CHROME, source=HEIR
    )
    deliver(stream, insert_record(first), insert_record(second))
    assert figures(Kind.SOURCE, HEIR)["unique_human_clicks"] == 1

    trap = store(
        mode="redirect",
        entity=entity,
        at=DAY + timedelta(seconds=1),
        user_agent=SAFARI,
        hints={"honeypot"},
        source=HEIR,
    )
    deliver(stream, insert_record(trap))
    assert label(first)[0] == "security-scanner"
    assert label(second)[0] == "human"
    # The person still clicked once that day: the second click now holds the day's mark.
    after = figures(Kind.SOURCE, HEIR)
    assert (after["unique_human_clicks"], after["human"], after["machine"]) == (1, 1, 2)
