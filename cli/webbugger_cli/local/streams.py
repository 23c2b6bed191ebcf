"""template.yaml's DynamoDB stream event sources, fed locally from DynamoDB Local's streams.

For every function event of ``Type: DynamoDB`` (:mod:`webbugger_cli.local.stream_sources` reads
them and refuses what cannot be reproduced), a background thread reads the table's stream
through the ``dynamodbstreams`` API of DynamoDB Local and invokes the function's own handler with
the Lambda DynamoDB stream event, as the event source mapping does in AWS: in batches, retried
and dead-lettered as the event says (:mod:`webbugger_cli.local.stream_delivery`).

Positions (:mod:`webbugger_cli.local.stream_checkpoints`): a restart resumes after the last
record handled in each shard. The first time a stream is seen, reading starts where the event's
``StartingPosition`` says (``TRIM_HORIZON``: every record still in the stream; ``LATEST``: only
new ones); a shard that appears later is read from its start. A batch interrupted by shutdown
or :meth:`StreamFeed.pause` is not checkpointed and is delivered again: delivery is at least
once, as in AWS (the deferred hooks are applied once per beacon regardless).

The handler is invoked through a callable (the local HTTP server's :meth:`LocalApi.invoke`),
which holds the function's one-event-at-a-time lock for one invocation only.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from webbugger_cli.local import state
from webbugger_cli.local.stream_checkpoints import CHECKPOINTS_FILE, ShardCheckpoints
from webbugger_cli.local.stream_delivery import LOCAL_RECORD_AGE_CAP_S, BatchDelivery, BatchInterruptedError
from webbugger_cli.local.stream_records import sequence_number
from webbugger_cli.local.stream_sources import StreamConfigError, stream_sources

if TYPE_CHECKING:
    from collections import deque
    from collections.abc import Callable, Iterable
    from pathlib import Path

    from webbugger_cli.local.stream_delivery import Delivery
    from webbugger_cli.local.stream_sources import StreamSource
    from webbugger_cli.template import Template

log = logging.getLogger(__name__)

POLL_INTERVAL_S = 0.25
# Shards are listed again this often (a local stream rarely gets new shards).
SHARD_REFRESH_S = 2.0
# At most this many shards and describe_stream pages per stream (bounded loops).
_MAX_SHARD_PAGES = 100
_CLIENT_CONFIG = Config(connect_timeout=2, read_timeout=10, retries={"max_attempts": 1, "mode": "standard"})


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
        self._poll_interval = poll_interval
        self._checkpoints = ShardCheckpoints.load(directory / CHECKPOINTS_FILE)
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
        self._delivery = BatchDelivery(
            invoke,
            directory,
            region=region,
            record_age_cap_s=record_age_cap_s,
            wait=self._stop.wait,
            interrupted=self._interrupted,
        )

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

    @property
    def record_age_cap_s(self) -> float:
        """How long a failing batch is retried at most, locally."""
        return self._delivery.record_age_cap_s

    @property
    def dead_letters_path(self) -> Path:
        """The JSON lines file of the records given up on."""
        return self._delivery.dead_letters_path

    @property
    def deliveries(self) -> deque[Delivery]:
        """What was delivered lately, newest last (tests and debugging read it)."""
        return self._delivery.deliveries

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
            except BatchInterruptedError:
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
                self._delivery.deliver(stream.source, stream.arn, shard.shard_id, records)
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
