"""The optional hit feed's part of ``webbugger cost`` (``--events``, ``--analytics``).

Only hits the stream function sees are published (a beacon with no reference is filtered out
before it), once as labelled and once more per class change (``feed.relabels_per_hit``):

- **events**: one EventBridge custom event each (an entry is well under the 64 KB an event is
  billed by), and the stream function's PutEvents calls, 10 entries a call;
- **analytics**: rows of ``feed.row_bytes`` packed into 5 KB Firehose records per stream batch
  (Firehose rounds every record up to 5 KB), priced for ingestion, format conversion and dynamic
  partitioning; the objects Firehose writes (one per active day partition every 15 minutes, a
  monthly figure shared by the month's hits) and their PUTs; the Parquet's storage for a month;
  one PutRecordBatch call per stream batch. Athena's queries are priced per TB scanned and left
  to the reader (the named queries over a month of a million hits scan about 0.1 GB: $0.0005).
"""

from __future__ import annotations

import math
from typing import Any

# One line of the bill: (service, what, dollars); cost.py makes them its Lines.
FeedLine = tuple[str, str, float]

GB = 1024**3
RECORD_BYTES = 5 * 1024  # webbugger.feed.sinks.RECORD_BYTES; Firehose's billing increment
EVENTS_PER_CALL = 10


def _price(prices: dict[str, Any], name: str) -> float:
    entry = prices["prices"][name]
    return float(entry["usd"]) / float(entry["per"])


def _value(figures: dict[str, Any], name: str) -> float:
    return float(figures["feed"][name]["value"])


def _lambda_ms(ms: float, stream: tuple[int, str], prices: dict[str, Any]) -> float:
    memory_mb, architecture = stream
    return ms / 1000 * memory_mb / 1024 * _price(prices, f"lambda_{architecture}_gb_second")


def feed_lines(
    hits: int,
    batch: float,
    stream: tuple[int, str],
    *,
    events: bool,
    analytics: bool,
    prices: dict[str, Any],
    figures: dict[str, Any],
) -> list[FeedLine]:
    """The lines of the hit feed for ``hits`` streamed hits a month in batches of ``batch`` beacons,
    the stream function having ``stream`` (memory in MB, architecture)."""
    lines: list[FeedLine] = []
    published = hits * (1 + _value(figures, "relabels_per_hit"))
    batches = hits / batch
    call_ms = _value(figures, "call_ms")
    if events:
        dollars = published * _price(prices, "eventbridge_custom_event")
        lines.append(("EventBridge", "custom events (a hit, and each class change)", dollars))
        calls = batches * math.ceil(batch * (published / hits) / EVENTS_PER_CALL)
        what = f"stream: PutEvents calls ({call_ms:g} ms each)"
        lines.append(("Lambda", what, _lambda_ms(calls * call_ms, stream, prices)))
    if analytics:
        rows_per_batch = batch * published / hits
        records = batches * math.ceil(rows_per_batch * _value(figures, "row_bytes") / RECORD_BYTES)
        billed_gb = records * RECORD_BYTES / GB
        what = f"ingestion ({records / hits * 1e6:,.0f} 5 KB records a million hits)"
        lines.append(("Firehose", what, billed_gb * _price(prices, "firehose_direct_put_gb")))
        dollars = billed_gb * _price(prices, "firehose_format_conversion_gb")
        lines.append(("Firehose", "format conversion to Parquet", dollars))
        objects = _value(figures, "objects_per_month")
        dollars = billed_gb * _price(prices, "firehose_dynamic_partitioning_gb")
        dollars += objects * _price(prices, "firehose_dynamic_partitioning_object")
        lines.append(("Firehose", "dynamic partitioning by day", dollars))
        lines.append(
            ("S3", f"{objects:,.0f} objects written (PUT)", objects * _price(prices, "s3_put_request"))
        )
        stored_gb = published * _value(figures, "parquet_bytes_per_row") / GB
        lines.append(("S3", "Parquet storage, a month", stored_gb * _price(prices, "s3_storage_gb_month")))
        what = f"stream: PutRecordBatch calls ({call_ms:g} ms each)"
        lines.append(("Lambda", what, _lambda_ms(batches * call_ms, stream, prices)))
    return lines
