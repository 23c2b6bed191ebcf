"""Stream function: new beacons from the beacons table's stream → deferred entity hooks, then
classification (human or which machine, with reasons; browser, OS and device), then the per-day
counters of their references, one ``ADD`` per counter item per batch (webbugger.stream_batch).

A failed record is reported alone (a partial batch response): Lambda delivers it again, with
the records after it; what was done for a record before is recognised and not done twice. An
invocation that raises fails the whole batch, which the event source mapping bisects. A record
still failing after an hour goes to the dead-letter queue, coordinates only: ``webbugger
recount`` then finds its beacon unfinished and does its work (:mod:`webbugger.recount`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from webbugger.classify import warm_up
from webbugger.models import Beacon
from webbugger.observability import logger, metrics
from webbugger.plugins import PluginLoadError
from webbugger.runtime import default_registry, default_settings
from webbugger.signing import load_visitor_salt
from webbugger.stream_batch import process_batch

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

# Plugins load at init: a broken plugin stops the container here, not on every record.
try:
    registry = default_registry()
except PluginLoadError as exc:
    logger.critical(str(exc))
    raise
# The crawler list and ua-parser's regexes compile at init, not in the first record's time.
warm_up()


def _new_beacons(records: list[dict[str, Any]]) -> tuple[list[tuple[str, Beacon]], list[str]]:
    """(sequence number, beacon) of each INSERT record, and the records that are not beacons."""
    beacons, unreadable = [], []
    for record in records:
        if record.get("eventName") != "INSERT":
            continue  # the marks the stream function writes, and TTL deletions: not hits
        sequence = record["dynamodb"]["SequenceNumber"]
        try:
            beacons.append((sequence, Beacon.from_raw_data(record["dynamodb"]["NewImage"])))
        except Exception:  # noqa: BLE001 - one unreadable record fails alone (and is dead-lettered)
            logger.exception("a stream record is not a beacon", extra={"sequence": sequence})
            unreadable.append(sequence)
    return beacons, unreadable


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Lambda entry point: a partial batch response naming the records to deliver again."""
    beacons, failed = _new_beacons(event.get("Records", []))
    settings = default_settings()
    salt = load_visitor_salt(settings)
    retry = process_batch([beacon for _, beacon in beacons], registry, salt, settings)
    failed += [sequence for sequence, beacon in beacons if beacon.id in retry]
    return {"batchItemFailures": [{"itemIdentifier": sequence} for sequence in failed]}
