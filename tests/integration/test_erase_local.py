"""Data-subject erasure against the real local stack: ``webbugger erase`` and ``POST /erase``.

An entity's beacons, its counters and day items (its unique claims and the list of its beacons)
and its record go; everybody else's stay.
"""

from __future__ import annotations

import http.client
import json
import secrets
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest
from webbugger.modes import Mode
from webbugger.refs import Ref
from webbugger.tokens import TokenClaims

if TYPE_CHECKING:
    from conftest import RunningStack

pytestmark = pytest.mark.ddblocal

PROCESSED_WITHIN_S = 15.0


def request(method: str, url: str, user_agent: str, body: Any = None) -> tuple[int, bytes]:
    parts = urlsplit(url)
    assert parts.hostname == "127.0.0.1"
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        data = None if body is None else json.dumps(body).encode()
        headers = {"User-Agent": user_agent} | ({} if body is None else {"Content-Type": "application/json"})
        conn.request(method, parts.path, body=data, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def open_pixel(stack: RunningStack, entity: str, user_agent: str) -> None:
    url = stack.mint(TokenClaims(mode=Mode.PIXEL, entity=Ref.parse(entity)))
    assert request("GET", url, user_agent)[0] == 200


def beacons_of(stack: RunningStack, entity: str) -> list[dict[str, Any]]:
    return [item for item in stack.beacons() if item.get("entity", {}).get("S") == entity]


def wait_processed(stack: RunningStack, entity: str, total: int) -> None:
    """Until the stream function has labelled the entity's ``total`` beacons (and listed them)."""
    deadline = time.monotonic() + PROCESSED_WITHIN_S
    while [item.get("class") is not None for item in beacons_of(stack, entity)] != [True] * total:
        assert time.monotonic() < deadline, f"{entity}'s beacons not processed in time"
        time.sleep(0.3)


def test_erase_removes_one_entity_and_nothing_else(local_stack: RunningStack) -> None:
    gone, kept = f"recipient:erase-{secrets.token_hex(4)}", f"recipient:keep-{secrets.token_hex(4)}"
    agent = f"erase-test/{secrets.token_hex(4)}"
    open_pixel(local_stack, gone, agent)
    open_pixel(local_stack, gone, agent)
    open_pixel(local_stack, kept, agent)
    wait_processed(local_stack, gone, 2)
    wait_processed(local_stack, kept, 1)

    refused = local_stack.cli("erase", gone)
    assert (refused.returncode, refused.stdout) == (1, "")
    assert len(refused.stderr.splitlines()) == 1 and "--yes" in refused.stderr
    assert len(beacons_of(local_stack, gone)) == 2

    done = local_stack.cli("erase", gone, "--yes", "--json")
    assert done.returncode == 0, done.stderr
    erased = json.loads(done.stdout)
    assert erased == {
        "entity": gone,
        "beacons": 2,
        "counters": 0,  # entities have no counters by default (COUNTED_KINDS)
        "visitor_marks": 1,  # its day item: one day
        "record": False,  # a recipient has no record of its own: its figures went with its day item
        "record_error": None,
        "sends": 0,  # no campaign was sent to it (test_admin_rewrite erases one that was)
    }
    assert beacons_of(local_stack, gone) == []
    # Nothing stored and nothing counted under its name: `stats` says so rather than print zeros.
    after = local_stack.cli("stats", gone, "--json", "--days", "2")
    assert (after.returncode, after.stdout) == (1, "")
    gone_id = gone.partition(":")[2]
    assert after.stderr.startswith(f"webbugger: error: no recipient entity with id {gone_id!r}")
    assert len(beacons_of(local_stack, kept)) == 1

    again = json.loads(local_stack.cli("erase", gone, "--yes", "--json").stdout)
    assert (again["beacons"], again["counters"], again["visitor_marks"], again["record"]) == (0, 0, 0, False)


def test_the_admin_api_erases_too(local_stack: RunningStack) -> None:
    entity = f"recipient:admin-erase-{secrets.token_hex(4)}"
    open_pixel(local_stack, entity, "erase-test/admin")
    wait_processed(local_stack, entity, 1)
    status, body = request("POST", f"{local_stack.admin_url}/erase", "erase-test", {"entity": entity})
    assert status == 200, body
    assert json.loads(body)["beacons"] == 1
    assert beacons_of(local_stack, entity) == []

    for bad in ({"entity": "recipient"}, {"entity": "nosuchtype:1"}, {"entity": "no colon"}, {}):
        status, body = request("POST", f"{local_stack.admin_url}/erase", "erase-test", bad)
        assert status == 400, (bad, body)


@pytest.mark.parametrize("entity", ["nosuchtype:1", "link:abc", "recipient"])
def test_erase_refuses_what_is_not_an_entity_in_one_line(local_stack: RunningStack, entity: str) -> None:
    result = local_stack.cli("erase", entity, "--yes")
    assert (result.returncode, result.stdout) == (1, "")
    assert len(result.stderr.splitlines()) == 1, result.stderr
