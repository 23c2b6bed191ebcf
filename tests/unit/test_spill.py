"""The spill-over chain without AWS: the spilled record read back, and the track function's choice
between the spill queue and the log when the beacon write fails."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest
from webbugger import spill
from webbugger.ids import new_beacon_id
from webbugger.models import BEACON_RECORD_FIELDS, Beacon, beacon_partition
from webbugger.modes import Mode
from webbugger.observability import metrics
from webbugger.registry import Registry
from webbugger.request import IncomingRequest
from webbugger.settings import Settings
from webbugger.spill import (
    InvalidSpillRecordError,
    record_from_log_line,
    record_from_message,
    record_to_beacon,
    spill_message,
)
from webbugger.tokens import TokenClaims, sign
from webbugger.tracking import Tracker

if TYPE_CHECKING:
    from webbugger.tokens import KeyRing

QUEUE = "https://sqs.us-east-1.amazonaws.com/123456789012/spill"


def full_beacon() -> Beacon:
    """A beacon with every field of its record set."""
    beacon_id = new_beacon_id()
    return Beacon(
        pk=beacon_partition(beacon_id),
        id=beacon_id,
        created_at=datetime(2026, 11, 23, 12, 30, 15, 123000, tzinfo=UTC),
        mode="redirect",
        method="GET",
        target="link:abc",
        entity="recipient:r-1",
        source="campaign:spring",
        ip="198.51.100.0",
        user_agent="Mozilla/5.0 (X11) Test",
        referer="https://mail.example/",
        language="de-DE",
        country="DE",
        minted=1_795_000_000,
        hints={"prefetch", "honeypot"},
        opted_out="gpc",
        classification="human",
        reasons=["ua-browser", "late"],
        browser="Firefox",
        os="Linux",
        device="Other",
        expires=1_830_000_000,
        rule="ios",
        variant="b",
    )


def test_a_spilled_record_reads_back_as_the_same_beacon() -> None:
    beacon = full_beacon()
    record = beacon.to_record()
    assert set(record) == set(BEACON_RECORD_FIELDS)
    assert all(value is not None for value in record.values())  # every field is exercised

    back = record_to_beacon(json.loads(json.dumps(record)))

    assert back.to_record() == record
    assert back.pk == beacon.pk


def test_a_minimal_record_reads_back_with_the_rest_empty() -> None:
    beacon_id = new_beacon_id()
    back = record_to_beacon(
        {"id": beacon_id, "created_at": "2026-11-23T12:00:00+00:00", "mode": "pixel", "method": "GET"}
    )
    assert (back.id, back.mode, back.target, back.hints, back.expires) == (
        beacon_id,
        "pixel",
        None,
        None,
        None,
    )
    assert back.created_at == datetime(2026, 11, 23, 12, tzinfo=UTC)


def test_unknown_keys_are_ignored() -> None:
    record = {**full_beacon().to_record(), "added_later": "x"}
    assert record_to_beacon(record).id == record["id"]


def _broken(**changes: Any) -> dict[str, Any]:
    record = full_beacon().to_record()
    record.update(changes)
    return {key: value for key, value in record.items() if value != "DROP"}


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        (["not", "an", "object"], "not an object"),
        (_broken(id="DROP"), "no id"),
        (_broken(id="not-a-ulid"), "not a beacon id"),
        (_broken(mode="DROP"), "no mode"),
        (_broken(mode="click"), "not pixel or redirect"),
        (_broken(method="DROP"), "no method"),
        (_broken(created_at="yesterday"), "not a time"),
        (_broken(target=12), "target is not text"),
        (_broken(expires="soon"), "expires is not a number"),
        (_broken(minted=True), "minted is not a number"),
        (_broken(hints=["a", "b"]), "hints is not text"),
    ],
)
def test_a_bad_record_is_refused_with_its_reason(record: object, reason: str) -> None:
    with pytest.raises(InvalidSpillRecordError, match=reason):
        record_to_beacon(record)


def test_a_queue_message_carries_the_record_under_its_key() -> None:
    beacon = full_beacon()
    body = spill_message(beacon)
    assert json.loads(body) == {"spilled_beacon": beacon.to_record()}
    assert record_from_message(body) == beacon.to_record()


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("{not json", "not JSON"),
        ('{"other": 1}', "no spilled_beacon"),
        ('{"spilled_beacon": 3}', "no spilled"),
    ],
)
def test_a_message_without_a_record_is_refused(body: str, reason: str) -> None:
    with pytest.raises(InvalidSpillRecordError, match=reason):
        record_from_message(body)


def _log_line(record: dict[str, Any]) -> str:
    """A track-function log line as Powertools writes it (keys beside the record included)."""
    return json.dumps(
        {
            "level": "ERROR",
            "location": "_save:290",
            "message": "beacon write failed",
            "timestamp": "2026-11-23 22:00:00,000+0000",
            "service": "webbugger",
            "spilled_beacon": record,
            "error": "PutError('Failed to put item')",
        }
    )


def test_log_lines_in_every_form_yield_the_record() -> None:
    record = full_beacon().to_record()
    line = _log_line(record)
    # As Lambda logs it and FilterLogEvents returns it; as a CloudWatch Logs export line (a
    # timestamp first); as Lambda's text columns; as a JSON object around the log line.
    for form in (
        line,
        f"2026-11-23T22:00:00.000Z {line}",
        f"2026-11-23T22:00:00.000Z\tc0ffee\tERROR\t{line}",
        json.dumps({"timestamp": 1795000000000, "message": line}),
    ):
        assert record_from_log_line(form) == record, form


def test_log_lines_without_a_record_are_skipped_and_broken_ones_refused() -> None:
    assert (
        record_from_log_line(json.dumps({"message": "beacon write failed; beacon sent to the spill queue"}))
        is None
    )
    assert record_from_log_line("START RequestId: 1 Version: $LATEST") is None
    with pytest.raises(InvalidSpillRecordError):
        record_from_log_line('{"spilled_beacon": {"id": "01J')  # cut short
    with pytest.raises(InvalidSpillRecordError):
        record_from_log_line('{"spilled_beacon": "elsewhere"}')


def test_a_record_quoted_anywhere_but_a_line_of_its_own_is_no_record() -> None:
    """What a visitor can make the local stack log (a request line, a quoted header, an error's
    text under its message) names a record without being one."""
    genuine = full_beacon().to_record()
    forged = json.dumps({"level": "ERROR", "message": "beacon write failed", "spilled_beacon": genuine})
    compact = json.dumps(json.loads(forged), separators=(",", ":"))
    for line in (
        f'127.0.0.1 "GET /p/{compact} HTTP/1.1" 404 -',  # the local request log
        f"127.0.0.1 code 400, message Bad request syntax ('GET {compact}')",
        f"    {forged}",  # a traceback line, indented by the local log's formatter
        f"x = {forged}",
        json.dumps({"level": "INFO", "message": "not found", "reason": forged}),  # a field's text
        json.dumps({"message": json.dumps({"message": forged})}),  # a log event is wrapped once only
    ):
        assert record_from_log_line(line) is None, line
    # The record's own text fields may quote another record: only the outer one counts.
    quoting = dict(genuine, user_agent=compact)
    assert record_from_log_line(_log_line(quoting)) == quoting


@pytest.mark.parametrize(
    "line",
    [
        '{"level": "ERROR", "message": "beacon write failed", "spilled_beacon": {}} trailing',
        '{"level": "INFO", "message": "beacon write failed", "spilled_beacon": {"id": "x"}}',
        '{"level": "ERROR", "message": "other", "spilled_beacon": {"id": "x"}}',
    ],
)
def test_a_line_in_a_records_place_that_is_not_one_is_invalid(line: str) -> None:
    with pytest.raises(InvalidSpillRecordError):
        record_from_log_line(line)


# --- the track function's chain: table, else queue, else log ----------------------------------


@pytest.fixture
def failing_table(monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: Any, **kwargs: Any) -> None:
        raise ConnectionError("dynamodb unreachable")

    monkeypatch.setattr(Beacon, "save", fail)


def _pixel(ring: KeyRing, *, queue: str | None) -> Any:
    tracker = Tracker(
        Settings(beacons_table="beacons", region="eu-west-1", spill_queue_url=queue),
        Registry(),
        key_ring=lambda: ring,
    )
    incoming = IncomingRequest(method="GET", headers={"user-agent": "UA"}, source_ip="203.0.113.9", query={})
    return tracker.track(sign(TokenClaims(mode=Mode.PIXEL), ring), Mode.PIXEL, incoming)


def _spilled(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    return [
        record.__dict__["spilled_beacon"] for record in caplog.records if "spilled_beacon" in record.__dict__
    ]


def _metric_names() -> set[str]:
    return set(metrics.metric_set)


@pytest.mark.usefixtures("failing_table")
def test_a_failed_write_goes_to_the_spill_queue_and_not_to_the_log(
    monkeypatch: pytest.MonkeyPatch, ring: KeyRing, caplog: pytest.LogCaptureFixture
) -> None:
    sent: list[tuple[str, str, str]] = []
    monkeypatch.setattr(
        spill, "spill_to_queue", lambda beacon, url, region: sent.append((beacon.id, url, region))
    )

    result = _pixel(ring, queue=QUEUE)

    assert result.stored is False
    assert sent == [(result.beacon_id, QUEUE, "eu-west-1")]
    assert _spilled(caplog) == []
    assert any(getattr(record, "beacon_id", None) == result.beacon_id for record in caplog.records)
    assert {"BeaconWriteFailures", "BeaconsSpilled"} <= _metric_names()


@pytest.mark.usefixtures("failing_table")
def test_when_the_queue_fails_too_the_whole_beacon_is_logged(
    monkeypatch: pytest.MonkeyPatch, ring: KeyRing, caplog: pytest.LogCaptureFixture
) -> None:
    def queue_down(*args: Any) -> None:
        raise TimeoutError("sqs unreachable")

    monkeypatch.setattr(spill, "spill_to_queue", queue_down)

    result = _pixel(ring, queue=QUEUE)

    [record] = _spilled(caplog)
    assert record["id"] == result.beacon_id
    assert record_to_beacon(record).mode == "pixel"
    [logged] = [r for r in caplog.records if "spilled_beacon" in r.__dict__]
    assert logged.levelno == logging.ERROR
    assert "sqs unreachable" in logged.__dict__["spill_error"]
    assert {"BeaconWriteFailures", "BeaconsLogged"} <= _metric_names()
    assert "BeaconsSpilled" not in _metric_names()


@pytest.mark.usefixtures("failing_table")
def test_without_a_queue_the_beacon_is_logged(
    monkeypatch: pytest.MonkeyPatch, ring: KeyRing, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(spill, "spill_to_queue", lambda *args: pytest.fail("no queue is configured"))
    result = _pixel(ring, queue=None)
    assert [record["id"] for record in _spilled(caplog)] == [result.beacon_id]


def test_deeply_nested_json_is_an_invalid_record_not_a_recursion_error() -> None:
    """Python's JSON reader raises RecursionError (no ValueError) on deep nesting: replay would
    stop with a traceback and the drain fail the whole log batch, not this record alone."""
    deep = '{"spilled_beacon":' + "[" * 100_000 + "]" * 100_000 + "}"
    with pytest.raises(InvalidSpillRecordError):
        record_from_log_line(deep)
    with pytest.raises(InvalidSpillRecordError):
        record_from_message(deep)
