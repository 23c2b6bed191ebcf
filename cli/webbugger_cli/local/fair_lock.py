"""A lock that serves the threads waiting for it in arrival order."""

from __future__ import annotations

import collections
import threading


class FairLock:
    """A lock taken in the order it was asked for (first come, first served).

    ``threading.Lock`` lets a newcomer take a lock just released ahead of the threads already
    waiting: under load (bench/load.py, 50 connections) some requests waited over 30 s while the
    median waited 2 s. Here the releaser hands the lock to the longest waiter.
    """

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._waiting: collections.deque[threading.Lock] = collections.deque()
        self._held = False

    def __enter__(self) -> FairLock:
        with self._guard:
            if not self._held:
                self._held = True
                return self
            turn = threading.Lock()
            turn.acquire()
            self._waiting.append(turn)
        turn.acquire()  # released by __exit__ when this thread's turn comes; held from then on
        return self

    @property
    def waiting(self) -> int:
        """How many threads wait for the lock."""
        with self._guard:
            return len(self._waiting)

    def __exit__(self, *exc: object) -> None:
        with self._guard:
            if self._waiting:
                self._waiting.popleft().release()  # handed over: stays held
            else:
                self._held = False
