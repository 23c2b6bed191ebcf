"""One shard's batch handed to its function: partial failures, retries and dead letters.

- ``FunctionResponseTypes: [ReportBatchItemFailures]``: a ``batchItemFailures`` answer retries
  from the first failed record on (it and the records after it, as Lambda does); an invocation
  that raises, or names an unknown item, fails the whole batch. Without it, only a raise fails
  the batch. Filtered-out records are dropped.
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
"""

from __future__ import annotations

import contextlib
import json
import logging
import time
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from webbugger_cli.local.stream_records import lambda_record, sequence_number

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from webbugger_cli.local.stream_sources import StreamSource

# One logger for the whole stream feed, whichever module speaks.
log = logging.getLogger("webbugger_cli.local.streams")

# AWS retries a failing record until it leaves the stream (24 h) when neither MaximumRetryAttempts
# nor MaximumRecordAgeInSeconds bounds it; locally that would block the shard for a day. Long
# enough for DynamoDB Local to restart.
LOCAL_RECORD_AGE_CAP_S = 30.0
RETRY_BACKOFF_S = 0.05
RETRY_BACKOFF_MAX_S = 1.0
DEAD_LETTERS_FILE = "stream-dead-letters.jsonl"
_RECENT_DELIVERIES = 200


class BatchInterruptedError(Exception):
    """The feed was paused or stopped in the middle of a batch."""


@dataclass(frozen=True, slots=True)
class Delivery:
    """One invocation of a stream function: the event, and the sequence numbers that failed."""

    function: str
    event: dict[str, Any]
    failed: tuple[str, ...]
    error: str | None = None


class BatchDelivery:
    """Invokes stream functions with batches of records, retrying and dead-lettering as the event
    source mapping says."""

    def __init__(
        self,
        invoke: Callable[[str, dict[str, Any]], Any],
        directory: Path,
        *,
        region: str,
        record_age_cap_s: float,
        wait: Callable[[float], object],
        interrupted: Callable[[], bool],
    ) -> None:
        """``wait(seconds)`` sleeps between retries (woken early by a stop); ``interrupted()`` says
        whether the feed was paused or stopped meanwhile."""
        self._invoke = invoke
        self._region = region
        self._wait = wait
        self._interrupted = interrupted
        self.record_age_cap_s = record_age_cap_s
        self.dead_letters_path = directory / DEAD_LETTERS_FILE
        # What was delivered lately, newest last (tests and debugging read it).
        self.deliveries: deque[Delivery] = deque(maxlen=_RECENT_DELIVERIES)

    def deliver(
        self, source: StreamSource, stream_arn: str, shard_id: str, raw: list[dict[str, Any]]
    ) -> None:
        """Hand the records ``source`` accepts to its function until done or given up (dead letters);
        :class:`BatchInterruptedError` when the feed is paused or stopped between attempts."""
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
            self._wait(backoff)
            if self._interrupted():
                raise BatchInterruptedError
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
