"""Deferred entity hooks: run from the beacons table's stream, after the visitor was answered.

Delivery is at least once (a failed batch is retried), so each hook is applied once per beacon,
in one of two ways the plugin API offers:

- :func:`webbugger.plugins.update_once`: the hook's one write
  carries the beacon's id into the record's :class:`~webbugger.plugins.AppliedBeacons`, refused
  if it is there already. One write unit, no mark on the beacon.
- :func:`webbugger.plugins.current_transaction`: the writes the hook adds to it commit in one
  DynamoDB transaction with an "applied" mark on the beacon, conditional on the mark being
  absent. A redelivered beacon finds the mark and is skipped.

Either way a failed hook leaves nothing applied, and is retried.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pynamodb.exceptions import TransactWriteError
from pynamodb.transactions import TransactWrite

from webbugger.applied import applying
from webbugger.errors import UnknownTypeError
from webbugger.models import transaction_connection
from webbugger.modes import Mode
from webbugger.observability import MetricUnit, logger, metrics
from webbugger.plugins import joining_transaction
from webbugger.refs import Ref, parse_optional
from webbugger.registry import HookMode
from webbugger.request import EMPTY_QUERY, HitRequest

if TYPE_CHECKING:
    from typing import Any

    from webbugger.models import Beacon
    from webbugger.registry import Registry
    from webbugger.settings import Settings


def hit_request_from_beacon(beacon: Beacon) -> HitRequest:
    """The request a deferred hook sees, rebuilt from the stored beacon (the query string is not
    stored, so it is empty here)."""
    return HitRequest(
        beacon_id=beacon.id,
        time=beacon.created_at,
        mode=Mode(beacon.mode),
        method=beacon.method,
        ip=beacon.ip,
        user_agent=beacon.user_agent,
        referer=beacon.referer,
        language=beacon.language,
        country=beacon.country,
        query=EMPTY_QUERY,
        target=parse_optional(beacon.target),
        entity=parse_optional(beacon.entity, allow_new=True),
        source=parse_optional(beacon.source),
    )


def _already_applied(exc: TransactWriteError) -> bool:
    # The mark is the transaction's last item; only its condition failing means "done before".
    reasons = exc.cancellation_reasons or []
    if not reasons or reasons[-1] is None:
        return False
    others_ok = all(reason is None or reason.code == "None" for reason in reasons[:-1])
    return reasons[-1].code == "ConditionalCheckFailed" and others_ok


class _HookTransaction(TransactWrite):
    """The deferred hook's transaction: committed, with the beacon's "applied" mark, only if the
    hook wrote in it."""

    def __init__(self, beacon: Beacon, type_name: str, settings: Settings) -> None:
        super().__init__(connection=transaction_connection(settings))
        self._beacon, self._type_name = beacon, type_name
        self.used = False

    def condition_check(self, *args: Any, **kwargs: Any) -> None:
        self.used = True
        super().condition_check(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> None:
        self.used = True
        super().delete(*args, **kwargs)

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.used = True
        super().save(*args, **kwargs)

    def update(self, *args: Any, **kwargs: Any) -> None:
        self.used = True
        super().update(*args, **kwargs)

    def _commit(self) -> Any:
        if not self.used:
            return None
        applied = type(self._beacon).hooks_applied
        super().update(
            self._beacon,
            actions=[applied.add({self._type_name})],
            condition=applied.does_not_exist() | ~applied.contains(self._type_name),
        )
        return super()._commit()


def apply_deferred_hooks(beacon: Beacon, registry: Registry, settings: Settings) -> bool:
    """Run the deferred hook of the beacon's entity, once. True if it ran now, False if there was
    nothing to run or it had run before. Raises if the hook fails (so the record is retried)."""
    entity_text: str | None = beacon.entity  # PynamoDB types nullable attributes as non-null
    if entity_text is None:
        return False
    ref = Ref.parse(entity_text, allow_new=True)
    try:
        entity_type = registry.entity(ref.type)
    except UnknownTypeError:
        logger.warning("beacon names an entity type no plugin registers", extra={"entity": beacon.entity})
        return False
    if entity_type.hooks is not HookMode.DEFERRED or ref.type in (beacon.hooks_applied or set()):
        return False

    entity = entity_type.get_or_create(ref.id)
    hook = getattr(entity, "beacon_update", None)
    if not callable(hook):
        return False
    request = hit_request_from_beacon(beacon)
    try:
        with (
            _HookTransaction(beacon, ref.type, settings) as transaction,
            joining_transaction(transaction),
            applying(beacon.id) as once,
        ):
            hook(request)
    except TransactWriteError as exc:
        if _already_applied(exc):
            metrics.add_metric(name="DeferredHookDuplicates", unit=MetricUnit.Count, value=1)
            return False
        raise
    if once.refused:
        metrics.add_metric(name="DeferredHookDuplicates", unit=MetricUnit.Count, value=1)
        return False
    metrics.add_metric(name="DeferredHooksApplied", unit=MetricUnit.Count, value=1)
    return True
