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
from webbugger_cli.commands import cost

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
    recorded = cost.load_hit_figures()["track_log_bytes"]
    assert recorded["kind"] == "measured"
    plain = _lines_per_hit(track, _event(track, TokenClaims(mode=Mode.PIXEL)), 200)
    with_source = _lines_per_hit(
        track,
        _event(track, TokenClaims(mode=Mode.PIXEL, source=Ref("campaign", "spring"), ignore_errors=True)),
        200,
    )
    # Every hit writes the same: one EMF record (PixelBeacons), nothing else at the function's level;
    # the recorded figure is within 10 % of its size.
    sizes = {len("\n".join(lines).encode()) + 1 for lines in plain + with_source}
    assert len(sizes) == 1, sizes
    for (line,) in plain + with_source:
        assert json.loads(line)["PixelBeacons"] == [1.0]
    assert recorded["value"] == pytest.approx(sizes.pop(), rel=0.1)


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


# --- the stream function's writes per beacon, counted from the calls it makes -------------------

STREAM_CODE_URI = ROOT / "functions" / "stream"
STREAM_MODULE = f"webbugger_function_{STREAM_CODE_URI.name}_app"
WRITES = {"PutItem", "UpdateItem", "DeleteItem"}
OUT_OF_DATE = (
    "the stream function's DynamoDB calls changed: put the counted units in "
    "cli/webbugger_cli/data/hits.json, then docs/cost.md's table "
    "(uv run webbugger cost --hits 1000000 --markdown)"
)


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


def _rewritten_indexes() -> set[str]:
    """The partition key attributes of the beacons table's indexes whose entries an update of
    other attributes rewrites: those that project more than the keys (template.yaml). The stream
    never changes a beacon's references, so a keys-only index entry is never rewritten."""
    from webbugger_cli.template import load_template

    spec = load_template(ROOT).tables()["BeaconsTable"]
    return {
        next(k["AttributeName"] for k in index["KeySchema"] if k["KeyType"] == "HASH")
        for index in spec.get("GlobalSecondaryIndexes", [])
        if index.get("Projection", {}).get("ProjectionType") != "KEYS_ONLY"
    }


def _write_units(calls: list[tuple[str, dict[str, Any]]], beacons: str, in_indexes: int) -> float:
    """Write request units of ``calls`` by DynamoDB's rules for items under 1 KB: 1 a standard
    write, 2 a transactional one (a condition check too); a write to the beacon also rewrites
    its entries in ``in_indexes`` indexes, 1 each."""
    units = 0.0
    for operation, params in calls:
        if operation in WRITES:
            units += 1 + (in_indexes if params["TableName"] == beacons else 0)
        elif operation == "TransactWriteItems":
            for item in params["TransactItems"]:
                ((kind, body),) = item.items()
                units += 2 + (in_indexes if body["TableName"] == beacons and kind != "ConditionCheck" else 0)
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


@pytest.fixture
def stream_stack(track: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The track fixture's fake AWS with the stream function's environment too, and its handler."""
    from webbugger_cli.template import load_handler

    names = track.template_table_names("cost-")
    track.set_function_environment(monkeypatch, names, "TrackFunction", "StreamFunction")
    monkeypatch.setenv("WEBBUGGER_VISITOR_SALT", "visitor-salt-" + "x" * 40)
    runtime.reset()
    runtime.default_settings()
    previous = sys.modules.pop(STREAM_MODULE, None)
    try:
        yield load_handler(STREAM_CODE_URI, "app.lambda_handler"), names
    finally:
        sys.modules.pop(STREAM_MODULE, None)
        if previous is not None:
            sys.modules[STREAM_MODULE] = previous


def _stream_units(track: Any, stream_stack: Any, claims: TokenClaims) -> tuple[float, float]:
    """The write and read request units the stream function spends on the beacon of one hit."""
    from unittest import mock

    import botocore.client

    handler, names = stream_stack
    beacons = names["BeaconsTable"]
    path = tracking_url("https://t.example", claims, KeyRing.from_json(RING_JSON)).removeprefix(
        "https://t.example"
    )
    event = track.http_event(
        path,
        headers={"user-agent": BROWSER, "accept-language": "en-GB"},
        source_ip="203.0.113.9",
        request_id="r",
    )
    with contextlib.redirect_stdout(io.StringIO()):
        answer = track.load_track_handler()(event, track.FakeContext())
    assert answer["statusCode"] in (200, 302), answer
    client = boto3.client("dynamodb", region_name=track.REGION)
    (item,) = client.scan(TableName=beacons)["Items"]
    in_indexes = sum(attribute in item for attribute in _rewritten_indexes())
    record = {
        "eventID": "1",
        "eventName": "INSERT",
        "eventSource": "aws:dynamodb",
        "eventSourceARN": f"arn:aws:dynamodb:us-east-1:123456789012:table/{beacons}/stream/2026-01-01",
        "dynamodb": {
            "Keys": {"pk": item["pk"], "id": item["id"]},
            "NewImage": item,
            "SequenceNumber": "1",
            "StreamViewType": "NEW_IMAGE",
            "SizeBytes": 500,
        },
    }
    calls = _Calls()
    wrapped = calls.wrap(botocore.client.BaseClient._make_api_call)
    with (
        mock.patch.object(botocore.client.BaseClient, "_make_api_call", wrapped),
        contextlib.redirect_stdout(io.StringIO()),
    ):
        result = handler(
            json.loads(json.dumps({"Records": [record]})), track.FakeContext(function_name="StreamFunction")
        )
    assert result == {"batchItemFailures": []}
    return _write_units(calls.calls, beacons, in_indexes), _read_units(calls.calls)


def test_stream_request_units_of_a_pixel(track: Any, stream_stack: Any) -> None:
    writes, reads = _stream_units(track, stream_stack, TokenClaims(mode=Mode.PIXEL))
    pixel = cost.load_hit_figures()["profiles"]["pixel"]
    assert (pixel["stream_wru"]["value"], pixel["stream_rru"]["value"]) == (writes, reads), OUT_OF_DATE


def test_stream_request_units_of_a_human_click(track: Any, stream_stack: Any) -> None:
    from webbugger_plugins.campaign import create_campaign
    from webbugger_plugins.link import create_link

    create_link("https://example.com/sale", "sale")
    create_campaign("spring")
    claims = TokenClaims(
        mode=Mode.REDIRECT,
        target=Ref("link", "sale"),
        entity=Ref("recipient", "alice@example.com"),
        source=Ref("campaign", "spring"),
        issued_at=int(time.time()) - 3600,  # sent an hour ago: a person's click, not a scanner's
    )
    writes, reads = _stream_units(track, stream_stack, claims)
    click = cost.load_hit_figures()["profiles"]["click"]
    assert (click["stream_wru"]["value"], click["stream_rru"]["value"]) == (writes, reads), OUT_OF_DATE
