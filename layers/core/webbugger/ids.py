"""Identifiers: time-sortable beacon ids and short random link ids."""

from __future__ import annotations

import os
import time
from datetime import UTC, datetime, timedelta

# Crockford's base32: sorts the same as text and as numbers, no confusable letters.
_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_DECODE = {c: i for i, c in enumerate(_CROCKFORD)}
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)


def epoch_ms(moment: datetime) -> int:
    """Milliseconds since the epoch, in integers (floating point can land 1 ms short)."""
    return (moment - _EPOCH) // _MILLISECOND


def _encode(value: int, length: int) -> str:
    out = []
    for _ in range(length):
        value, digit = divmod(value, 32)
        out.append(_CROCKFORD[digit])
    return "".join(reversed(out))


def new_beacon_id(now_ms: int | None = None) -> str:
    """A 26-character ULID: 48 bits of milliseconds since the epoch, then 80 random bits."""
    ms = int(time.time() * 1000) if now_ms is None else now_ms
    # os.urandom is what the secrets module draws from; importing secrets costs the track
    # function's cold start (bench/cold_start.py) for nothing a beacon needs.
    return _encode(ms, 10) + _encode(int.from_bytes(os.urandom(10)), 16)


def beacon_id_time(beacon_id: str) -> datetime:
    """The creation time encoded in a beacon id."""
    ms = 0
    for char in beacon_id[:10]:
        ms = ms * 32 + _DECODE[char]
    return _EPOCH + ms * _MILLISECOND


def beacon_id_floor(moment: datetime) -> str:
    """The smallest beacon id that can have been made at ``moment`` (for range queries)."""
    return _encode(max(0, epoch_ms(moment)), 10) + "0" * 16  # no id is older than 1970


def new_link_id(length: int = 8) -> str:
    """A short random id for a stored link (62^8 ≈ 2e14 values; creation also checks for clashes)."""
    import secrets  # admin and CLI only: kept off the track function's import

    return "".join(secrets.choice(_BASE62) for _ in range(length))
