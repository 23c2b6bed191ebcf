"""A small time-bounded cache for lookups on the hot path (targets and sources).

A container serves many hits of the same link, so a link is read once per ``ttl`` seconds.
When a refresh fails (the database is slow or down) a stale entry is used rather than failing
the visitor.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Hashable

_MISSING = object()


class LookupCache:
    """Cache of ``key -> value`` (None included) that expires entries after ``ttl`` seconds."""

    def __init__(self, ttl: float, max_entries: int = 10_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: dict[Hashable, tuple[float, Any]] = {}
        self._lock = threading.Lock()

    def get(self, key: Hashable, load: Callable[[], Any]) -> Any:
        """The cached value of ``key``, loading it when absent or expired."""
        now = time.monotonic()
        entry = self._entries.get(key)
        if entry is not None and now - entry[0] < self.ttl:
            return entry[1]
        try:
            value = load()
        except Exception:
            if entry is not None:
                return entry[1]  # stale beats failing the visitor
            raise
        with self._lock:
            if len(self._entries) >= self.max_entries:
                self._entries.clear()
            self._entries[key] = (now, value)
        return value

    def clear(self) -> None:
        """Forget everything."""
        with self._lock:
            self._entries.clear()
