"""``webbugger export``: beacons as CSV or JSON lines on stdout, written as they are read; or,
from the local stack, as Parquet files partitioned by day (``--format parquet --output DIR``:
the analytics table's rows, :mod:`webbugger_cli.analytics`).

Rows stream out newest first, a query page at a time: memory stays bounded however many beacons
the range holds. On a terminal, stderr shows a progress bar (how far back in the range the export
has got) and a count; otherwise stderr gets one summary line at the end.
"""

from __future__ import annotations

import csv
import itertools
import json
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, TextIO

from webbugger.csv_cells import csv_row
from webbugger.refs import Ref
from webbugger.registry import Kind

from webbugger_cli.commands import UsageError
from webbugger_cli.commands.backends import open_backend
from webbugger_cli.commands.options import add_time_range

if TYPE_CHECKING:
    import argparse
    from collections.abc import Callable, Iterable, Sequence

    from webbugger.service.beacons import BeaconQuery as ExportQuery

    from webbugger_cli.commands.backend_records import Record

DEFAULT_DAYS = 30
FORMATS = ("csv", "jsonl", "parquet")
BAR_WIDTH = 30
REFRESH_SECONDS = 0.1


def export_columns() -> list[str]:
    """The CSV columns: the keys of :meth:`Beacon.to_record`, in its order."""
    from webbugger.models import BEACON_RECORD_FIELDS  # PynamoDB: only for a command that reads beacons

    return list(BEACON_RECORD_FIELDS)


class RecordWriter(Protocol):
    """Writes records to a text stream, one at a time."""

    def write(self, record: Record) -> None:
        """Write one record."""


class CsvWriter:
    """CSV with a header row (written at once, so an empty export is still a valid file); cells a
    spreadsheet would run as formulas are quoted (:mod:`webbugger.csv_cells`)."""

    def __init__(self, out: TextIO, columns: Sequence[str]) -> None:
        # CRLF after each record, as RFC 4180 and the admin API's /export?format=csv have it.
        self._writer = csv.DictWriter(
            out, fieldnames=list(columns), extrasaction="ignore", lineterminator="\r\n"
        )
        self._writer.writeheader()

    def write(self, record: Record) -> None:
        self._writer.writerow(csv_row(record))


class JsonlWriter:
    """One JSON object per line."""

    def __init__(self, out: TextIO) -> None:
        self._out = out

    def write(self, record: Record) -> None:
        self._out.write(json.dumps(record) + "\n")


def make_writer(fmt: str, out: TextIO) -> RecordWriter:
    """The writer of format ``fmt`` (csv or jsonl)."""
    if fmt == "csv":
        return CsvWriter(out, export_columns())
    return JsonlWriter(out)


def _beacons(count: int) -> str:
    return f"{count:,} beacon{'' if count == 1 else 's'}"


class Progress:
    """Progress on ``stream``: a live bar and count on a terminal, else one summary line at the end.

    Beacons come newest first, so how far the export has got is how far back from ``until``
    toward ``since`` the last beacon written was made.
    """

    def __init__(
        self,
        stream: TextIO,
        since: datetime,
        until: datetime,
        *,
        clock: Callable[[], float] = time.monotonic,
        refresh: float = REFRESH_SECONDS,
    ) -> None:
        self.stream = stream
        self.since, self.until = since, until
        self.live = stream.isatty()
        self._clock = clock
        self._refresh = refresh
        self._last_drawn: float | None = None
        self._drawn = False

    def fraction(self, created_at: str | None) -> float:
        """How much of the range lies between ``until`` and a beacon made at ``created_at``."""
        span = (self.until - self.since).total_seconds()
        if not created_at or span <= 0:
            return 0.0
        try:
            moment = datetime.fromisoformat(created_at)
        except ValueError:
            return 0.0
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return min(1.0, max(0.0, (self.until - moment).total_seconds() / span))

    def _draw(self, count: int, fraction: float) -> None:
        filled = round(fraction * BAR_WIDTH)
        bar = "█" * filled + "░" * (BAR_WIDTH - filled)
        self.stream.write(f"\r{bar} {fraction:4.0%}  {_beacons(count)}")
        self.stream.flush()
        self._drawn = True

    def update(self, count: int, created_at: str | None) -> None:
        """After each record: redraw the bar at most every ``refresh`` seconds (terminal only)."""
        if not self.live:
            return
        now = self._clock()
        if self._last_drawn is not None and now - self._last_drawn < self._refresh:
            return
        self._last_drawn = now
        self._draw(count, self.fraction(created_at))

    def finish(self, count: int) -> None:
        """The summary line (replacing the bar on a terminal)."""
        clear = "\r\x1b[K" if self._drawn else ""
        self.stream.write(f"{clear}exported {_beacons(count)}\n")
        self.stream.flush()

    def abort(self) -> None:
        """End a drawn bar's line, so that an error message starts on its own line."""
        if self._drawn:
            self.stream.write("\n")
            self.stream.flush()


def write_records(records: Iterable[Record], writer: RecordWriter, progress: Progress) -> int:
    """Write every record as it comes; how many were written."""
    count = 0
    try:
        for record in records:
            writer.write(record)
            count += 1
            created_at = record.get("created_at")
            progress.update(count, created_at if isinstance(created_at, str) else None)
    except BaseException:
        progress.abort()
        raise
    progress.finish(count)
    return count


def export_query(args: argparse.Namespace, now: datetime) -> ExportQuery:
    """The query the options ask for; :class:`UsageError` for a range that makes no sense."""
    from webbugger.service.beacons import BeaconQuery as ExportQuery  # PynamoDB: not at start-up

    until: datetime = args.until if args.until is not None else now
    since: datetime = args.since if args.since is not None else until - timedelta(days=DEFAULT_DAYS)
    if since > until:
        raise UsageError(f"--from {since.isoformat()} is later than --to {until.isoformat()}")
    for kind in Kind:
        text = getattr(args, kind.value)
        if text is not None:
            # Not checked against the registry: old beacons may name types no longer registered.
            return ExportQuery(since, until, kind, Ref.parse(text))
    return ExportQuery(since, until)


def cmd_export(args: argparse.Namespace) -> int:
    """Stream beacons to stdout (or write Parquet files)."""
    query = export_query(args, datetime.now(UTC))
    if args.format == "parquet":
        return export_parquet(args, query)
    backend = open_backend(args.stack, args.region)
    records = iter(backend.export(query))
    first = next(records, None)
    if first is None and query.kind is not None and query.ref is not None:
        # Nothing for a reference: the stats of its last days refuse it if it names no record
        # and nothing was counted (a mistyped id must not read as "no traffic").
        last = query.until.date()
        backend.stats(query.kind, query.ref, max(query.since.date(), last - timedelta(days=365)), last)
    writer = make_writer(args.format, sys.stdout)
    progress = Progress(sys.stderr, query.since, query.until)
    write_records(itertools.chain([first] if first is not None else [], records), writer, progress)
    sys.stdout.flush()
    return 0


def export_parquet(args: argparse.Namespace, query: ExportQuery) -> int:
    """The local stack's labelled beacons as the analytics table's Parquet, under ``--output``."""
    if args.stack is not None:
        raise UsageError(
            "--format parquet reads the local stack; a deployed stack's Parquet is in its "
            "AnalyticsBucketName (EnableAnalytics)"
        )
    if args.output is None:
        raise UsageError("--format parquet writes files: give --output DIR (a new directory)")
    from webbugger.service.beacons import find_beacons, within_retention
    from webbugger.settings import load_settings
    from webbugger.signing import load_visitor_salt

    from webbugger_cli.analytics import rows_of, write_parquet

    open_backend(None, None)  # the local stack: its tables bound, its environment applied
    settings = load_settings()
    salt = load_visitor_salt(settings)  # the stream function's, for the same people
    clear = settings.analytics_entities == "clear"  # as the stack's AnalyticsEntities says
    beacons = find_beacons(within_retention(query, settings.retention_days))
    count = write_parquet(rows_of(beacons, salt, datetime.now(UTC), clear_entities=clear), args.output)
    print(f"exported {count:,} row{'' if count == 1 else 's'} to {args.output}", file=sys.stderr)
    return 0


def add_parsers(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Add ``export`` to the command line."""
    export = commands.add_parser(
        "export", parents=[common], help="write beacons to stdout as CSV or JSON lines, newest first"
    )
    add_time_range(
        export,
        metavar="ISO",
        since_help=f"from this time (ISO 8601, UTC if no offset; default: {DEFAULT_DAYS} days before --to)",
        until_help="until this time (a bare date: through its end; default: now)",
    )
    only = export.add_mutually_exclusive_group()
    for kind in Kind:
        only.add_argument(f"--{kind.value}", metavar="TYPE:ID", help=f"only the beacons of this {kind}")
    export.add_argument("--format", choices=FORMATS, default="csv", help="output format (default: csv)")
    export.add_argument(
        "--output",
        type=Path,
        metavar="DIR",
        help="with --format parquet: a new directory for DIR/day=YYYY-MM-DD/*.parquet",
    )
    export.set_defaults(handler=cmd_export)
