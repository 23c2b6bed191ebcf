"""Running plugin code (entity get-or-create and ``beacon_update``) inside a time budget.

A hook that raises or overruns is logged with its type name and counted; the visitor's response
never depends on it. An overrunning hook's thread is abandoned, not killed (Python cannot kill a
thread); a small pool bounds how many can pile up.

The budget is for a hook's work, not for its start-up: each hook's first call in a container
(which creates its database client, imports what it imports lazily, opens its first connection)
gets the cold budget instead (:class:`HookBudgets`), so that a new container's first hit is not
recorded without its entity's id for want of a few hundred milliseconds.
"""

from __future__ import annotations

import threading
from concurrent.futures import TimeoutError as FutureTimeoutError
from contextlib import suppress
from typing import TYPE_CHECKING, Any, TypeVar

from webbugger.observability import MetricUnit, logger, metrics

if TYPE_CHECKING:
    from collections.abc import Callable
    from concurrent.futures import ThreadPoolExecutor

T = TypeVar("T")
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _executor() -> ThreadPoolExecutor:
    # Imported on the first inline hook, not at the track function's cold start: most hits run none.
    from concurrent.futures import ThreadPoolExecutor

    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="webbugger-hook")
        return _pool


class HookBudgets:
    """How long each hook call may take: ``cold_s`` for each hook's first call (per hook and
    type), ``budget_s`` after that."""

    def __init__(self, budget_s: float, cold_s: float) -> None:
        self.budget_s = budget_s
        self.cold_s = max(cold_s, budget_s)
        self._called: set[tuple[str, str]] = set()

    def next_call(self, what: str, type_name: str) -> float:
        """The budget of the next call of hook ``what`` of ``type_name``."""
        key = (what, type_name)
        if key in self._called:
            return self.budget_s
        self._called.add(key)  # whether it then finishes in time or not: the start-up is paid
        return self.cold_s


class HookFailedError(Exception):
    """A hook raised or overran; already logged and counted."""


def run_within_budget(what: str, type_name: str, budgets: HookBudgets, func: Callable[[], T]) -> T:
    """Run ``func`` (hook ``what`` of ``type_name``) with the deadline ``budgets`` give its call;
    raise :class:`HookFailedError` if it fails or overruns."""
    budget_s = budgets.next_call(what, type_name)
    future = _executor().submit(func)
    try:
        return future.result(timeout=budget_s)
    except FutureTimeoutError:
        logger.warning(
            "hook overran its budget",
            extra={"hook": what, "type": type_name, "budget_ms": round(budget_s * 1000)},
        )
        metrics.add_metric(name="HookTimeouts", unit=MetricUnit.Count, value=1)
        raise HookFailedError(what) from None
    except Exception as exc:
        logger.exception("hook raised", extra={"hook": what, "type": type_name, "error": repr(exc)})
        metrics.add_metric(name="HookErrors", unit=MetricUnit.Count, value=1)
        raise HookFailedError(what) from exc


def call_beacon_update(entity: Any, type_name: str, request: Any, budgets: HookBudgets) -> None:
    """Call ``entity.beacon_update(request)`` if the entity has one; never raises."""
    hook = getattr(entity, "beacon_update", None)
    if not callable(hook):
        return
    with suppress(HookFailedError):
        run_within_budget("beacon_update", type_name, budgets, lambda: hook(request))
