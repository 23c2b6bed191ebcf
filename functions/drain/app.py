"""Drain function: spilled beacons → the beacons table, once it takes writes again.

Two sources, one write (:func:`webbugger.spill.store_record`, a conditional put on the beacon id,
so a beacon that arrives by two paths is stored once and an already-stored one is a success):

- the spill queue (SQS event source): Powertools batch processing reports partial batch failures,
  so only the failed messages come back; after the queue's maximum receives, a message goes to
  the spill dead-letter queue (alarmed);
- optionally, the track function's log group (a CloudWatch Logs subscription on
  ``{ $.spilled_beacon.id = * }``, template parameter ``ReplaySpilledLogs``): the beacons that
  could not even be queued. A failed write fails the invocation, which Lambda retries; the log
  records stay in the log group for ``webbugger replay --stack NAME`` in any case.

A beacon of an entity erased after it was made is dropped (:mod:`webbugger.tombstones`): its
message succeeds, and nothing is stored.

Once the table fails within a batch, the batch's remaining messages go back to the queue untried:
they would only wait for the same timeouts.
"""

from __future__ import annotations

import dataclasses
from functools import cache
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes import CloudWatchLogsEvent
from webbugger.models import Beacon, bind
from webbugger.observability import MetricUnit, logger, metrics
from webbugger.settings import get_settings
from webbugger.spill import (
    ErasedBeaconError,
    InvalidSpillRecordError,
    record_from_log_line,
    record_from_message,
    store_record,
)
from webbugger.tombstones import Tombstone, Tombstones, tombstones_for

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
    from aws_lambda_powertools.utilities.typing import LambdaContext

# Not the visitor's sub-second bounds: nobody waits here, but a stalled table must not use up
# the function's timeout either.
DRAIN_CONNECT_TIMEOUT = 1.0
DRAIN_READ_TIMEOUT = 2.0
DRAIN_MAX_RETRIES = 2

processor = BatchProcessor(event_type=EventType.SQS)


class TableFailingError(Exception):
    """The table failed earlier in this batch: this message goes back to the queue untried."""


@dataclasses.dataclass
class _Batch:
    table_failed: bool = False
    tombstones: Tombstones | None = None


_batch = _Batch()


@cache
def bind_beacons() -> None:
    """Bind the beacon model to its table, with the drain's bounds (once per container)."""
    settings = get_settings()
    drain_settings = settings._replace(
        ddb_connect_timeout=DRAIN_CONNECT_TIMEOUT,
        ddb_read_timeout=DRAIN_READ_TIMEOUT,
        ddb_max_retries=DRAIN_MAX_RETRIES,
    )
    bind(Beacon, settings.beacons_table, drain_settings)
    if settings.counters_table:
        bind(Tombstone, settings.counters_table, drain_settings)


def _store(record: object) -> None:
    try:
        stored = store_record(record, _batch.tombstones)
    except ErasedBeaconError:
        metrics.add_metric(name="DrainedErased", unit=MetricUnit.Count, value=1)
        return
    except InvalidSpillRecordError:
        raise
    except Exception:
        _batch.table_failed = True
        raise
    name = "DrainedBeacons" if stored else "DrainedDuplicates"
    metrics.add_metric(name=name, unit=MetricUnit.Count, value=1)


def record_handler(record: SQSRecord) -> None:
    """Store the beacon of one spill-queue message (raises to leave the message on the queue)."""
    if _batch.table_failed:
        raise TableFailingError("the beacons table failed earlier in this batch")
    _store(record_from_message(record.body))


def drain_logs(event: dict[str, Any]) -> dict[str, Any]:
    """Store the beacons of a CloudWatch Logs subscription event (the track function's log)."""
    found = invalid = 0
    for log_event in CloudWatchLogsEvent(event).parse_logs_data().log_events:
        try:
            record = record_from_log_line(log_event.message)
            if record is None:
                continue
            found += 1
            _store(record)
        except InvalidSpillRecordError as exc:
            # Retrying cannot mend it: say so, and go on with the others.
            found += 1
            invalid += 1
            logger.error("invalid spilled record in the log", extra={"reason": str(exc)})
            metrics.add_metric(name="InvalidSpilledRecords", unit=MetricUnit.Count, value=1)
    return {"records": found, "invalid": invalid}


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Lambda entry point: a batch of spill-queue messages, or a log subscription's delivery."""
    bind_beacons()
    _batch.table_failed = False
    _batch.tombstones = tombstones_for(get_settings())  # read afresh each batch
    if "awslogs" in event:
        return drain_logs(event)
    return dict(
        process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )
    )
