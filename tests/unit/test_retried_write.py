"""A beacon write whose first attempt lands but whose answer is lost (a read timeout): the SDK
retries it, and the retry's conditional put fails on the beacon's own id. That means the beacon
is stored, not that the write failed: no spill, no failure metric.

Found by bench/load.py: under load DynamoDB Local sometimes answers after the hot path's 0.4 s
read timeout, and such beacons were stored AND spilled (logged as failed writes).
moto in-process; the lost answer is made in moto's botocore hook, so botocore's own retry runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import boto3
import pytest
from botocore.exceptions import ReadTimeoutError
from moto import mock_aws
from moto.core.botocore_stubber import BotocoreStubber
from webbugger import runtime
from webbugger.modes import Mode
from webbugger.observability import metrics
from webbugger.registry import Registry
from webbugger.request import IncomingRequest
from webbugger.settings import Settings
from webbugger.tokens import TokenClaims, sign
from webbugger.tracking import Tracker
from webbugger_cli.template import load_template

if TYPE_CHECKING:
    from collections.abc import Iterator

    from webbugger.tokens import KeyRing

REGION = "eu-west-1"
TABLE = "retried-beacons"


@pytest.fixture
def settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """The beacons table in moto, and the hot path's settings bound to it (one retry)."""
    # mock_aws supplies fake credentials; nothing may point the SDK elsewhere.
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB"):
        monkeypatch.delenv(name, raising=False)
    found = Settings(beacons_table=TABLE, region=REGION)
    assert found.ddb_max_retries >= 1  # the hot path retries once: the case under test
    with mock_aws():
        spec = load_template().tables()["BeaconsTable"]
        boto3.client("dynamodb", region_name=REGION).create_table(TableName=TABLE, **spec)
        runtime.bind_core_models(found)
        yield found
    runtime.reset()  # the next user of the models binds them again


@pytest.fixture
def first_answer_lost(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """moto carries out every PutItem, but the client sees a read timeout instead of the first
    one's answer; the operations moto was asked for, in order."""
    original = BotocoreStubber.__call__
    seen: list[str] = []

    def stub(self: BotocoreStubber, event_name: str, request: Any, **kwargs: Any) -> Any:
        response = original(self, event_name, request, **kwargs)
        operation = event_name.rsplit(".", 1)[-1]
        seen.append(operation)
        if operation == "PutItem" and seen.count("PutItem") == 1:
            raise ReadTimeoutError(endpoint_url=request.url)
        return response

    monkeypatch.setattr(BotocoreStubber, "__call__", stub)
    return seen


def test_a_retried_write_whose_first_attempt_landed_is_stored_not_spilled(
    settings: Settings, first_answer_lost: list[str], ring: KeyRing, caplog: pytest.LogCaptureFixture
) -> None:
    tracker = Tracker(settings, Registry(), key_ring=lambda: ring)
    incoming = IncomingRequest(method="GET", headers={"user-agent": "UA"}, source_ip="203.0.113.9", query={})

    result = tracker.track(sign(TokenClaims(mode=Mode.PIXEL), ring), Mode.PIXEL, incoming)

    assert first_answer_lost.count("PutItem") == 2  # botocore retried after the lost answer
    items = boto3.client("dynamodb", region_name=REGION).scan(TableName=TABLE)["Items"]
    assert [item["id"]["S"] for item in items] == [result.beacon_id]
    assert result.stored is True
    assert not [
        r for r in caplog.records if "spilled_beacon" in r.__dict__ or "beacon write failed" in r.message
    ]
    assert "BeaconWriteFailures" not in metrics.metric_set


def test_a_write_that_fails_outright_is_still_spilled(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, ring: KeyRing, caplog: pytest.LogCaptureFixture
) -> None:
    """The control: every attempt times out and nothing lands, so the beacon takes the spill-over."""

    def timeout(self: BotocoreStubber, event_name: str, request: Any, **kwargs: Any) -> Any:
        raise ReadTimeoutError(endpoint_url=request.url)

    monkeypatch.setattr(BotocoreStubber, "__call__", timeout)
    tracker = Tracker(settings, Registry(), key_ring=lambda: ring)
    incoming = IncomingRequest(method="GET", headers={"user-agent": "UA"}, source_ip="203.0.113.9", query={})

    result = tracker.track(sign(TokenClaims(mode=Mode.PIXEL), ring), Mode.PIXEL, incoming)

    assert result.stored is False
    [logged] = [r.__dict__["spilled_beacon"] for r in caplog.records if "spilled_beacon" in r.__dict__]
    assert logged["id"] == result.beacon_id
    assert "BeaconWriteFailures" in metrics.metric_set
