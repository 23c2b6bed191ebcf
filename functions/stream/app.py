"""Stream function: new beacons from the beacons table's stream → deferred entity hooks, then
classification (human or which machine, with reasons; browser, OS and device), then the per-day
counters of their references, which count the stored class.

Powertools batch processing reports partial batch failures, so a failed record is retried alone
(the event source mapping bisects and finally sends it to the dead-letter queue).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from webbugger.classify import label_beacon, warm_up
from webbugger.counters import count_beacon
from webbugger.deferred import apply_deferred_hooks
from webbugger.models import Beacon
from webbugger.observability import logger, metrics
from webbugger.plugins import PluginLoadError
from webbugger.runtime import default_registry, default_settings
from webbugger.signing import load_visitor_salt

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
    from aws_lambda_powertools.utilities.typing import LambdaContext

processor = BatchProcessor(event_type=EventType.DynamoDBStreams)
# Plugins load at init: a broken plugin stops the container here, not on every record.
try:
    registry = default_registry()
except PluginLoadError as exc:
    logger.critical(str(exc))
    raise
# The crawler list and ua-parser's regexes compile at init, not in the first record's time.
warm_up()


def record_handler(record: DynamoDBRecord) -> None:
    """Apply the deferred hooks of one new beacon (other stream events are filtered out upstream)."""
    if record.raw_event.get("eventName") != "INSERT":
        return
    image = record.raw_event["dynamodb"]["NewImage"]
    beacon = Beacon.from_raw_data(image)
    settings = default_settings()
    apply_deferred_hooks(beacon, registry, settings)
    salt = load_visitor_salt(settings)
    # Labelled before counting, so the counters split human from machine; a replay finds the label
    # stored. Counters last: a failure retries the record, and what was done before is skipped.
    label_beacon(beacon, salt, settings)
    count_beacon(beacon, salt, settings)


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Lambda entry point."""
    return dict(
        process_partial_response(
            event=event, record_handler=record_handler, processor=processor, context=context
        )
    )
