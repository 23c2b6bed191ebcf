"""``webbugger sql "SELECT ..."``: SQL over the local stack's beacons with DuckDB (embedded),
the table and the named queries being the stack's Athena ones (:mod:`webbugger_cli.analytics`).

The table is ``beacons``. Without ``--parquet``, the local stack's labelled beacons of the range
are exported to a temporary directory first; with ``--parquet DIR``, the files of an earlier
``webbugger export --format parquet --output DIR`` (or of the stack's bucket, downloaded) are read.
"""

from __future__ import annotations

import json
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from webbugger_cli.commands import UsageError, display, jsonable, print_table
from webbugger_cli.commands.options import add_time_range

if TYPE_CHECKING:
    import argparse
    from typing import Any


def _print(columns: list[str], rows: list[tuple[Any, ...]], as_json: bool) -> None:
    if as_json:
        for row in rows:
            print(json.dumps({name: jsonable(value) for name, value in zip(columns, row, strict=True)}))
        return
    if not columns:
        return
    print_table([tuple(columns), *(tuple(display(jsonable(value)) for value in row) for row in rows)])


def _query_text(args: argparse.Namespace) -> str:
    from webbugger_cli.analytics import named_query

    if args.named is not None:
        if args.query is not None:
            raise UsageError("give a query or --named NAME, not both")
        return named_query(args.named).sql
    if args.query is None or not args.query.strip():
        raise UsageError('give a query (webbugger sql "SELECT ... FROM beacons"), --named NAME or --list')
    text: str = args.query
    return text


def cmd_sql(args: argparse.Namespace) -> int:
    """Run a query (or a named one) over the local stack's beacons, or list the named queries."""
    from webbugger_cli.analytics import connect, named_queries, run_sql

    if args.list:
        print_table([("NAME", "WHAT"), *((q.name, q.description) for q in named_queries())])
        return 0
    sql = _query_text(args)
    if args.parquet is not None:
        if not args.parquet.is_dir():
            raise UsageError(f"{args.parquet} is not a directory")
        columns, rows = run_sql(connect(args.parquet), sql)
    else:
        from webbugger_cli.commands.export import export_parquet, export_query

        with tempfile.TemporaryDirectory(prefix="webbugger-sql-") as scratch:
            args.output, args.format = Path(scratch) / "beacons", "parquet"
            for kind in ("target", "entity", "source"):
                setattr(args, kind, None)
            export_parquet(args, export_query(args, datetime.now(UTC)))
            columns, rows = run_sql(connect(args.output), sql)
    _print(columns, rows, args.json)
    sys.stdout.flush()
    return 0


def add_parsers(
    commands: argparse._SubParsersAction[argparse.ArgumentParser], common: argparse.ArgumentParser
) -> None:
    """Add ``sql`` to the command line."""
    sql = commands.add_parser(
        "sql",
        parents=[common],
        help="SQL over the local stack's beacons (DuckDB; the stack's Athena table and named queries)",
    )
    sql.add_argument("query", nargs="?", help='e.g. "SELECT class, count(*) FROM beacons GROUP BY class"')
    sql.add_argument("--named", metavar="NAME", help="run one of the named queries (see --list)")
    sql.add_argument("--list", action="store_true", help="list the named queries")
    sql.add_argument(
        "--parquet", type=Path, metavar="DIR", help="read these Parquet files (webbugger export --output DIR)"
    )
    add_time_range(
        sql,
        metavar="ISO",
        since_help="beacons from this time (default: 30 days ago)",
        until_help="beacons until this time (default: now)",
    )
    sql.add_argument("--json", action="store_true", help="one JSON object per row")
    sql.set_defaults(handler=cmd_sql)
