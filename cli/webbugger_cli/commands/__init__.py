"""Pieces the ``webbugger`` commands share: the one-line user error, tables and JSON-ready records."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal
from enum import Enum
from typing import Any

from webbugger_cli.terminal import terminal_text


class UsageError(Exception):
    """A command's arguments make no sense together; the message is one line for the user."""


def print_table(rows: list[tuple[str, ...]]) -> None:
    """Print ``rows`` (the first one a header) in left-aligned columns, every cell escaped for the
    terminal (:func:`~webbugger_cli.terminal.terminal_text`: stored text may hold control codes)."""
    rows = [tuple(terminal_text(cell) for cell in row) for row in rows]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())


def jsonable(value: object) -> Any:
    """``value`` as plain JSON data: datetimes as ISO 8601, sets as sorted lists, maps as dicts."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Enum):
        return jsonable(value.value)
    # Imported here: a command that prints no stored record (`url`) has no need of PynamoDB.
    from pynamodb.attributes import MapAttribute

    if isinstance(value, MapAttribute):
        return jsonable(value.as_dict())  # type: ignore[no-untyped-call]
    if isinstance(value, Mapping):
        return {str(key): jsonable(item) for key, item in value.items()}
    if isinstance(value, set | frozenset):
        return sorted((jsonable(item) for item in value), key=str)
    if isinstance(value, list | tuple):
        return [jsonable(item) for item in value]
    return str(value)


def record_fields(record: object) -> dict[str, Any]:
    """A stored record as a JSON-ready dict.

    The record's own ``to_record()`` when it has one; else a PynamoDB model's attributes (key
    first, unset ones as None); else a dataclass's fields; else its public attributes.
    """
    to_record = getattr(record, "to_record", None)
    if callable(to_record):
        data = to_record()
        if isinstance(data, Mapping):
            return {str(key): jsonable(value) for key, value in data.items()}
    from pynamodb.models import Model

    if isinstance(record, Model):
        values = record.attribute_values
        attributes = type(record).get_attributes()
        # The key first, then the other attributes in PynamoDB's order.
        names = sorted(attributes, key=lambda name: not attributes[name].is_hash_key)
        return {name: jsonable(values.get(name)) for name in names}
    if dataclasses.is_dataclass(record) and not isinstance(record, type):
        return {field.name: jsonable(getattr(record, field.name)) for field in dataclasses.fields(record)}
    public = {key: value for key, value in getattr(record, "__dict__", {}).items() if not key.startswith("_")}
    return {key: jsonable(value) for key, value in public.items()} or {"value": str(record)}


def display(value: Any) -> str:
    """One cell of human-readable output for a :func:`jsonable` value, escaped for the terminal."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(display(item) for item in value) or "-"
    if isinstance(value, dict):
        return ", ".join(f"{terminal_text(key)}={display(item)}" for key, item in value.items()) or "-"
    return terminal_text(value)
