"""Where the hit feed goes: EventBridge (``PutEvents``, 10 entries a call) and Firehose
(``PutRecordBatch``), with failed entries retried, then dead-lettered to an SQS queue.

Each failed entry or record (the answer names it, or the whole call failed) is sent again, up to
:data:`ATTEMPTS` times with a short back-off; what still fails goes to the feed's dead-letter
queue as ``{"sink": "events"|"analytics", "entry": ...}``, one message each, and is counted
(``HitEventsDeadLettered``, ``AnalyticsRowsDeadLettered``: the template's alarm watches both).
If the queue fails too, the entries are logged at error level with the same shape.

Analytics rows are packed several to a Firehose record, newline-delimited JSON, up to
:data:`RECORD_BYTES`: Firehose bills ingestion per record rounded up to 5 KB, so a 400-byte row
alone would pay for 5 KB. The delivery stream splits them again (its JSON deaggregation).

Clients are made on first use, never at import: a stream function with the feed off creates none.
"""

from __future__ import annotations

import json
import time
from functools import cache
from typing import TYPE_CHECKING, Any

from webbugger.observability import MetricUnit, logger, metrics

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from webbugger.settings import Settings

ATTEMPTS = 3
BACKOFF_S = 0.2
# PutEvents: at most 10 entries and 256 KB a call.
EVENTS_PER_CALL = 10
EVENTS_BYTES_PER_CALL = 256 * 1024
# Firehose: at most 500 records and 4 MiB a call; billing rounds each record up to 5 KB.
RECORDS_PER_CALL = 500
RECORD_BYTES = 5 * 1024
RECORDS_BYTES_PER_CALL = 4 * 1024 * 1024
# SendMessageBatch: at most 10 messages a call.
MESSAGES_PER_CALL = 10


@cache
def client(service: str, region: str) -> Any:
    """A boto3 client of ``service``, made once per container (short timeouts, few retries)."""
    import boto3
    from botocore.config import Config

    config = Config(connect_timeout=1, read_timeout=5, retries={"max_attempts": 2, "mode": "standard"})
    return boto3.client(service, region_name=region, config=config)  # type: ignore[call-overload]


def chunks(items: list[Any], count: int, limit: int, size: Callable[[Any], int]) -> Iterator[list[Any]]:
    """``items`` in order, at most ``count`` and ``limit`` bytes (by ``size``) a chunk."""
    chunk: list[Any] = []
    used = 0
    for item in items:
        length = size(item)
        if chunk and (len(chunk) == count or used + length > limit):
            yield chunk
            chunk, used = [], 0
        chunk.append(item)
        used += length
    if chunk:
        yield chunk


def with_retries(send: Callable[[list[Any]], list[Any]], batch: list[Any], retried: str) -> list[Any]:
    """Send ``batch``, then what ``send`` says failed, up to :data:`ATTEMPTS` times; what failed last."""
    failed = batch
    for attempt in range(ATTEMPTS):
        if attempt:
            metrics.add_metric(name=retried, unit=MetricUnit.Count, value=len(failed))
            time.sleep(BACKOFF_S * 2 ** (attempt - 1))
        failed = send(failed)
        if not failed:
            break
    return failed


def _call_failed(what: str, count: int) -> None:
    logger.exception(f"{what} failed; retried", extra={"entries": count})


# --- EventBridge -------------------------------------------------------------------------------


def _event_size(entry: dict[str, Any]) -> int:
    return len(json.dumps(entry).encode())


def put_events(entries: list[dict[str, Any]], settings: Settings) -> None:
    """Put ``entries`` (PutEvents entries, the bus named) in calls of up to 10."""
    events = client("events", settings.region)

    def send(batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
        try:
            answer = events.put_events(Entries=batch)
        except Exception:  # noqa: BLE001 - a failed call is retried whole, then dead-lettered
            _call_failed("PutEvents", len(batch))
            return batch
        results = answer.get("Entries", [])
        return [entry for entry, result in zip(batch, results, strict=False) if result.get("ErrorCode")]

    for batch in chunks(entries, EVENTS_PER_CALL, EVENTS_BYTES_PER_CALL, _event_size):
        failed = with_retries(send, batch, "HitEventsRetried")
        metrics.add_metric(name="HitEventsPublished", unit=MetricUnit.Count, value=len(batch) - len(failed))
        if failed:
            metrics.add_metric(name="HitEventsDeadLettered", unit=MetricUnit.Count, value=len(failed))
            dead_letter("events", failed, settings)


# --- Firehose ----------------------------------------------------------------------------------


def pack_rows(rows: list[dict[str, Any]]) -> list[bytes]:
    """Rows as newline-delimited JSON, as many to a record as fit in :data:`RECORD_BYTES`."""
    lines = [json.dumps(row, separators=(",", ":")).encode() + b"\n" for row in rows]
    return [b"".join(group) for group in chunks(lines, len(lines) or 1, RECORD_BYTES, len)]


def put_rows(rows: list[dict[str, Any]], settings: Settings) -> None:
    """Deliver analytics ``rows`` to the Firehose stream, packed into records."""
    firehose = client("firehose", settings.region)
    stream = settings.analytics_stream_name

    def send(batch: list[bytes]) -> list[bytes]:
        try:
            answer = firehose.put_record_batch(
                DeliveryStreamName=stream, Records=[{"Data": data} for data in batch]
            )
        except Exception:  # noqa: BLE001 - a failed call is retried whole, then dead-lettered
            _call_failed("PutRecordBatch", len(batch))
            return batch
        if not answer.get("FailedPutCount"):
            return []
        results = answer.get("RequestResponses", [])
        return [data for data, result in zip(batch, results, strict=False) if result.get("ErrorCode")]

    for batch in chunks(pack_rows(rows), RECORDS_PER_CALL, RECORDS_BYTES_PER_CALL, len):
        failed = with_retries(send, batch, "AnalyticsRecordsRetried")
        lost = [json.loads(line) for data in failed for line in data.splitlines()]
        metrics.add_metric(
            name="AnalyticsRowsDelivered",
            unit=MetricUnit.Count,
            value=sum(data.count(b"\n") for data in batch) - len(lost),
        )
        if lost:
            metrics.add_metric(name="AnalyticsRowsDeadLettered", unit=MetricUnit.Count, value=len(lost))
            dead_letter("analytics", lost, settings)


# --- the dead-letter queue ---------------------------------------------------------------------


def dead_letter(sink: str, entries: list[Any], settings: Settings) -> None:
    """Send what a sink would not take to the feed's dead-letter queue (else log it)."""
    bodies = [json.dumps({"sink": sink, "entry": entry}) for entry in entries]
    left = bodies
    if settings.feed_dead_letter_queue_url:
        sqs = client("sqs", settings.region)
        left = []
        for batch in chunks(bodies, MESSAGES_PER_CALL, 256 * 1024, lambda body: len(body.encode())):
            try:
                answer = sqs.send_message_batch(
                    QueueUrl=settings.feed_dead_letter_queue_url,
                    Entries=[{"Id": str(i), "MessageBody": body} for i, body in enumerate(batch)],
                )
                left += [batch[int(failure["Id"])] for failure in answer.get("Failed", [])]
            except Exception:  # noqa: BLE001 - then the log keeps them
                logger.exception("the feed's dead-letter queue failed")
                left += batch
    for body in left:
        logger.error("hit feed entry not delivered", extra={"feed_dead_letter": json.loads(body)})
