"""Erased data never comes back, against the real local stack: after ``webbugger erase``, nothing
names the entity, and neither a stream record delivered late, nor the drain, nor ``webbugger
replay`` brings its beacons, counters or record back (the erasure's tombstone holds a keyed hash
of the entity, not its id)."""

from __future__ import annotations

import json
import secrets
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from webbugger.models import Beacon
from webbugger.modes import Mode
from webbugger.refs import Ref
from webbugger.spill import SPILL_KEY, SPILL_LOG_MESSAGE
from webbugger.tokens import TokenClaims
from webbugger_cli.local import state
from webbugger_cli.template import load_handler

if TYPE_CHECKING:
    from conftest import RunningStack

pytestmark = pytest.mark.ddblocal

ROOT = Path(__file__).resolve().parents[2]
WAIT_S = 15.0
TABLES = ("BeaconsTable", "CountersTable")


def _hit(stack: RunningStack, claims: TokenClaims, agent: str) -> None:
    import http.client
    from urllib.parse import urlsplit

    parts = urlsplit(stack.mint(claims))
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=10)
    try:
        conn.request("GET", parts.path, headers={"User-Agent": agent})
        assert conn.getresponse().status in (200, 302)
    finally:
        conn.close()


def naming(stack: RunningStack, token: str) -> list[dict[str, Any]]:
    """Every item of the stack's tables whose text holds ``token`` (the entity's id)."""
    found = []
    for logical_id in TABLES:
        kwargs: dict[str, Any] = {"TableName": state.table_name(logical_id), "ConsistentRead": True}
        for _ in range(1000):  # bounded: a session holds a few thousand items at most
            page = stack.client.scan(**kwargs)
            found += [item for item in page.get("Items", []) if token in json.dumps(item)]
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return found


def tombstones(stack: RunningStack) -> list[dict[str, Any]]:
    """The erasures' tombstones in the counters table."""
    items = stack.client.scan(TableName=state.table_name("CountersTable"), ConsistentRead=True)["Items"]
    return [item for item in items if item["pk"]["S"].startswith("x#")]


def wait_until(what: str, check: Any) -> Any:
    deadline = time.monotonic() + WAIT_S
    while not (found := check()):
        assert time.monotonic() < deadline, f"not within {WAIT_S:.0f}s: {what}"
        time.sleep(0.2)
    return found


def _entity(stack: RunningStack) -> tuple[str, str, str]:
    """A new recipient (its id, its reference) and a stored link to click."""
    token = f"gone-{secrets.token_hex(5)}"
    return token, f"recipient:{token}@example.com", stack.create_link("https://example.com/erased")


def _opened_and_clicked(stack: RunningStack, entity: str, link_id: str, agent: str) -> list[dict[str, Any]]:
    """An open and a click of ``entity``, processed by the stream (labelled); their items."""
    ref = Ref.parse(entity)
    _hit(stack, TokenClaims(mode=Mode.PIXEL, entity=ref, target=Ref("link", link_id)), agent)
    _hit(stack, TokenClaims(mode=Mode.REDIRECT, entity=ref, target=Ref("link", link_id)), agent)
    return wait_until(
        "the stream labelled both hits",
        lambda: (
            (found := stack.beacons(agent)) and len(found) == 2 and all("class" in b for b in found) and found
        ),
    )


def test_erase_leaves_nothing_that_names_the_entity(local_stack: RunningStack) -> None:
    token, entity, link_id = _entity(local_stack)
    _opened_and_clicked(local_stack, entity, link_id, f"erase-all/{token}")
    assert naming(local_stack, token)  # beacons, its day item with its claims, its record

    done = local_stack.cli("erase", entity, "--yes", "--json")
    assert done.returncode == 0, done.stderr

    assert naming(local_stack, token) == []
    stones = [item for item in tombstones(local_stack) if token not in json.dumps(item)]
    assert stones, "no tombstone left"


def test_a_stream_record_delivered_after_the_erasure_brings_nothing_back(local_stack: RunningStack) -> None:
    token, entity, link_id = _entity(local_stack)
    agent = f"erase-late/{token}"
    feed = local_stack.streams
    feed.pause()  # the hit's record waits in the stream while the entity is erased
    try:
        _hit(
            local_stack,
            TokenClaims(mode=Mode.PIXEL, entity=Ref.parse(entity), target=Ref("link", link_id)),
            agent,
        )
        (beacon,) = local_stack.beacons(agent)
        done = local_stack.cli("erase", entity, "--yes", "--json")
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["beacons"] == 1
    finally:
        feed.resume()
    wait_until(
        "the late record delivered",
        lambda: any(
            record["dynamodb"]["NewImage"]["id"]["S"] == beacon["id"]["S"]
            for delivery in list(feed.deliveries)
            if not delivery.failed
            for record in delivery.event["Records"]
        ),
    )
    # Neither its day item nor a count.
    assert naming(local_stack, token) == []
    stats = local_stack.cli("stats", f"link:{link_id}", "--json", "--days", "2")
    assert json.loads(stats.stdout)["totals"]["total"] == 0


def _drain(record: dict[str, Any]) -> dict[str, Any]:
    """The drain function's handler, fed one spill-queue message as its SQS event source would."""
    load_handler(ROOT / "functions" / "drain", "app.lambda_handler")
    module = sys.modules["webbugger_function_drain_app"]
    module.bind_beacons.cache_clear()
    event = {
        "Records": [
            {
                "messageId": "m1",
                "receiptHandle": "r1",
                "body": json.dumps({SPILL_KEY: record}),
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:{state.LOCAL_REGION}:123456789012:spill",
                "awsRegion": state.LOCAL_REGION,
            }
        ]
    }
    from moto_stack import FakeContext

    result: dict[str, Any] = module.lambda_handler(event, FakeContext(function_name="DrainFunction"))
    return result


def test_neither_the_drain_nor_replay_stores_a_beacon_made_before_the_erasure(
    local_stack: RunningStack, tmp_path: Path
) -> None:
    token, entity, link_id = _entity(local_stack)
    items = _opened_and_clicked(local_stack, entity, link_id, f"erase-spill/{token}")
    # The same beacons, as the spill queue and the track function's log would carry them.
    records = [Beacon.get(item["pk"]["S"], item["id"]["S"]).to_record() for item in items]
    done = local_stack.cli("erase", entity, "--yes")
    assert done.returncode == 0, done.stderr

    assert _drain(records[0]) == {"batchItemFailures": []}  # dropped, not retried
    log = tmp_path / "track.log"
    log.write_text(
        "".join(
            json.dumps({"level": "ERROR", "message": SPILL_LOG_MESSAGE, SPILL_KEY: record}) + "\n"
            for record in records
        )
    )
    replayed = local_stack.cli("replay", str(log))
    assert replayed.returncode == 0, replayed.stderr
    assert "0 stored" in replayed.stdout and "2 of erased entities (not stored)" in replayed.stdout, (
        replayed.stdout
    )

    time.sleep(1.5)  # what the stream would do with a stored beacon (a batch window)
    assert naming(local_stack, token) == []
