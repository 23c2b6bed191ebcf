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
counts as a success. A beacon of an entity erased after it was made is not stored at all
(:class:`ErasedBeaconError`; see :mod:`webbugger.tombstones`).

Nothing here connects to AWS at import time; the SQS client is made on the first spill only (the
track function's cold start does not pay for it).
"""

from __future__ import annotations

import json
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

    from webbugger.tombstones import Tombstones

# The key of the spilled record, in a spill-queue message's body and in the track function's log.
SPILL_KEY = "spilled_beacon"
# The visitor is already waiting for a failed write: one short attempt, no retries. A failure
# here costs nothing but a log record.
SPILL_CONNECT_TIMEOUT = 0.25
SPILL_READ_TIMEOUT = 0.4
SPILL_MAX_ATTEMPTS = 1

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


class ErasedBeaconError(WebbuggerError):
    """A spilled beacon of an entity erased since: not stored (and nothing to retry)."""


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
    return int(value)


def _words(record: Mapping[str, Any], name: str) -> list[str] | None:
    text = _text(record, name)
    return text.split() if text else None


def _created_at(record: Mapping[str, Any]) -> datetime:
    text = _text(record, "created_at", required=True)
    try:
        moment = datetime.fromisoformat(str(text))
    except ValueError:
        raise InvalidSpillRecordError(f"spilled record's created_at is not a time: {text!r:.60}") from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


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


def record_from_message(body: str) -> dict[str, Any]:
    """The spilled record in a spill-queue message body; :class:`InvalidSpillRecordError` if none."""
    try:
        data = json.loads(body)
    except ValueError:
        raise InvalidSpillRecordError(f"message is not JSON: {body!r:.60}") from None
    record = data.get(SPILL_KEY) if isinstance(data, dict) else None
    if not isinstance(record, dict):
        raise InvalidSpillRecordError(f"message has no {SPILL_KEY} object: {body!r:.60}")
    return record


def record_from_log_line(line: str) -> dict[str, Any] | None:
    """The spilled record in one line of the track function's log, or None if it carries none.

    The line is a JSON log record (Powertools' JSON, as Lambda writes it and FilterLogEvents
    returns it), possibly after a prefix (a CloudWatch Logs export's timestamp, Lambda's text
    columns), or a JSON object whose ``message`` is such a line. A line that names a spilled
    record but cannot be read raises :class:`InvalidSpillRecordError`.
    """
    if SPILL_KEY not in line:
        return None
    start = line.find("{")
    try:
        data, _ = json.JSONDecoder().raw_decode(line, start) if start >= 0 else (None, 0)
    except ValueError:
        data = None
    if isinstance(data, dict) and SPILL_KEY not in data and isinstance(data.get("message"), str):
        return record_from_log_line(data["message"])
    record = data.get(SPILL_KEY) if isinstance(data, dict) else None
    if not isinstance(record, dict):
        raise InvalidSpillRecordError(f"log line names {SPILL_KEY} but holds no such object: {line!r:.80}")
    return record


def store_record(record: object, tombstones: Tombstones | None = None) -> bool:
    """Store the beacon of a spilled record idempotently: True if stored now, False if already
    there. Raises :class:`InvalidSpillRecordError` for a bad record, :class:`ErasedBeaconError`
    for a beacon that ``tombstones`` bury, ``PutError`` if the table fails."""
    beacon = record_to_beacon(record)
    if tombstones is not None and tombstones.buried(beacon):
        raise ErasedBeaconError(f"beacon {beacon.id}: its entity was erased after it was made")
    return put_beacon(beacon)


def elapsed_ms(started: float) -> int:
    """Milliseconds since ``started`` (a :func:`time.perf_counter` value)."""
    return round((time.perf_counter() - started) * 1000)
