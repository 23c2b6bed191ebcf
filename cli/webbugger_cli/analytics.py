"""The analytics table locally: beacons as Parquet partitioned by day, and SQL over them with
DuckDB (embedded), with the columns and the named queries that template.yaml gives Athena.

One definition of each: the columns and their types are those of template.yaml's
``AnalyticsTable`` (a Glue table), the queries the ``QueryString`` of its
``AWS::Athena::NamedQuery`` resources; this module reads them from there, so a query that runs
here runs in the stack's Athena workgroup. The rows are :func:`webbugger.feed.shapes.hit_row`'s,
which the stream function sends to Firehose.

A local export holds one row per labelled beacon, its class as the table holds it now; the
deployed table holds a row per label and per class change, and the named queries keep each
hit's latest (highest ``label_version``), so both give the same figures. Beacons with no
reference are left out (the stream function never sees them, so Athena has none).
"""

from __future__ import annotations

import json
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from webbugger.feed.shapes import hit_row

from webbugger_cli.commands import UsageError
from webbugger_cli.template import Template, TemplateError, load_template

if TYPE_CHECKING:
    from collections.abc import Iterable
    from datetime import datetime

    import duckdb
    from webbugger.models import Beacon

TABLE_RESOURCE = "AnalyticsTable"
# Glue (Hive) types of the analytics table, as DuckDB types.
COLUMN_TYPES = {
    "string": "VARCHAR",
    "timestamp": "TIMESTAMP",
    "bigint": "BIGINT",
    "array<string>": "VARCHAR[]",
}


def _table_input(template: Template) -> dict[str, Any]:
    resource = template.resources.get(TABLE_RESOURCE)
    if resource is None:
        raise TemplateError(f"template.yaml has no {TABLE_RESOURCE}")
    table: dict[str, Any] = resource["Properties"]["TableInput"]
    return table


def analytics_columns(template: Template | None = None) -> list[tuple[str, str]]:
    """The table's columns, ``(name, Glue type)``, in order (the partition key not included)."""
    table = _table_input(template or load_template())
    return [(str(c["Name"]), str(c["Type"])) for c in table["StorageDescriptor"]["Columns"]]


def partition_key(template: Template | None = None) -> str:
    """The table's one partition key (``day``)."""
    (key,) = _table_input(template or load_template())["PartitionKeys"]
    name = str(key["Name"])
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", name):  # it is written into SQL below
        raise TemplateError(f"{TABLE_RESOURCE}'s partition key {name!r} is not a plain column name")
    return name


@dataclass(frozen=True, slots=True)
class NamedQuery:
    """One of the named queries of the Athena workgroup."""

    name: str
    description: str
    sql: str


def named_queries(template: Template | None = None) -> list[NamedQuery]:
    """The named queries of template.yaml, in its order."""
    found = (template or load_template()).resources.values()
    return [
        NamedQuery(str(p["Name"]), str(p.get("Description", "")), str(p["QueryString"]))
        for p in (r["Properties"] for r in found if r.get("Type") == "AWS::Athena::NamedQuery")
    ]


def named_query(name: str) -> NamedQuery:
    """The named query ``name``; :class:`UsageError` for one the template does not have."""
    queries = named_queries()
    for query in queries:
        if query.name == name:
            return query
    raise UsageError(f"no named query {name!r}: use one of {', '.join(q.name for q in queries)}")


def _duckdb_columns(template: Template) -> dict[str, str]:
    columns = {name: COLUMN_TYPES[kind] for name, kind in analytics_columns(template)}
    return columns | {partition_key(template): "VARCHAR"}


def rows_of(
    beacons: Iterable[Beacon], salt_secret: bytes, now: datetime, *, clear_entities: bool = False
) -> Iterable[dict[str, Any]]:
    """The analytics rows of the labelled beacons with a reference (as the stream sends them)."""
    for beacon in beacons:
        if beacon.classification and (beacon.target or beacon.entity or beacon.source):
            yield hit_row(beacon, salt_secret, now, clear_entities=clear_entities)


def write_parquet(rows: Iterable[dict[str, Any]], directory: Path) -> int:
    """Write ``rows`` as Parquet under ``directory`` (``day=YYYY-MM-DD/``, a new or empty
    directory); how many were written. Rows are spooled to a temporary file as they come, so
    memory stays bounded."""
    import duckdb

    if directory.exists() and (not directory.is_dir() or any(directory.iterdir())):
        raise UsageError(f"{directory} is not an empty directory: give a new one")
    template = load_template()
    columns = _duckdb_columns(template)
    count = 0
    with tempfile.TemporaryDirectory(prefix="webbugger-export-") as spool_dir:
        spool = Path(spool_dir) / "rows.jsonl"
        with spool.open("w", encoding="utf-8") as out:
            for row in rows:
                out.write(json.dumps(row, separators=(",", ":")) + "\n")
                count += 1
        if not count:
            directory.mkdir(parents=True, exist_ok=True)
            return 0
        connection = duckdb.connect()
        try:
            source = "SELECT * FROM read_json(?, format = 'newline_delimited', columns = ?)"
            relation = connection.sql(source, params=[str(spool), columns])
            relation.write_parquet(str(directory), partition_by=[partition_key(template)])
        finally:
            connection.close()
    return count


def connect(directory: Path) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with the view ``beacons`` over the Parquet under ``directory``."""
    import duckdb

    template = load_template()
    key = partition_key(template)
    connection = duckdb.connect()
    if any(directory.glob(f"{key}=*/*.parquet")):
        files = str(directory / f"{key}=*" / "*.parquet")
        hive = "hive_partitioning = true, hive_types = {'" + key + "': 'VARCHAR'}"
        select = f"SELECT * FROM read_parquet($files, {hive})"  # noqa: S608 - a checked column name
        relation = connection.sql(select, params={"files": files})
        relation.create_view("beacons")
    else:  # no rows: an empty table of the same columns, so that queries still run
        columns = ", ".join(f'"{name}" {kind}' for name, kind in _duckdb_columns(template).items())
        connection.execute(f"CREATE TABLE beacons ({columns})")
    return connection


def run_sql(connection: duckdb.DuckDBPyConnection, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """The column names and rows of ``sql``; :class:`UsageError` with DuckDB's message if it fails."""
    import duckdb

    try:
        relation: Any = connection.sql(sql)  # None for a statement without rows (older DuckDB)
        if relation is None:
            return [], []
        return list(relation.columns), relation.fetchall()
    except duckdb.Error as exc:
        raise UsageError(f"the query failed: {exc}") from None
