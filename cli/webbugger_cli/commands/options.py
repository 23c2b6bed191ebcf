"""Arguments the commands share: ISO 8601 times and a --from/--to range, bounded whole numbers."""

from __future__ import annotations

import argparse
import re
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

_DATE_ONLY = re.compile(r"\d{4}-\d{2}-\d{2}\Z")


def parse_time(text: str, *, end_of_day: bool = False) -> datetime:
    """An ISO 8601 date or time, as an aware UTC datetime (a time without an offset is UTC).

    A bare date is the start of that UTC day, or with ``end_of_day`` its last microsecond.
    """
    value = text.strip()
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not an ISO 8601 date or time: {text!r} (e.g. 2025-01-31 or 2025-01-31T12:00:00Z)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    if end_of_day and _DATE_ONLY.match(value):
        moment += timedelta(days=1, microseconds=-1)
    return moment.astimezone(UTC)


def iso_time(text: str) -> datetime:
    """argparse type: :func:`parse_time`."""
    return parse_time(text)


def iso_time_end(text: str) -> datetime:
    """argparse type: :func:`parse_time`, a bare date meaning through the end of that day."""
    return parse_time(text, end_of_day=True)


def add_time_range(
    parser: argparse.ArgumentParser, *, metavar: str, since_help: str, until_help: str
) -> None:
    """``--from`` and ``--to`` (``args.since``, ``args.until``): times, a bare ``--to`` date
    meaning through its end."""
    parser.add_argument("--from", dest="since", type=iso_time, metavar=metavar, help=since_help)
    parser.add_argument("--to", dest="until", type=iso_time_end, metavar=metavar, help=until_help)


def bounded(low: int, high: int) -> Callable[[str], int]:
    """argparse type: a whole number from ``low`` to ``high``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"must be from {low} to {high}, got {value}")
        return value

    return parse


def positive(text: str) -> int:
    """argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value
