"""The spill-over chain: what happens to a beacon the table would not take.

The track function answers the visitor whatever happens, and loses no beacon:

1. it writes the beacon with a conditional put on its id (:func:`~webbugger.models.put_beacon`);
2. if that fails (throttling, timeout, outage), it sends the beacon to the spill queue
   (``SPILL_QUEUE_URL``), which the drain function empties into the table later
   (:func:`spill_to_queue`);
3. if the queue fails too, or none is configured (the local stack), it logs the beacon as one
   structured record, which ``webbugger replay`` (or the template's optional log subscription)
   turns back into a beacon.

The record is the same in both places, :meth:`Beacon.to_record`'s dict under the key
``"spilled_beacon"``: the body of a spill-queue message is ``{"spilled_beacon": RECORD}``, and the
track function's JSON log line carries ``"spilled_beacon": RECORD`` beside Powertools' own keys.
:func:`record_to_beacon` reads it back; its fields and their meaning are those of
:data:`~webbugger.models.BEACON_RECORD_FIELDS` (times as ISO 8601, ``hints``/``reasons`` as
space-separated words, ``minted``/``expires`` as epoch seconds); unknown keys are ignored, so a
record written by a newer version still replays.

Every path stores a beacon with the same conditional put, so a beacon that arrives twice (queue
and log, a redelivered message, a replay run twice) is stored once, and an already-stored beacon
counts as a success.

Nothing here connects to AWS at import time; the SQS client is made on the first spill only (the
track function's cold start does not pay for it).
"""

from __future__ import annotations

import json
import math
import re
import threading
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from webbugger.errors import WebbuggerError
from webbugger.models import Beacon, beacon_partition, put_beacon
from webbugger.modes import Mode

if TYPE_CHECKING:
    from collections.abc import Mapping

# The key of the spilled record, in a spill-queue message's body and in the track function's log.
SPILL_KEY = "spilled_beacon"
# The message of the track function's log record that holds a spilled beacon.
SPILL_LOG_MESSAGE = "beacon write failed"
# What may come before the JSON object on a log line: up to three plain words (a timestamp,
# Lambda's request id and level columns), never quotes or brackets.
_LOG_PREFIX = re.compile(r"(?:[\w:.+-]+[ \t]+){0,3}")
# The visitor is already waiting for a failed write: one short attempt, no retries. A failure
# here costs nothing but a log record.
SPILL_CONNECT_TIMEOUT = 0.25
SPILL_READ_TIMEOUT = 0.4
SPILL_MAX_ATTEMPTS = 1

# Times in epoch seconds: whole, finite, and within what DynamoDB's numbers and a datetime hold.
_MAX_SECONDS = 2**53
_BEACON_ID = re.compile(r"[0-9A-HJKMNP-TV-Z]{26}\Z")
_TEXT_FIELDS = (
    "target",
    "entity",
    "source",
    "ip",
    "user_agent",
    "referer",
    "language",
    "country",
    "opted_out",
    "classification",
    "browser",
    "os",
    "device",
    "rule",
    "variant",
)
# The SQS client, per region: made once per process, on first use.
_clients: dict[str, Any] = {}
_clients_lock = threading.Lock()


class InvalidSpillRecordError(WebbuggerError, ValueError):
    """A spilled record that cannot be turned back into a beacon; the message says why."""


def spill_message(beacon: Beacon) -> str:
    """The body of the spill-queue message that carries ``beacon``."""
    return json.dumps({SPILL_KEY: beacon.to_record()}, separators=(",", ":"))


def _sqs_client(region: str) -> Any:
    with _clients_lock:
        client = _clients.get(region)
        if client is None:
            # botocore, not boto3: PynamoDB has already imported it; boto3 would cost more.
            import botocore.session
            from botocore.config import Config

            config = Config(
                connect_timeout=SPILL_CONNECT_TIMEOUT,
                read_timeout=SPILL_READ_TIMEOUT,
                retries={"total_max_attempts": SPILL_MAX_ATTEMPTS, "mode": "standard"},
            )
            client = botocore.session.get_session().create_client("sqs", region_name=region, config=config)
            _clients[region] = client
        return client


def spill_to_queue(beacon: Beacon, queue_url: str, region: str) -> None:
    """Send ``beacon`` to the spill queue: one short attempt. Raises whatever SQS raises."""
    _sqs_client(region).send_message(QueueUrl=queue_url, MessageBody=spill_message(beacon))


def forget_clients() -> None:
    """Drop the cached SQS clients (tests that change the fake AWS between runs)."""
    with _clients_lock:
        _clients.clear()


def _text(record: Mapping[str, Any], name: str, *, required: bool = False) -> str | None:
    value = record.get(name)
    if value is None:
        if required:
            raise InvalidSpillRecordError(f"spilled record has no {name}")
        return None
    if not isinstance(value, str):
        raise InvalidSpillRecordError(f"spilled record's {name} is not text: {value!r:.60}")
    return value


def _whole(record: Mapping[str, Any], name: str) -> int | None:
    value = record.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidSpillRecordError(f"spilled record's {name} is not a number: {value!r:.60}")
    # 1e400 parses as infinity: refused here, not left to fail the write (and the drain's batch).
    if not (math.isfinite(value) and 0 <= value <= _MAX_SECONDS):
        raise InvalidSpillRecordError(f"spilled record's {name} is out of range: {value!r:.60}")
    return int(value)


def _words(record: Mapping[str, Any], name: str) -> list[str] | None:
    text = _text(record, name)
    return text.split() if text else None


def _created_at(record: Mapping[str, Any]) -> datetime:
    text = _text(record, "created_at", required=True)
    try:
        moment = datetime.fromisoformat(str(text))
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise InvalidSpillRecordError(f"spilled record's created_at is not a time: {text!r:.60}") from None


def record_to_beacon(record: object) -> Beacon:
    """The beacon a spilled record describes (:meth:`Beacon.to_record`'s shape, read back).

    Raises :class:`InvalidSpillRecordError` for anything that is not such a record.
    """
    if not isinstance(record, dict):
        raise InvalidSpillRecordError(f"spilled record is not an object: {record!r:.60}")
    beacon_id = str(_text(record, "id", required=True))
    if not _BEACON_ID.match(beacon_id):
        raise InvalidSpillRecordError(f"spilled record's id is not a beacon id: {beacon_id!r:.60}")
    mode = _text(record, "mode", required=True)
    if mode not in set(Mode):
        raise InvalidSpillRecordError(f"spilled record's mode is not pixel or redirect: {mode!r:.60}")
    hints = _words(record, "hints")
    beacon = Beacon(
        pk=beacon_partition(beacon_id),
        id=beacon_id,
        created_at=_created_at(record),
        mode=mode,
        method=_text(record, "method", required=True),
        minted=_whole(record, "minted"),
        hints=set(hints) if hints else None,
        reasons=_words(record, "reasons"),
        expires=_whole(record, "expires"),
    )
    for name in _TEXT_FIELDS:
        setattr(beacon, name, _text(record, name))
    return beacon


def _no_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


# Python's JSON reader takes NaN and Infinity, which no record of ours holds (strict JSON has none).
_JSON = json.JSONDecoder(parse_constant=_no_constant)


def record_from_message(body: str) -> dict[str, Any]:
    """The spilled record in a spill-queue message body; :class:`InvalidSpillRecordError` if none."""
    try:
        data = _JSON.decode(body)
    except (ValueError, RecursionError):  # RecursionError: deeply nested JSON
        raise InvalidSpillRecordError(f"message is not JSON: {body!r:.60}") from None
    record = data.get(SPILL_KEY) if isinstance(data, dict) else None
    if not isinstance(record, dict):
        raise InvalidSpillRecordError(f"message has no {SPILL_KEY} object: {body!r:.60}")
    return record


def _log_record(line: str, *, wrapped: bool = False) -> dict[str, Any] | None:
    prefix = _LOG_PREFIX.match(line)
    start = prefix.end() if prefix else -1
    if start < 0 or not line.startswith("{", start):
        return None  # not a line the track function wrote: any other line that quotes a record
    try:
        data, end = _JSON.raw_decode(line, start)
    except (ValueError, RecursionError):  # RecursionError: deeply nested JSON
        raise InvalidSpillRecordError(f"log line names {SPILL_KEY} but is not JSON: {line!r:.80}") from None
    if line[end:].strip() or not isinstance(data, dict):
        raise InvalidSpillRecordError(f"log line names {SPILL_KEY} but is not one JSON object: {line!r:.80}")
    if not wrapped and "level" not in data and isinstance(data.get("message"), str):
        return _log_record(data["message"], wrapped=True)  # a log event around the line
    if SPILL_KEY not in data:
        return None  # another record, whose text quotes one
    record = data[SPILL_KEY]
    written_here = data.get("level") == "ERROR" and data.get("message") == SPILL_LOG_MESSAGE
    if not written_here or not isinstance(record, dict):
        raise InvalidSpillRecordError(f"log line names {SPILL_KEY} but is no spill record: {line!r:.80}")
    return record


def record_from_log_line(line: str) -> dict[str, Any] | None:
    """The spilled record in one line of the track function's log, or None if it carries none.

    The line is the track function's own JSON log record (Powertools' JSON, as Lambda writes it
    and FilterLogEvents returns it): an ERROR record whose ``message`` is
    :data:`SPILL_LOG_MESSAGE`, with the record under :data:`SPILL_KEY` at its top level. The
    object fills the line, after at most a prefix of plain words (a CloudWatch Logs export's
    timestamp, Lambda's text columns); or the line is a log event (a JSON object without
    ``level``) whose ``message`` is such a line. A record quoted anywhere else (in a request
    line, a User-Agent, another record's field) is not one: a visitor cannot plant a beacon by
    sending text that looks like it. A line that takes the record's place but cannot be read
    raises :class:`InvalidSpillRecordError`.
    """
    if SPILL_KEY not in line:
        return None
    return _log_record(line)


def store_record(record: object) -> bool:
    """Store the beacon of a spilled record idempotently: True if stored now, False if already
    there. Raises :class:`InvalidSpillRecordError` for a bad record, ``PutError`` if the table fails."""
    return put_beacon(record_to_beacon(record))


def elapsed_ms(started: float) -> int:
    """Milliseconds since ``started`` (a :func:`time.perf_counter` value)."""
    return round((time.perf_counter() - started) * 1000)
