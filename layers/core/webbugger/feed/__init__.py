"""The hit feed (stream function, optional): an EventBridge event per labelled hit, and an
analytics row per labelled hit for the Parquet copy on S3 (Firehose), each off unless the
template turns it on (``EnableHitEvents``, ``EnableAnalytics``).

After a batch is processed (:func:`webbugger.stream_batch.process_batch`), every beacon whose
record succeeded is published once as *labelled* with its class as it then holds it; every
class change made during the batch (:func:`webbugger.labelling.relabel`, which calls
:func:`note_relabel`) is published as *relabelled*, whichever batch the beacon came in: an open
becomes human when its recipient clicks days later, so a class is final only at the latest
version (``label_version``, :mod:`webbugger.feed.shapes`).

Delivery is at least once: a record delivered again is published again (same beacon id and
version), and a record that fails is published when it succeeds. A relabel is published after
it committed; an invocation that dies between the two loses that event (the row of its next
change, or of the beacon's redelivery, carries the class again).

Nothing here reaches AWS unless a sink is configured; the sinks' module and clients load then.
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING

from webbugger.feed.shapes import EVENT_SOURCE, LABELLED, RELABELLED, hit_event, hit_row
from webbugger.observability import MetricUnit, logger, metrics

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from webbugger.models import Beacon
    from webbugger.settings import Settings

Relabels = list[tuple["Beacon", str | None]]

# The relabels of the batch being processed, when the feed is on (else None: nothing kept).
_relabels: ContextVar[Relabels | None] = ContextVar("webbugger_feed_relabels", default=None)


def feed_on(settings: Settings) -> bool:
    """Whether any sink of the feed is configured."""
    return bool(settings.event_bus_name or settings.analytics_stream_name)


@contextmanager
def collecting_relabels(settings: Settings) -> Iterator[Relabels]:
    """Keep the class changes made inside the block (only when the feed is on)."""
    found: Relabels = []
    token = _relabels.set(found if feed_on(settings) else None)
    try:
        yield found
    finally:
        _relabels.reset(token)


def note_relabel(beacon: Beacon, previous: str | None) -> None:
    """A labelled beacon's class changed from ``previous`` (``beacon`` holds what is stored now)."""
    found = _relabels.get()
    if found is not None:
        found.append((beacon, previous))


def publish(labelled: Iterable[Beacon], relabels: Relabels, salt_secret: bytes, settings: Settings) -> None:
    """Send the batch's labelled beacons and class changes to every configured sink. Never
    raises: the hits are stored and counted whatever happens here (failures are dead-lettered)."""
    if not feed_on(settings):
        return
    from webbugger.feed import sinks
    from webbugger.models import utcnow

    beacons = [beacon for beacon in labelled if beacon.classification]
    try:
        if settings.event_bus_name:
            details = [(LABELLED, hit_event(b)) for b in beacons]
            details += [(RELABELLED, hit_event(b, previous)) for b, previous in relabels]
            entries = [
                {
                    "Source": EVENT_SOURCE,
                    "DetailType": detail_type,
                    "Detail": _json(detail),
                    "EventBusName": settings.event_bus_name,
                }
                for detail_type, detail in details
            ]
            sinks.put_events(entries, settings)
        if settings.analytics_stream_name:
            now = utcnow()
            clear = settings.analytics_entities == "clear"
            rows = [
                hit_row(b, salt_secret, now, clear_entities=clear)
                for b in [*beacons, *(b for b, _ in relabels)]
            ]
            sinks.put_rows(rows, settings)
    except Exception:  # noqa: BLE001 - a bug here must not make the stream retry stored hits
        logger.exception("publishing the hit feed failed")
        metrics.add_metric(name="HitFeedFailures", unit=MetricUnit.Count, value=1)


def _json(detail: object) -> str:
    import json

    return json.dumps(detail, separators=(",", ":"))
