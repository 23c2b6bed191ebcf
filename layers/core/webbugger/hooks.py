"""Running plugin code (entity get-or-create and ``beacon_update``) inside a time budget.

A hook that raises or overruns is logged with its type name and counted; the visitor's response
never depends on it. An overrunning hook's thread is abandoned, not killed (Python cannot kill a
thread); a small pool bounds how many can pile up.
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


class HookFailedError(Exception):
    """A hook raised or overran; already logged and counted."""


def run_within_budget(what: str, type_name: str, budget_s: float, func: Callable[[], T]) -> T:
    """Run ``func`` with a deadline; raise :class:`HookFailedError` if it fails or overruns."""
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


def call_beacon_update(entity: Any, type_name: str, request: Any, budget_s: float) -> None:
    """Call ``entity.beacon_update(request)`` if the entity has one; never raises."""
    hook = getattr(entity, "beacon_update", None)
    if not callable(hook):
        return
    with suppress(HookFailedError):
        run_within_budget("beacon_update", type_name, budget_s, lambda: hook(request))
