"""``POST /recount`` on the local stack's admin API: the stream's work for beacons it never
finished, once. A beacon whose stream record was lost (its processing never ran: the feed was
never given its record) is hooked, labelled and counted by one call, and by no other."""

from __future__ import annotations

import http.client
import json
import secrets
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest
from moto_stack import entity_figures_in
from webbugger.ids import new_beacon_id
from webbugger.models import Beacon, beacon_partition, put_beacon
from webbugger_cli.local import state

if TYPE_CHECKING:
    from conftest import RunningStack

pytestmark = pytest.mark.ddblocal


def post(url: str, body: Any) -> tuple[int, Any]:
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=60)
    try:
        conn.request("POST", parts.path, body=json.dumps(body), headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        conn.close()


def _counted(stack: RunningStack, link_id: str) -> int:
    stats = stack.cli("stats", f"link:{link_id}", "--json", "--days", "2")
    assert stats.returncode == 0, stats.stderr
    total: int = json.loads(stats.stdout)["totals"]["total"]
    return total


def test_recount_counts_a_beacon_whose_record_was_lost_exactly_once(local_stack: RunningStack) -> None:
    link_id = local_stack.create_link("https://example.com/recount")
    recipient = f"lost-{secrets.token_hex(4)}@example.com"
    started = datetime.now(UTC) - timedelta(seconds=2)
    # A beacon whose record the stream never processed, as a dead-lettered one: stored without a
    # reference (the stream's filter drops its INSERT), then given them (a MODIFY, dropped too).
    beacon_id = new_beacon_id()
    beacon = Beacon(
        pk=beacon_partition(beacon_id),
        id=beacon_id,
        created_at=datetime.now(UTC),
        mode="pixel",
        method="GET",
        ip="198.51.100.0",
        user_agent="recount-test/1.0",
    )
    assert put_beacon(beacon)
    beacon.update(actions=[Beacon.target.set(f"link:{link_id}"), Beacon.entity.set(f"recipient:{recipient}")])
    time.sleep(1.5)  # a batch window: the stream does nothing for it
    assert _counted(local_stack, link_id) == 0

    since = started.isoformat()
    for _ in range(2):  # the second call finds nothing left to do
        status, body = post(f"{local_stack.admin_url}/recount", {"from": since})
        assert status == 200, body
        assert body["failed"] == 0 and body["next_cursor"] is None
    assert _counted(local_stack, link_id) == 1
    figures = entity_figures_in(
        local_stack.client, state.table_name("CountersTable"), f"recipient:{recipient}"
    )
    assert figures is not None
    assert figures.opens == 1

    for bad in ({"from": "yesterday"}, {"cursor": "not-a-cursor"}, {"since": since}):
        status, body = post(f"{local_stack.admin_url}/recount", bad)
        assert status == 400, (bad, body)
