"""template.yaml's ``Type: DynamoDB`` events, read as the local stack's event source mappings.

For every function event whose ``Stream`` is ``!GetAtt SomeTable.StreamArn`` (a template table
with a ``StreamSpecification``), a :class:`StreamSource` says which table's stream feeds the
function and how (:mod:`webbugger_cli.local.streams` polls it):

- ``FilterCriteria``: patterns of ``{"eventName": [...]}``, optionally with
  ``"dynamodb": {"NewImage": {"<attribute>": {"S": [{"exists": true}]}}}`` (the attribute must be
  there), are understood (any one filter matching lets a record through, as in AWS); anything
  else is refused at start-up (:class:`StreamConfigError`) rather than silently ignored.
- ``BatchSize``: at most that many records per invocation (DynamoDB Streams returns at most 1000
  per read, so larger sizes act as 1000). ``MaximumBatchingWindowInSeconds`` (a number or a
  parameter's default), capped at :data:`LOCAL_WINDOW_CAP_S` so that a developer sees a hit's
  counts within seconds.
- ``FunctionResponseTypes: [ReportBatchItemFailures]``, ``MaximumRetryAttempts`` and
  ``MaximumRecordAgeInSeconds``: how a failing batch is retried
  (:mod:`webbugger_cli.local.stream_delivery`).
- ``StartingPosition``: ``TRIM_HORIZON`` or ``LATEST``, for a stream seen the first time.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from webbugger_cli.template import Template

# DynamoDB Streams' GetRecords returns at most this many records.
MAX_READ = 1000
DEFAULT_BATCH_SIZE = 100
# The batching window locally: at most this long (AWS's may be minutes).
LOCAL_WINDOW_CAP_S = 1.0
_STARTING_POSITIONS = ("TRIM_HORIZON", "LATEST")


class StreamConfigError(Exception):
    """A DynamoDB event source of template.yaml that the local stack cannot reproduce faithfully."""


@dataclass(frozen=True, slots=True)
class StreamSource:
    """One ``Type: DynamoDB`` event of a function: which table's stream, and how to deliver it."""

    function: str
    event: str
    table: str
    batch_size: int = DEFAULT_BATCH_SIZE
    starting_position: str = "TRIM_HORIZON"
    # -1: no limit (as in AWS).
    max_retries: int = -1
    max_record_age_s: float | None = None
    report_item_failures: bool = False
    # None: no FilterCriteria (every record passes).
    filters: tuple[RecordFilter, ...] | None = None
    batching_window_s: float = 0.0

    @property
    def label(self) -> str:
        """``Function.Event``, for messages."""
        return f"{self.function}.{self.event}"

    @property
    def event_names(self) -> frozenset[str] | None:
        """The event names some filter lets through (None: no filter)."""
        if self.filters is None:
            return None
        return frozenset(name for item in self.filters for name in item.event_names)

    def accepts(self, record: dict[str, Any]) -> bool:
        """Whether the event's filter lets ``record`` through."""
        return self.filters is None or any(item.matches(record) for item in self.filters)


@dataclass(frozen=True, slots=True)
class RecordFilter:
    """One filter pattern: the event names it lets through, and the NewImage attributes (of type
    S) a record must carry."""

    event_names: frozenset[str]
    present: frozenset[str] = frozenset()

    def matches(self, record: dict[str, Any]) -> bool:
        """Whether ``record`` passes this filter."""
        image = (record.get("dynamodb") or {}).get("NewImage") or {}
        return record.get("eventName") in self.event_names and all(
            "S" in (image.get(name) or {}) for name in self.present
        )


def stream_functions(template: Template) -> set[str]:
    """Functions with at least one ``Type: DynamoDB`` event (no validation: see :func:`stream_sources`)."""
    found = set()
    for name, resource in template.resources.items():
        if resource.get("Type") != "AWS::Serverless::Function":
            continue
        events = (resource.get("Properties") or {}).get("Events") or {}
        if any(isinstance(ev, dict) and ev.get("Type") == "DynamoDB" for ev in events.values()):
            found.add(name)
    return found


def _present(label: str, pattern: str, dynamodb: Any) -> frozenset[str]:
    """The attributes of ``{"NewImage": {"<attribute>": {"S": [{"exists": true}]}}}``."""
    image = dynamodb.get("NewImage") if isinstance(dynamodb, dict) and set(dynamodb) == {"NewImage"} else None
    exists = [{"exists": True}]
    if not isinstance(image, dict) or not image or any(test != {"S": exists} for test in image.values()):
        raise StreamConfigError(
            f"{label}: filter pattern {pattern!r} is not supported locally "
            '(only {"eventName": [...]} and NewImage attributes that exist)'
        )
    return frozenset(image)


def _filters(label: str, criteria: Any) -> tuple[RecordFilter, ...] | None:
    if criteria is None:
        return None
    filters = criteria.get("Filters") if isinstance(criteria, dict) else None
    if not isinstance(filters, list) or not filters:
        raise StreamConfigError(f"{label}: FilterCriteria needs a non-empty Filters list")
    found = []
    for item in filters:
        pattern = item.get("Pattern") if isinstance(item, dict) else None
        try:
            parsed: Any = json.loads(pattern) if isinstance(pattern, str) else pattern
        except ValueError as exc:
            raise StreamConfigError(f"{label}: filter pattern {pattern!r} is not JSON") from exc
        keys = set(parsed) if isinstance(parsed, dict) else set()
        values = parsed["eventName"] if keys in ({"eventName"}, {"eventName", "dynamodb"}) else None
        if not isinstance(values, list) or not values or not all(isinstance(v, str) for v in values):
            raise StreamConfigError(
                f'{label}: filter pattern {pattern!r} is not supported locally (only {{"eventName": [...]}})'
            )
        present = _present(label, str(pattern), parsed["dynamodb"]) if "dynamodb" in keys else frozenset()
        found.append(RecordFilter(frozenset(values), present))
    return tuple(found)


def _window(template: Template, label: str, props: dict[str, Any]) -> float:
    value = props.get("MaximumBatchingWindowInSeconds", 0)
    if isinstance(value, dict) and set(value) == {"Ref"}:
        value = template.parameter_default(str(value["Ref"]))
    try:
        seconds = float(value)
    except (TypeError, ValueError) as exc:
        raise StreamConfigError(
            f"{label}: MaximumBatchingWindowInSeconds must be a number, got {value!r}"
        ) from exc
    return min(max(seconds, 0.0), LOCAL_WINDOW_CAP_S)


def _int_property(label: str, props: dict[str, Any], name: str, default: int) -> int:
    value = props.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise StreamConfigError(f"{label}: {name} must be a number locally, got {value!r}")
    try:
        return int(value)
    except ValueError as exc:
        raise StreamConfigError(f"{label}: {name} must be a number locally, got {value!r}") from exc


def _stream_table(template: Template, label: str, stream: Any) -> str:
    get_att = stream.get("Fn::GetAtt") if isinstance(stream, dict) else None
    if not (isinstance(get_att, list) and len(get_att) == 2 and get_att[1] == "StreamArn"):
        raise StreamConfigError(f"{label}: Stream must be !GetAtt <Table>.StreamArn locally, got {stream!r}")
    table = str(get_att[0])
    resource = template.resources.get(table) or {}
    if resource.get("Type") != "AWS::DynamoDB::Table":
        raise StreamConfigError(f"{label}: {table} is not a DynamoDB table of the template")
    if not (resource.get("Properties") or {}).get("StreamSpecification"):
        raise StreamConfigError(f"{label}: table {table} has no StreamSpecification")
    return table


def _source(template: Template, function: str, event: str, props: dict[str, Any]) -> StreamSource:
    label = f"{function}.{event}"
    table = _stream_table(template, label, props.get("Stream"))
    position = str(props.get("StartingPosition", "TRIM_HORIZON"))
    if position not in _STARTING_POSITIONS:
        raise StreamConfigError(f"{label}: StartingPosition {position} is not supported locally")
    retries = max(_int_property(label, props, "MaximumRetryAttempts", -1), -1)
    age = _int_property(label, props, "MaximumRecordAgeInSeconds", -1)
    batch_size = _int_property(label, props, "BatchSize", DEFAULT_BATCH_SIZE)
    if batch_size < 1:
        raise StreamConfigError(f"{label}: BatchSize must be at least 1")
    return StreamSource(
        function=function,
        event=event,
        table=table,
        batch_size=min(batch_size, MAX_READ),
        starting_position=position,
        max_retries=retries,
        max_record_age_s=float(age) if age >= 0 else None,
        report_item_failures="ReportBatchItemFailures" in (props.get("FunctionResponseTypes") or []),
        filters=_filters(label, props.get("FilterCriteria")),
        batching_window_s=_window(template, label, props),
    )


def stream_sources(template: Template) -> list[StreamSource]:
    """Every enabled ``Type: DynamoDB`` event of the template; :class:`StreamConfigError` for one
    the local stack cannot reproduce."""
    sources = []
    for function in sorted(stream_functions(template)):
        events = (template.resources[function].get("Properties") or {}).get("Events") or {}
        for event, spec in sorted(events.items()):
            if not isinstance(spec, dict) or spec.get("Type") != "DynamoDB":
                continue
            props = spec.get("Properties") or {}
            if props.get("Enabled", True) in (False, "false", "False"):
                continue
            sources.append(_source(template, function, event, props))
    return sources
