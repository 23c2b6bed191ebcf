"""The local server's per-function lock serves requests in arrival order.

Found by bench/load.py: with ``threading.Lock`` a request could be overtaken again and again by
newer ones (50 connections, one track invocation at a time: median wait 2 s, some over 30 s).
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from webbugger_cli.local.fair_lock import FairLock

if TYPE_CHECKING:
    from collections.abc import Callable

BOUND_S = 10.0  # no wait in these tests comes near this


def _until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + BOUND_S
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.001)


def test_waiters_are_served_in_arrival_order_and_a_newcomer_queues_behind_them() -> None:
    lock = FairLock()
    order: list[object] = []

    def take(name: int) -> None:
        with lock:
            order.append(name)

    lock.__enter__()  # this thread holds it while the others line up
    threads = []
    for name in range(8):
        thread = threading.Thread(target=take, args=(name,), daemon=True)
        thread.start()
        threads.append(thread)
        _until(lambda n=name: lock.waiting == n + 1)
    lock.__exit__(None)
    with lock:  # asked again at once, as a busy connection does: after everyone waiting
        order.append("again")
    for thread in threads:
        thread.join(BOUND_S)

    assert order == [*range(8), "again"]
    assert lock.waiting == 0


def test_one_holder_at_a_time_under_contention() -> None:
    lock = FairLock()
    inside = 0
    most = 0
    entries = 0

    def work() -> None:
        nonlocal inside, most, entries
        for _ in range(200):
            with lock:
                inside += 1
                most = max(most, inside)
                entries += 1
                inside -= 1

    threads = [threading.Thread(target=work, daemon=True) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(BOUND_S)

    assert (most, entries, lock.waiting) == (1, 16 * 200, 0)
    with lock:  # free again afterwards
        pass
