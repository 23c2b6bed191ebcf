"""Where the local stream feed is in each shard: ``<state dir>/stream-checkpoints.json``.

The last sequence number handled in each shard is saved after each batch is done (delivered,
filtered out or dead-lettered). A restart resumes after it, so it neither replays handled records
nor loses records written while the stack was stopped.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pathlib import Path

# One logger for the whole stream feed, whichever module speaks.
log = logging.getLogger("webbugger_cli.local.streams")

CHECKPOINTS_FILE = "stream-checkpoints.json"


@dataclass
class ShardCheckpoints:
    """Last handled sequence number per stream and shard, kept in one JSON file."""

    path: Path
    streams: dict[str, dict[str, str]] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> ShardCheckpoints:
        """The positions saved in ``path`` (none when it is missing or unreadable)."""
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
        """Write the positions (atomically: a crash leaves the old file or the new one)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps({"version": 1, "streams": self.streams}, indent=2, sort_keys=True))
        tmp.replace(self.path)

    def seen(self, stream_arn: str) -> bool:
        """Whether the stream was read before (else its event's StartingPosition applies)."""
        return stream_arn in self.streams

    def get(self, stream_arn: str, shard_id: str) -> str | None:
        """The last sequence number handled in the shard, if any."""
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
        """Record ``sequence`` as handled in the shard."""
        shards = self.streams.setdefault(stream_arn, {})
        if shards.get(shard_id) != sequence:
            shards[shard_id] = sequence
            self.save()

    def drop(self, stream_arn: str, shard_id: str) -> None:
        """Forget the shard's position (it is gone from the stream)."""
        if self.streams.get(stream_arn, {}).pop(shard_id, None) is not None:
            self.save()
