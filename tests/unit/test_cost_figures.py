"""The cost model's measured log figure is what the track function really writes per hit.

The track function's handler runs in-process against moto (template.yaml's tables and the
signing secret, as tests/integration/moto_stack.py sets them up); what it writes per pixel at the
log level template.yaml gives it is what CloudWatch Logs ingests from it (Lambda's own START and
REPORT lines are off: its LoggingConfig sets SystemLogLevel WARN).
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import logging
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import boto3
import pytest
from moto import mock_aws
from webbugger import runtime
from webbugger.minting import tracking_url
from webbugger.modes import Mode
from webbugger.refs import Ref
from webbugger.tokens import KeyRing, TokenClaims
from webbugger_cli.commands import cost_inputs

if TYPE_CHECKING:
    from collections.abc import Iterator
    from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]
RING_JSON = json.dumps({"current": "k1", "k1": "k1-secret-" + "a" * 38})
BROWSER = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)


def _moto_stack() -> ModuleType:
    name = "moto_stack"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "tests" / "integration" / "moto_stack.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def track(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    stack = _moto_stack()
    stack.fake_aws_environment(monkeypatch)
    stack.reset_caches()
    with mock_aws():
        names = stack.template_table_names("cost-")
        stack.create_template_tables(boto3.client("dynamodb", region_name=stack.REGION), names)
        stack.set_function_environment(monkeypatch, names, "TrackFunction")
        stack.create_signing_secret(monkeypatch, RING_JSON)
        runtime.default_settings()
        yield stack
        stack.reset_caches()


@contextlib.contextmanager
def _written() -> Iterator[io.StringIO]:
    """Everything the track function writes while in this block, as Lambda would ingest it: its EMF
    records (printed) and its Logger's lines, at the level template.yaml gives the function."""
    from webbugger.observability import logger

    written = io.StringIO()
    handler = logger.registered_handler
    assert isinstance(handler, logging.StreamHandler)
    previous_stream, previous_level = handler.setStream(written), logger.log_level
    logger.setLevel(os.environ["POWERTOOLS_LOG_LEVEL"])  # the fixture set the function's environment
    try:
        with contextlib.redirect_stdout(written):
            yield written
    finally:
        handler.setStream(previous_stream)
        logger.setLevel(previous_level)


def _event(stack: Any, claims: TokenClaims) -> dict[str, Any]:
    path = tracking_url("https://t.example", claims, KeyRing.from_json(RING_JSON)).removeprefix(
        "https://t.example"
    )
    return cast(
        "dict[str, Any]",
        stack.http_event(
            path,
            headers={"user-agent": BROWSER, "accept-language": "en-GB"},
            source_ip="203.0.113.9",
            request_id="r",
        ),
    )


def _lines_per_hit(stack: Any, event: dict[str, Any], status: int, hits: int = 3) -> list[list[str]]:
    handler = stack.load_track_handler()
    lines = []
    for _ in range(hits):
        with _written() as written:
            answer = handler(event, stack.FakeContext())
        assert answer["statusCode"] == status
        lines.append(written.getvalue().splitlines())
    return lines


def test_track_log_bytes_per_pixel_is_measured(track: Any) -> None:
    recorded = cost_inputs.load_hit_figures()["track_log_bytes"]
    assert recorded["kind"] == "measured"
    plain = _lines_per_hit(track, _event(track, TokenClaims(mode=Mode.PIXEL)), 200)
    with_source = _lines_per_hit(
        track,
        _event(track, TokenClaims(mode=Mode.PIXEL, source=Ref("campaign", "spring"), ignore_errors=True)),
        200,
    )
    # A hit recorded as it should be writes nothing at the function's level: no log line, no EMF
    # record (Lambda's Invocations metric counts hits).
    assert plain and with_source
    assert all(lines == [] for lines in plain + with_source), plain + with_source
    assert recorded["value"] == 0


def test_at_its_log_level_the_track_function_counts_invalid_hits_and_still_logs_spilled_beacons(
    track: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from webbugger import spill, tracking

    # A tampered token: 404, counted, not logged one by one.
    event = _event(track, TokenClaims(mode=Mode.PIXEL))
    event["rawPath"] = event["rawPath"].replace(".gif", "x.gif")
    ((line,),) = _lines_per_hit(track, event, 404, hits=1)
    assert json.loads(line)["InvalidRequests"] == [1.0]

    # A write the table refuses, and no spill queue: the beacon's record is in the log, whole.
    def refused(beacon: Any) -> None:
        raise RuntimeError("table unavailable")

    monkeypatch.setattr(tracking, "put_beacon", refused)
    ((*logged, metrics),) = _lines_per_hit(track, _event(track, TokenClaims(mode=Mode.PIXEL)), 200, hits=1)
    records = [record for record in map(spill.record_from_log_line, logged) if record is not None]
    assert len(records) == 1
    assert records[0]["mode"] == "pixel"
    assert json.loads(metrics)["BeaconsLogged"] == [1.0]


# --- the DynamoDB calls of a hit, track and stream function, counted from the calls they make ---

STREAM_CODE_URI = ROOT / "functions" / "stream"
STREAM_MODULE = f"webbugger_function_{STREAM_CODE_URI.name}_app"
WRITES = {"PutItem", "UpdateItem", "DeleteItem"}
OUT_OF_DATE = (
    "the DynamoDB calls of a hit changed: put the counted units in "
    "cli/webbugger_cli/data/hits.json, then docs/cost.md's table "
    "(uv run webbugger cost --hits 1000000 --markdown)"
)
# Issue 13's write-unit budget per hit, amortised over a batch of 100 hits of one campaign.
BUDGET = {"pixel": 2, "open": 5, "click": 6}
BATCH = 100


class _Calls:
    """Every DynamoDB call PynamoDB and boto3 make, by wrapping botocore's one entry point."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def wrap(self, original: Any) -> Any:
        def call(client: Any, operation: str, params: dict[str, Any]) -> Any:
            if client.meta.service_model.service_name == "dynamodb":
                self.calls.append((operation, params))
            return original(client, operation, params)

        return call


def _write_units(calls: list[tuple[str, dict[str, Any]]]) -> float:
    """Write request units of ``calls`` by DynamoDB's rules for items under 1 KB: 1 a standard
    write, 2 a transactional one (a condition check too). The tables have no secondary index
    (checked below), so a write costs no index entry."""
    units = 0.0
    for operation, params in calls:
        if operation in WRITES:
            units += 1
        elif operation == "TransactWriteItems":
            units += 2 * len(params["TransactItems"])
    return units


def _read(params: dict[str, Any]) -> float:
    return 1.0 if params.get("ConsistentRead") else 0.5


def _read_units(calls: list[tuple[str, dict[str, Any]]]) -> float:
    """Read request units of ``calls`` for items under 4 KB: 1 a strongly consistent read, 0.5 an
    eventually consistent one (a Query of one small page likewise; BatchGetItem per key)."""
    units = 0.0
    for operation, params in calls:
        if operation in ("GetItem", "Query"):
            units += _read(params)
        elif operation == "BatchGetItem":
            units += sum(len(request["Keys"]) * _read(request) for request in params["RequestItems"].values())
    return units


@dataclass(frozen=True)
class _Units:
    track_writes: float
    stream_writes: float
    stream_reads: float


@pytest.fixture
def stream_stack(track: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The track fixture's fake AWS with the stream function's environment too, and its handler."""
    from webbugger_cli.template import load_handler
    from webbugger_plugins.campaign import create_campaign
    from webbugger_plugins.link import create_link

    names = track.template_table_names("cost-")
    track.set_function_environment(monkeypatch, names, "TrackFunction", "StreamFunction")
    monkeypatch.setenv("WEBBUGGER_VISITOR_SALT", "visitor-salt-" + "x" * 40)
    runtime.reset()
    runtime.default_settings()
    create_link("https://example.com/sale", "sale")
    create_campaign("spring")
    previous = sys.modules.pop(STREAM_MODULE, None)
    try:
        yield load_handler(STREAM_CODE_URI, "app.lambda_handler"), names
    finally:
        sys.modules.pop(STREAM_MODULE, None)
        if previous is not None:
            sys.modules[STREAM_MODULE] = previous


def _claims(profile: str, count: int, tag: str) -> list[TokenClaims]:
    """``count`` hits of a profile (data/hits.json): one campaign, a recipient each, an hour after
    the mail was sent (a person's hits, not a scanner's)."""
    if profile == "pixel":
        return [TokenClaims(mode=Mode.PIXEL)] * count
    sent = int(time.time()) - 3600
    mode, target = (Mode.PIXEL, None) if profile == "open" else (Mode.REDIRECT, Ref("link", "sale"))
    return [
        TokenClaims(
            mode=mode,
            target=target,
            entity=Ref("recipient", f"{tag}-{n}@example.com"),
            source=Ref("campaign", "spring"),
            issued_at=sent,
        )
        for n in range(count)
    ]


def _record(item: dict[str, Any], beacons: str, number: int) -> dict[str, Any]:
    return {
        "eventID": str(number),
        "eventName": "INSERT",
        "eventSource": "aws:dynamodb",
        "eventSourceARN": f"arn:aws:dynamodb:us-east-1:123456789012:table/{beacons}/stream/2026-01-01",
        "dynamodb": {
            "Keys": {"pk": item["pk"], "id": item["id"]},
            "NewImage": item,
            "SequenceNumber": f"{number:021d}",
            "StreamViewType": "NEW_IMAGE",
            "SizeBytes": 500,
        },
    }


def _hits_units(track: Any, stream_stack: Any, claims: list[TokenClaims]) -> _Units:
    """The DynamoDB request units of ``claims`` hit once each, then their beacons delivered to
    the stream function as one batch, as the template's event source mapping would (its filter
    applied as the local stack applies it)."""
    from unittest import mock

    import botocore.client
    from webbugger_cli.local.stream_sources import stream_sources
    from webbugger_cli.template import load_template

    handler, names = stream_stack
    beacons = names["BeaconsTable"]
    client = boto3.client("dynamodb", region_name=track.REGION)
    before = {item["id"]["S"] for item in client.scan(TableName=beacons)["Items"]}
    calls = _Calls()
    wrapped = calls.wrap(botocore.client.BaseClient._make_api_call)
    track_handler = track.load_track_handler()
    with mock.patch.object(botocore.client.BaseClient, "_make_api_call", wrapped):
        for claim in claims:
            path = tracking_url("https://t.example", claim, KeyRing.from_json(RING_JSON)).removeprefix(
                "https://t.example"
            )
            event = track.http_event(
                path,
                headers={"user-agent": BROWSER, "accept-language": "en-GB"},
                source_ip="203.0.113.9",
                request_id="r",
            )
            with contextlib.redirect_stdout(io.StringIO()):
                answer = track_handler(event, track.FakeContext())
            assert answer["statusCode"] in (200, 302), answer
    track_writes = _write_units(calls.calls)
    items = sorted(
        (item for item in client.scan(TableName=beacons)["Items"] if item["id"]["S"] not in before),
        key=lambda item: item["id"]["S"],
    )
    assert len(items) == len(claims)
    (source,) = stream_sources(load_template(ROOT))
    records = [_record(item, beacons, n) for n, item in enumerate(items, 1)]
    records = [record for record in records if source.accepts(record)]
    calls = _Calls()
    wrapped = calls.wrap(botocore.client.BaseClient._make_api_call)
    if records:  # the filter drops beacons with nothing to hook or count: no invocation at all
        with (
            mock.patch.object(botocore.client.BaseClient, "_make_api_call", wrapped),
            contextlib.redirect_stdout(io.StringIO()),
        ):
            result = handler(
                json.loads(json.dumps({"Records": records})),
                track.FakeContext(function_name="StreamFunction"),
            )
        assert result == {"batchItemFailures": []}
    return _Units(track_writes, _write_units(calls.calls), _read_units(calls.calls))


def test_the_beacons_table_has_no_index() -> None:
    """Every index entry would cost a write unit per hit: the counts above assume none."""
    from webbugger_cli.template import load_template

    for name, spec in load_template(ROOT).tables().items():
        assert not spec.get("GlobalSecondaryIndexes"), name


@pytest.mark.parametrize("profile", ["pixel", "open", "click"])
def test_request_units_of_a_hit_are_the_recorded_ones_and_within_budget(
    track: Any, stream_stack: Any, profile: str
) -> None:
    one = _hits_units(track, stream_stack, _claims(profile, 1, "one"))
    full = _hits_units(track, stream_stack, _claims(profile, BATCH, "full"))
    # What a batch of one and a full batch cost: so much a beacon, so much a batch.
    per_beacon = (full.stream_writes - one.stream_writes) / (BATCH - 1)
    per_batch = one.stream_writes - per_beacon
    reads_per_beacon = (full.stream_reads - one.stream_reads) / (BATCH - 1)
    recorded = cost_inputs.load_hit_figures()["profiles"][profile]
    assert full.track_writes == BATCH * one.track_writes
    measured = (
        one.track_writes,
        per_beacon,
        per_batch,
        reads_per_beacon,
        one.stream_reads - reads_per_beacon,
    )
    assert measured == (
        recorded["track_wru"]["value"],
        recorded["stream_wru"]["value"],
        recorded["stream_wru_per_batch"]["value"],
        recorded["stream_rru"]["value"],
        recorded["stream_rru_per_batch"]["value"],
    ), OUT_OF_DATE
    amortised = one.track_writes + per_beacon + per_batch / BATCH
    assert amortised <= BUDGET[profile], (profile, amortised)
