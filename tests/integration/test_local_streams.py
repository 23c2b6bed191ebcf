"""The local stack's stream feed: beacons → DynamoDB Local's stream → the stream function → deferred hooks.

Hits go over real HTTP to the local server; the stream function is invoked by the feed
(webbugger_cli.local.streams), as the event source mapping would in AWS. The ``probe`` entity
comes from a test plugin (tests/integration/stream_test_plugins/probe.py) whose table exists only
in the plugin, so these tests also show that the local stack makes plugins' own tables.
"""

from __future__ import annotations

import http.client
import json
import time
import uuid
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest
from moto_stack import entity_figures_in
from stream_test_plugins import probe
from webbugger import runtime
from webbugger.modes import Mode
from webbugger.refs import Ref
from webbugger.registry import Kind
from webbugger.tokens import TokenClaims
from webbugger_cli.local import state
from webbugger_cli.local.stream_delivery import read_dead_letters
from webbugger_cli.local.stream_records import sequence_number
from webbugger_cli.local.stream_sources import StreamConfigError, stream_sources
from webbugger_cli.local.streams import StreamFeed
from webbugger_cli.template import Template, load_template

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from conftest import RunningStack

pytestmark = pytest.mark.ddblocal

WAIT_S = 10.0
PROBES_TABLE = state.table_name(probe.TABLE_VARIABLE)
STREAM_FUNCTION = "StreamFunction"


def hit(url: str, agent: str) -> int:
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


def wait_for(what: str, check: Callable[[], Any], timeout: float = WAIT_S) -> Any:
    """Poll ``check`` until it returns something truthy (bounded); fail with ``what`` otherwise."""
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found:
            return found
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout:.0f}s: {what}")
        time.sleep(0.1)


def applied(stack: RunningStack, probe_id: str) -> int | None:
    """The probe's ``applied`` count (None while it does not exist)."""
    item = stack.client.get_item(TableName=PROBES_TABLE, Key={"id": {"S": probe_id}}, ConsistentRead=True)
    found = item.get("Item")
    return None if found is None else int(found.get("applied", {}).get("N", "0"))


def pixel_beacon(stack: RunningStack, entity: Ref) -> str:
    """Hit a pixel naming ``entity``; the stored beacon's id."""
    agent = f"webbugger-stream-test/{uuid.uuid4().hex}"
    assert hit(stack.mint(TokenClaims(mode=Mode.PIXEL, entity=entity)), agent) == 200
    beacons = stack.beacons(agent)
    assert len(beacons) == 1
    beacon_id: str = beacons[0]["id"]["S"]
    return beacon_id


def delivered_records(stack: RunningStack, beacon_id: str) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(event, record) for every delivery by the feed that carried the beacon, oldest first."""
    return [
        (delivery.event, record)
        for delivery in list(stack.streams.deliveries)
        for record in delivery.event["Records"]
        if record["dynamodb"]["NewImage"]["id"]["S"] == beacon_id
    ]


def beacon_item(stack: RunningStack, beacon_id: str) -> dict[str, Any]:
    """The stored beacon item (raw form)."""
    found = [item for item in stack.beacons() if item["id"]["S"] == beacon_id]
    assert len(found) == 1
    return found[0]


def new_id(prefix: str = "") -> str:
    return f"{prefix}{uuid.uuid4().hex[:16]}"


def test_the_feed_reads_the_templates_stream_event(local_stack: RunningStack) -> None:
    (source,) = local_stack.streams.sources
    assert (source.function, source.event, source.table) == (STREAM_FUNCTION, "NewBeacons", "BeaconsTable")
    assert source.event_names == frozenset({"INSERT"})
    assert (source.batch_size, source.max_retries, source.report_item_failures) == (100, -1, True)
    # Retried for an hour in AWS, whatever the count; locally for the feed's cap at most.
    assert source.max_record_age_s == 3600
    assert local_stack.streams.record_age_cap_s < 15
    # The plugin's table, declared only by the plugin, exists locally and is named for the functions.
    assert local_stack.env[probe.TABLE_VARIABLE] == PROBES_TABLE
    assert local_stack.client.describe_table(TableName=PROBES_TABLE)["Table"]["TableStatus"] == "ACTIVE"
    # Tables template.yaml defines keep their template names.
    assert local_stack.env["COUNTERS_TABLE"] == state.table_name("CountersTable")


def test_deferred_hook_runs_once_from_the_stream(local_stack: RunningStack) -> None:
    probe_id = new_id()
    beacon_id = pixel_beacon(local_stack, Ref(probe.TYPE_NAME, probe_id))

    wait_for("the deferred hook applied the beacon", lambda: applied(local_stack, probe_id) == 1)
    marks = wait_for(
        "the beacon marked applied", lambda: beacon_item(local_stack, beacon_id).get("applied", {}).get("SS")
    )
    assert marks == [probe.TYPE_NAME]
    # The mark is a MODIFY, filtered out: the beacon reached the function once, and stays applied once.
    # (The delivery is recorded when the function returns: after the hook, it labels and counts.)
    wait_for("the delivery recorded", lambda: delivered_records(local_stack, beacon_id))
    time.sleep(1.0)
    assert len(delivered_records(local_stack, beacon_id)) == 1
    assert applied(local_stack, probe_id) == 1
    assert probe.CALLS[probe_id] == 1


def test_replayed_records_are_not_applied_twice(local_stack: RunningStack) -> None:
    probe_id = new_id()
    beacon_id = pixel_beacon(local_stack, Ref(probe.TYPE_NAME, probe_id))
    wait_for("the deferred hook applied the beacon", lambda: applied(local_stack, probe_id) == 1)
    # The delivery is logged once the whole batch returns (the counters come after the hook).
    event, record = wait_for("the delivery", lambda: delivered_records(local_stack, beacon_id))[0]

    # The stream delivers at least once: the same records again, straight to the handler.
    result = local_stack.api.invoke(STREAM_FUNCTION, json.loads(json.dumps(event)))

    assert result == {"batchItemFailures": []}
    assert probe.CALLS[probe_id] == 2  # the hook ran again, but its transaction was refused
    assert applied(local_stack, probe_id) == 1
    assert record["eventSource"] == "aws:dynamodb"
    assert record["awsRegion"] == state.LOCAL_REGION
    assert f":table/{local_stack.beacons_table}/stream/" in record["eventSourceARN"]
    assert set(record["dynamodb"]) >= {
        "Keys",
        "NewImage",
        "SequenceNumber",
        "SizeBytes",
        "StreamViewType",
        "ApproximateCreationDateTime",
    }


def test_a_failing_record_fails_and_is_retried_alone(local_stack: RunningStack) -> None:
    ok_id, flaky_id, boom_id = new_id(), new_id("flaky-"), new_id("boom-")
    feed = local_stack.streams
    feed.pause()  # the three beacons reach the function in one batch
    ok_beacon = pixel_beacon(local_stack, Ref(probe.TYPE_NAME, ok_id))
    flaky_beacon = pixel_beacon(local_stack, Ref(probe.TYPE_NAME, flaky_id))
    boom_beacon = pixel_beacon(local_stack, Ref(probe.TYPE_NAME, boom_id))
    feed.resume()

    def dead_letter() -> list[dict[str, Any]]:
        return [
            line
            for line in read_dead_letters(local_stack.state_dir)
            if line["record"]["dynamodb"]["NewImage"]["id"]["S"] == boom_beacon
        ]

    (letter,) = wait_for("the poison record dead-lettered", dead_letter, timeout=15)
    assert applied(local_stack, ok_id) == 1
    assert applied(local_stack, flaky_id) == 1  # failed once, succeeded on its retry
    assert probe.CALLS[flaky_id] == 2
    assert applied(local_stack, boom_id) is None or applied(local_stack, boom_id) == 0
    assert letter["attempts"] >= 3  # retried until the feed's record age cap ran out
    assert letter["function"] == STREAM_FUNCTION

    # First delivery: all three together; then only what failed; then the poison record alone.
    boom_events = [event for event, _ in delivered_records(local_stack, boom_beacon)]
    assert len(boom_events) == letter["attempts"]
    ids = [[r["dynamodb"]["NewImage"]["id"]["S"] for r in event["Records"]] for event in boom_events]
    assert ids[0] == [ok_beacon, flaky_beacon, boom_beacon]
    assert ids[1] == [flaky_beacon, boom_beacon]
    assert all(batch == [boom_beacon] for batch in ids[2:])
    assert len(delivered_records(local_stack, ok_beacon)) == 1

    # Straight to the handler: only the failing record is reported, the other is applied once.
    records = {r["dynamodb"]["NewImage"]["id"]["S"]: r for r in boom_events[0]["Records"]}
    event = {"Records": [records[ok_beacon], records[boom_beacon]]}
    result = local_stack.api.invoke(STREAM_FUNCTION, json.loads(json.dumps(event)))
    assert result == {"batchItemFailures": [{"itemIdentifier": sequence_number(records[boom_beacon])}]}
    assert applied(local_stack, ok_id) == 1


def test_recipient_counts_an_open_and_a_click(local_stack: RunningStack) -> None:
    if not runtime.default_registry().has(Kind.ENTITY, "recipient"):
        pytest.skip("the built-in recipient entity is not registered (webbugger_plugins not loaded)")
    recipient_id = new_id()
    entity = Ref("recipient", recipient_id)
    link_id = local_stack.create_link("https://example.com/from-the-stream-test")
    agent = f"webbugger-stream-test/{uuid.uuid4().hex}"
    assert hit(local_stack.mint(TokenClaims(mode=Mode.PIXEL, entity=entity)), agent) == 200
    redirect = local_stack.mint(TokenClaims(mode=Mode.REDIRECT, target=Ref("link", link_id), entity=entity))
    assert hit(redirect, agent) == 302

    def counts() -> tuple[int, int] | None:
        # Folded from the recipient's day items, as the recipient type's load() does.
        figures = entity_figures_in(local_stack.client, state.table_name("CountersTable"), str(entity))
        if figures is None:
            return None
        found = (figures.opens, figures.clicks)
        return found if found == (1, 1) else None

    assert wait_for("the recipient's open and click counted", counts) == (1, 1)
    time.sleep(0.5)
    assert counts() == (1, 1)
    # What `entity show` prints: the same figures, read by the recipient type's load().
    shown = local_stack.cli("entity", "show", str(entity), "--json")
    assert shown.returncode == 0, shown.stderr
    record = json.loads(shown.stdout)
    assert (record["id"], record["opens"], record["clicks"]) == (recipient_id, 1, 1)
    assert record["first_open"] is not None and record["first_click"] is not None


def test_a_restarted_feed_resumes_where_it_stopped(local_stack: RunningStack, tmp_path: Path) -> None:
    """Positions are saved: a new feed on the same state dir neither replays nor loses records."""
    seen: list[str] = []

    def capture(function: str, event: dict[str, Any]) -> dict[str, Any]:
        seen.extend(r["dynamodb"]["NewImage"]["id"]["S"] for r in event["Records"])
        return {"batchItemFailures": []}

    template = load_template()
    before = pixel_beacon(local_stack, Ref(probe.TYPE_NAME, new_id()))
    first = StreamFeed.from_template(template, local_stack.dynamodb_endpoint, capture, tmp_path).start()
    try:
        # TRIM_HORIZON the first time: every beacon still in the stream, this one included.
        wait_for("the first feed reads the stream", lambda: before in seen)
    finally:
        first.stop()
    read_first = len(seen)
    while_stopped = pixel_beacon(local_stack, Ref(probe.TYPE_NAME, new_id()))

    second = StreamFeed.from_template(template, local_stack.dynamodb_endpoint, capture, tmp_path).start()
    try:
        wait_for("the second feed reads what was written while stopped", lambda: while_stopped in seen)
        time.sleep(0.5)
    finally:
        second.stop()
    again = seen[read_first:]
    assert before not in again
    assert again.count(while_stopped) == 1


def _template_with(tmp_path: Path, event_properties: dict[str, Any]) -> Template:
    """template.yaml with the stream event's properties replaced."""
    template = load_template()
    path = tmp_path / "template.yaml"
    path.write_text(template.path.read_text())
    changed = Template(path)
    event = changed.resources[STREAM_FUNCTION]["Properties"]["Events"]["NewBeacons"]
    event["Properties"] = {**event["Properties"], **event_properties}
    return changed


@pytest.mark.parametrize(
    "pattern",
    [
        '{"dynamodb": {"NewImage": {"entity": {"S": [{"prefix": "recipient:"}]}}}}',
        '{"eventName": [{"anything-but": ["REMOVE"]}]}',
        '{"eventName": ["INSERT"], "awsRegion": ["us-east-1"]}',
    ],
)
def test_filters_the_feed_cannot_reproduce_are_refused(tmp_path: Path, pattern: str) -> None:
    template = _template_with(tmp_path, {"FilterCriteria": {"Filters": [{"Pattern": pattern}]}})
    with pytest.raises(StreamConfigError, match="not supported locally"):
        stream_sources(template)


def test_event_name_filters_add_up(tmp_path: Path) -> None:
    filters = [{"Pattern": '{"eventName": ["INSERT"]}'}, {"Pattern": '{"eventName": ["REMOVE"]}'}]
    template = _template_with(tmp_path, {"FilterCriteria": {"Filters": filters}, "MaximumRetryAttempts": -1})
    (source,) = stream_sources(template)
    assert source.event_names == frozenset({"INSERT", "REMOVE"})
    assert source.accepts({"eventName": "REMOVE"})
    assert not source.accepts({"eventName": "MODIFY"})
    assert source.max_retries == -1  # until the record expires (AWS); the feed's age cap locally
    assert source.max_record_age_s == 3600  # the template's


def test_the_feed_drops_a_beacon_with_no_reference_as_the_template_filter_says() -> None:
    (source,) = stream_sources(load_template())
    plain = {"id": {"S": "01ABC"}, "pk": {"S": "2026-12-03#1"}, "mode": {"S": "pixel"}}
    assert not source.accepts({"eventName": "INSERT", "dynamodb": {"NewImage": plain}})
    for name in ("target", "entity", "source"):
        image = {**plain, name: {"S": "campaign:x"}}
        assert source.accepts({"eventName": "INSERT", "dynamodb": {"NewImage": image}}), name
        assert not source.accepts({"eventName": "MODIFY", "dynamodb": {"NewImage": image}}), name
    assert source.batching_window_s == 1.0  # the template's 60 s, capped locally
