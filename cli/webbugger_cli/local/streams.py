"""template.yaml's DynamoDB stream event sources, fed locally from DynamoDB Local's streams.

For every function event of ``Type: DynamoDB`` whose ``Stream`` is ``!GetAtt SomeTable.StreamArn``
(a template table with a ``StreamSpecification``), a background thread reads the table's stream
through the ``dynamodbstreams`` API of DynamoDB Local and invokes the function's own handler with
the Lambda DynamoDB stream event, as the event source mapping does in AWS:

- ``FilterCriteria``: patterns of ``{"eventName": [...]}``, optionally with
  ``"dynamodb": {"NewImage": {"<attribute>": {"S": [{"exists": true}]}}}`` (the attribute must be
  there), are understood (any one filter matching lets a record through, as in AWS); anything
  else is refused at start-up (:class:`StreamConfigError`) rather than silently ignored.
  Filtered-out records are dropped.
- ``BatchSize``: at most that many records per invocation (DynamoDB Streams returns at most 1000
  per read, so larger sizes act as 1000). ``MaximumBatchingWindowInSeconds`` (a number or a
  parameter's default): records are gathered until the batch is full or the window has passed
  since the first, the window capped at :data:`LOCAL_WINDOW_CAP_S` so that a developer sees a
  hit's counts within seconds.
- ``FunctionResponseTypes: [ReportBatchItemFailures]``: a ``batchItemFailures`` answer retries
  from the first failed record on (it and the records after it, as Lambda does); an invocation
  that raises, or names an unknown item, fails the whole batch. Without it, only a raise fails
  the batch.
- ``MaximumRetryAttempts`` and ``MaximumRecordAgeInSeconds``: a failing batch is retried (short
  exponential back-off, at most :data:`RETRY_BACKOFF_MAX_S` apart) until either runs out; then its
  records are dead-lettered. ``-1`` or absent means no limit, as in AWS (where the record's 24
  hours in the stream end it); locally the age is counted from the batch's first attempt and
  bounded by the feed's ``record_age_cap_s`` (:data:`LOCAL_RECORD_AGE_CAP_S`), so that a poison
  record does not hold a developer's shard for an hour, while DynamoDB Local restarting is
  ridden out. There is no SQS locally: each record goes, whole, with its coordinates, as one JSON
  line to ``<state dir>/stream-dead-letters.jsonl``, and one line is logged; ``webbugger
  recount`` then does its work (:mod:`webbugger.recount`). ``BisectBatchOnFunctionError`` needs
  no model: failed records are already retried on their own.

Positions (``<state dir>/stream-checkpoints.json``): the last sequence number handled in each
shard is saved after each batch is done (delivered, filtered out or dead-lettered). A restart
resumes after it, so it neither replays handled records nor loses records written while the
stack was stopped. The first time a stream is seen, reading starts where the event's
``StartingPosition`` says (``TRIM_HORIZON``: every record still in the stream; ``LATEST``: only
new ones); a shard that appears later is read from its start. A batch interrupted by shutdown
or :meth:`StreamFeed.pause` is not checkpointed and is delivered again: delivery is at least
once, as in AWS (the deferred hooks are applied once per beacon regardless).

The handler is invoked through a callable (the local HTTP server's :meth:`LocalApi.invoke`),
which holds the function's one-event-at-a-time lock for one invocation only.
"""

from __future__ import annotations

import base64
import contextlib
import json
import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from webbugger_cli.local import state

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from pathlib import Path

    from webbugger_cli.template import Template

log = logging.getLogger(__name__)

POLL_INTERVAL_S = 0.25
# DynamoDB Streams' GetRecords returns at most this many records.
MAX_READ = 1000
DEFAULT_BATCH_SIZE = 100
# The batching window locally: at most this long (AWS's may be minutes).
LOCAL_WINDOW_CAP_S = 1.0
# AWS retries a failing record until it leaves the stream (24 h) when neither MaximumRetryAttempts
# nor MaximumRecordAgeInSeconds bounds it; locally that would block the shard for a day. Long
# enough for DynamoDB Local to restart.
LOCAL_RECORD_AGE_CAP_S = 30.0
RETRY_BACKOFF_S = 0.05
RETRY_BACKOFF_MAX_S = 1.0
# Shards are listed again this often (a local stream rarely gets new shards).
SHARD_REFRESH_S = 2.0
# At most this many shards and describe_stream pages per stream (bounded loops).
_MAX_SHARD_PAGES = 100
CHECKPOINTS_FILE = "stream-checkpoints.json"
DEAD_LETTERS_FILE = "stream-dead-letters.jsonl"
_STARTING_POSITIONS = ("TRIM_HORIZON", "LATEST")
_RECENT_DELIVERIES = 200
_CLIENT_CONFIG = Config(connect_timeout=2, read_timeout=10, retries={"max_attempts": 1, "mode": "standard"})


class StreamConfigError(Exception):
    """A DynamoDB event source of template.yaml that the local stack cannot reproduce faithfully."""


class _InterruptedError(Exception):
    """The feed was paused or stopped in the middle of a batch."""


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


# --- records -------------------------------------------------------------------------------


def _json_attribute(value: dict[str, Any]) -> dict[str, Any]:
    """One attribute value as Lambda's JSON event has it (binary values in base64)."""
    out: dict[str, Any] = {}
    for kind, inner in value.items():
        if kind == "B" and isinstance(inner, bytes | bytearray):
            out[kind] = base64.b64encode(inner).decode("ascii")
        elif kind == "BS":
            out[kind] = [base64.b64encode(v).decode("ascii") if isinstance(v, bytes) else v for v in inner]
        elif kind == "M":
            out[kind] = {k: _json_attribute(v) for k, v in inner.items()}
        elif kind == "L":
            out[kind] = [_json_attribute(v) for v in inner]
        else:
            out[kind] = inner
    return out


def lambda_record(raw: dict[str, Any], stream_arn: str, region: str = state.LOCAL_REGION) -> dict[str, Any]:
    """A DynamoDB Streams ``GetRecords`` record (as boto3 parses it) in Lambda's event form."""
    ddb: dict[str, Any] = {}
    for key, value in raw.get("dynamodb", {}).items():
        if key in ("Keys", "NewImage", "OldImage"):
            ddb[key] = {name: _json_attribute(attr) for name, attr in value.items()}
        elif key == "ApproximateCreationDateTime" and isinstance(value, datetime):
            ddb[key] = int(value.timestamp())
        else:
            ddb[key] = value
    record: dict[str, Any] = {
        "eventID": raw.get("eventID"),
        "eventName": raw.get("eventName"),
        "eventVersion": raw.get("eventVersion", "1.1"),
        "eventSource": "aws:dynamodb",
        # DynamoDB Local says "ddblocal"; the functions run in the local stack's region.
        "awsRegion": region,
        "dynamodb": ddb,
        "eventSourceARN": stream_arn,
    }
    if "userIdentity" in raw:
        record["userIdentity"] = raw["userIdentity"]
    return record


def sequence_number(record: dict[str, Any]) -> str:
    """The record's sequence number (the ``itemIdentifier`` of a partial batch response)."""
    return str(record["dynamodb"]["SequenceNumber"])


@dataclass(frozen=True, slots=True)
class Delivery:
    """One invocation of a stream function: the event, and the sequence numbers that failed."""

    function: str
    event: dict[str, Any]
    failed: tuple[str, ...]
    error: str | None = None


# --- checkpoints ---------------------------------------------------------------------------


@dataclass
class _Checkpoints:
    """Last handled sequence number per stream and shard, kept in one JSON file."""

    path: Path
    streams: dict[str, dict[str, str]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> _Checkpoints:
        try:
            data = json.loads(path.read_text())
            streams = {
                str(arn): {str(k): str(v) for k, v in (shards or {}).items()}
                for arn, shards in data.get("streams", {}).items()
            }
        except FileNotFoundError:
            streams = {}
        except (OSError, ValueError, AttributeError, TypeError) as exc:
            log.warning("stream positions in %s unreadable (%s); starting over", path, exc)
            streams = {}
        return cls(path, streams)

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps({"version": 1, "streams": self.streams}, indent=2, sort_keys=True))
        tmp.replace(self.path)

    def seen(self, stream_arn: str) -> bool:
        return stream_arn in self.streams

    def get(self, stream_arn: str, shard_id: str) -> str | None:
        return self.streams.get(stream_arn, {}).get(shard_id)

    def start(self, stream_arn: str, table_name: str) -> None:
        """Remember the stream (later shards start at their beginning); forget the table's old streams."""
        prefix = f":table/{table_name}/stream/"
        for arn in [a for a in self.streams if prefix in a and a != stream_arn]:
            del self.streams[arn]
        if stream_arn not in self.streams:
            self.streams[stream_arn] = {}
            self.save()

    def set(self, stream_arn: str, shard_id: str, sequence: str) -> None:
        shards = self.streams.setdefault(stream_arn, {})
        if shards.get(shard_id) != sequence:
            shards[shard_id] = sequence
            self.save()

    def drop(self, stream_arn: str, shard_id: str) -> None:
        if self.streams.get(stream_arn, {}).pop(shard_id, None) is not None:
            self.save()


# --- the feed ------------------------------------------------------------------------------


@dataclass
class _Shard:
    shard_id: str
    parent: str | None
    iterator: str | None = None
    finished: bool = False


@dataclass
class _Stream:
    source: StreamSource
    table_name: str
    arn: str | None = None
    shards: dict[str, _Shard] = field(default_factory=dict)
    listed_at: float = 0.0


class StreamFeed:
    """Polls the template's event-source streams and invokes their functions, from one thread."""

    def __init__(
        self,
        sources: Iterable[StreamSource],
        endpoint: str,
        invoke: Callable[[str, dict[str, Any]], Any],
        directory: Path,
        *,
        region: str = state.LOCAL_REGION,
        poll_interval: float = POLL_INTERVAL_S,
        record_age_cap_s: float = LOCAL_RECORD_AGE_CAP_S,
    ) -> None:
        """``invoke(function, event)`` runs one invocation and returns the handler's result;
        a failing batch is retried for at most ``record_age_cap_s`` seconds."""
        self._streams = [_Stream(source, state.table_name(source.table)) for source in sources]
        self.record_age_cap_s = record_age_cap_s
        self._invoke = invoke
        self._region = region
        self._poll_interval = poll_interval
        self._checkpoints = _Checkpoints.load(directory / CHECKPOINTS_FILE)
        self.dead_letters_path = directory / DEAD_LETTERS_FILE
        credentials = {"aws_access_key_id": "local", "aws_secret_access_key": "local"}
        kwargs = {"endpoint_url": endpoint, "region_name": region, "config": _CLIENT_CONFIG, **credentials}
        # No boto3 stubs for dynamodbstreams in the dev group: both clients are typed loosely.
        self._ddb: Any = boto3.client("dynamodb", **kwargs)  # type: ignore[call-overload]
        self._streams_api: Any = boto3.client("dynamodbstreams", **kwargs)  # type: ignore[call-overload]
        self._stop = threading.Event()
        self._active = threading.Event()
        self._cycle_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._last_error: str | None = None
        # What was delivered lately, newest last (tests and debugging read it).
        self.deliveries: deque[Delivery] = deque(maxlen=_RECENT_DELIVERIES)

    @classmethod
    def from_template(
        cls,
        template: Template,
        endpoint: str,
        invoke: Callable[[str, dict[str, Any]], Any],
        directory: Path,
        *,
        record_age_cap_s: float = LOCAL_RECORD_AGE_CAP_S,
    ) -> StreamFeed:
        """A feed of every stream event source of ``template`` (:class:`StreamConfigError` if unsupported)."""
        return cls(stream_sources(template), endpoint, invoke, directory, record_age_cap_s=record_age_cap_s)

    @property
    def sources(self) -> list[StreamSource]:
        """The event sources fed."""
        return [stream.source for stream in self._streams]

    # lifecycle

    def start(self, *, paused: bool = False) -> StreamFeed:
        """Start the polling thread (``paused``: it waits for :meth:`resume`)."""
        if not paused:
            self._active.set()
        if self._thread is None and self._streams:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="webbugger-local-streams", daemon=True)
            self._thread.start()
        return self

    def pause(self, timeout: float = 10.0) -> None:
        """Stop polling; returns once the batch in flight is done or abandoned (not checkpointed)."""
        self._active.clear()
        if self._cycle_lock.acquire(timeout=timeout):
            self._cycle_lock.release()
        else:
            log.warning("stream feed: the batch in flight did not finish within %.0fs", timeout)

    def resume(self) -> None:
        """Poll again."""
        self._active.set()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the thread (the batch in flight is abandoned, and delivered again next start)."""
        self._stop.set()
        self._active.set()  # wake a paused thread so it sees the stop
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.join(timeout=timeout)
            if thread.is_alive():
                log.warning("stream feed: thread still busy after %.0fs; left as a daemon", timeout)

    def _interrupted(self) -> bool:
        return self._stop.is_set() or not self._active.is_set()

    def _run(self) -> None:
        while not self._stop.is_set():
            if not self._active.wait(timeout=self._poll_interval) or self._stop.is_set():
                continue
            busy = False
            with self._cycle_lock:
                try:
                    busy = self._active.is_set() and self._cycle()
                except Exception:  # a bug here must not end the feed silently
                    log.exception("stream feed: unexpected failure; polling again in 1s")
                    self._stop.wait(1.0)
            if not busy:
                self._stop.wait(self._poll_interval)

    def _cycle(self) -> bool:
        """One read of every shard; True when records came (poll again at once)."""
        busy = False
        for stream in self._streams:
            try:
                busy |= self._poll(stream)
            except _InterruptedError:
                return False
            except (BotoCoreError, ClientError, OSError, StreamConfigError) as exc:
                # DynamoDB Local restarting, say: start over from the saved positions.
                message = f"{stream.source.label}: {exc}"
                if message != self._last_error:
                    log.warning("stream feed: %s (retrying from the saved positions)", message)
                    self._last_error = message
                stream.arn = None
                stream.shards.clear()
                self._stop.wait(1.0)
                continue
            self._last_error = None
        return busy

    # reading

    def _poll(self, stream: _Stream) -> bool:
        if stream.arn is None:
            table = self._ddb.describe_table(TableName=stream.table_name)["Table"]
            arn = table.get("LatestStreamArn")
            if not arn:
                raise StreamConfigError(f"{stream.table_name} has no stream in DynamoDB Local")
            first_time = not self._checkpoints.seen(arn)
            self._checkpoints.start(arn, stream.table_name)
            stream.arn, stream.shards, stream.listed_at = arn, {}, 0.0
            self._list_shards(stream, first_time=first_time)
        elif time.monotonic() - stream.listed_at > SHARD_REFRESH_S:
            self._list_shards(stream, first_time=False)
        busy = False
        for shard in list(stream.shards.values()):
            parent = stream.shards.get(shard.parent or "")
            if shard.finished or (parent is not None and not parent.finished):
                continue  # a child shard waits until its parent is read to the end
            busy |= self._read_shard(stream, shard)
        return busy

    def _list_shards(self, stream: _Stream, *, first_time: bool) -> None:
        assert stream.arn is not None
        kwargs: dict[str, Any] = {"StreamArn": stream.arn}
        for _ in range(_MAX_SHARD_PAGES):
            description = self._streams_api.describe_stream(**kwargs)["StreamDescription"]
            for shard in description.get("Shards", []):
                shard_id = shard["ShardId"]
                if shard_id not in stream.shards:
                    stream.shards[shard_id] = _Shard(shard_id, shard.get("ParentShardId"))
                    stream.shards[shard_id].iterator = self._iterator(stream, shard_id, first_time)
            last = description.get("LastEvaluatedShardId")
            if not last:
                break
            kwargs["ExclusiveStartShardId"] = last
        stream.listed_at = time.monotonic()

    def _iterator(self, stream: _Stream, shard_id: str, first_time: bool) -> str | None:
        assert stream.arn is not None
        after = self._checkpoints.get(stream.arn, shard_id)
        kwargs: dict[str, Any] = {"StreamArn": stream.arn, "ShardId": shard_id}
        if after is not None:
            kwargs |= {"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": after}
        else:
            # A shard found after the stream's first sighting has records nobody read: all of them.
            kwargs["ShardIteratorType"] = stream.source.starting_position if first_time else "TRIM_HORIZON"
        try:
            iterator: str = self._streams_api.get_shard_iterator(**kwargs)["ShardIterator"]
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code")
            if after is None or code not in ("TrimmedDataAccessException", "ResourceNotFoundException"):
                raise
            log.warning(
                "stream feed: %s shard %s: saved position %s is gone (%s); reading from the oldest record",
                stream.source.label,
                shard_id,
                after,
                code,
            )
            self._checkpoints.drop(stream.arn, shard_id)
            kwargs = {"StreamArn": stream.arn, "ShardId": shard_id, "ShardIteratorType": "TRIM_HORIZON"}
            iterator = self._streams_api.get_shard_iterator(**kwargs)["ShardIterator"]
        return iterator

    def _read_shard(self, stream: _Stream, shard: _Shard) -> bool:
        assert stream.arn is not None
        if shard.iterator is None:
            shard.iterator = self._iterator(stream, shard.shard_id, first_time=False)
        try:
            records, next_iterator = self._gather(stream.source, shard.iterator)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ExpiredIteratorException":
                raise
            shard.iterator = None  # from the saved position, next time
            return True
        if records:
            try:
                self._deliver(stream.source, stream.arn, shard.shard_id, records)
            except BaseException:
                shard.iterator = None  # not checkpointed: read again from the saved position
                raise
            self._checkpoints.set(stream.arn, shard.shard_id, sequence_number(records[-1]))
        shard.iterator = next_iterator
        shard.finished = next_iterator is None
        return bool(records)

    def _gather(self, source: StreamSource, iterator: str | None) -> tuple[list[dict[str, Any]], str | None]:
        """Records of one shard for one batch: until it is full, or the batching window has
        passed since the first record read."""
        records: list[dict[str, Any]] = []
        next_iterator: str | None = iterator
        deadline: float | None = None
        while next_iterator is not None and len(records) < source.batch_size:
            left = source.batch_size - len(records)
            page = self._streams_api.get_records(ShardIterator=next_iterator, Limit=left)
            records += page.get("Records", [])
            next_iterator = page.get("NextShardIterator")
            if records and deadline is None:
                deadline = time.monotonic() + source.batching_window_s
            if deadline is None or time.monotonic() >= deadline or self._interrupted():
                break
            self._stop.wait(min(POLL_INTERVAL_S, max(0.0, deadline - time.monotonic())))
        return records, next_iterator

    # delivering

    def _deliver(
        self, source: StreamSource, stream_arn: str, shard_id: str, raw: list[dict[str, Any]]
    ) -> None:
        pending = [lambda_record(r, stream_arn, self._region) for r in raw if source.accepts(r)]
        attempts, started = 0, time.monotonic()
        max_age = min(source.max_record_age_s or self.record_age_cap_s, self.record_age_cap_s)
        while pending:
            failed = self._invoke_once(source, pending)
            attempts += 1
            if not failed:
                return
            out_of_retries = 0 <= source.max_retries < attempts
            if out_of_retries or time.monotonic() - started >= max_age:
                self._dead_letter(source, shard_id, failed, attempts)
                return
            backoff = min(RETRY_BACKOFF_MAX_S, RETRY_BACKOFF_S * 2 ** (attempts - 1))
            self._stop.wait(backoff)
            if self._interrupted():
                raise _InterruptedError
            # As in AWS: the batch resumes from its first failed record, with every record after it.
            pending = pending[min(pending.index(record) for record in failed) :]

    def _invoke_once(self, source: StreamSource, records: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Invoke once; the records that failed."""
        event = {"Records": records}
        try:
            result = self._invoke(source.function, event)
        except Exception as exc:
            log.exception("stream feed: %s failed on a batch of %d", source.label, len(records))
            failed = tuple(sequence_number(r) for r in records)
            self.deliveries.append(Delivery(source.function, event, failed, repr(exc)))
            return records
        failures = result.get("batchItemFailures") if isinstance(result, dict) else None
        if not source.report_item_failures or not failures:
            self.deliveries.append(Delivery(source.function, event, ()))
            return []
        by_sequence = {sequence_number(r): r for r in records}
        named = [f.get("itemIdentifier") if isinstance(f, dict) else None for f in failures]
        if any(not isinstance(name, str) or name not in by_sequence for name in named):
            # As in AWS: an identifier that is not in the batch fails the whole batch.
            log.warning("stream feed: %s named unknown items %r; the whole batch failed", source.label, named)
            failed_ids = tuple(by_sequence)
        else:
            failed_ids = tuple(s for s in by_sequence if s in set(named))
        self.deliveries.append(Delivery(source.function, event, failed_ids))
        return [by_sequence[s] for s in failed_ids]

    def _dead_letter(
        self, source: StreamSource, shard_id: str, records: list[dict[str, Any]], attempts: int
    ) -> None:
        now = datetime.now(UTC).isoformat()
        lines = [
            json.dumps(
                {
                    "time": now,
                    "function": source.function,
                    "event": source.event,
                    "eventSourceARN": record.get("eventSourceARN"),
                    "shardId": shard_id,
                    "sequenceNumber": sequence_number(record),
                    "eventID": record.get("eventID"),
                    "attempts": attempts,
                    "record": record,
                },
                default=str,
            )
            for record in records
        ]
        self.dead_letters_path.parent.mkdir(parents=True, exist_ok=True)
        with self.dead_letters_path.open("a") as handle:
            handle.write("".join(line + "\n" for line in lines))
        sequences = ", ".join(sequence_number(r) for r in records)
        log.error(
            "stream feed: %s gave up on %d record(s) after %d attempts (sequence %s): see %s",
            source.label,
            len(records),
            attempts,
            sequences,
            self.dead_letters_path,
        )


def read_dead_letters(directory: Path) -> list[dict[str, Any]]:
    """The dead-lettered records written so far (oldest first)."""
    path = directory / DEAD_LETTERS_FILE
    with contextlib.suppress(FileNotFoundError):
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return []
