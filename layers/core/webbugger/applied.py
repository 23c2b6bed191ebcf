"""A deferred hook's write applied once per beacon without a transaction: one write unit.

The entity's record keeps the ids of the beacons applied to it lately, in an
:class:`AppliedBeacons` map (beacon id → when it was applied, epoch seconds).
:func:`update_once` adds the current beacon's id in the same UpdateItem as the hook's own
changes, conditional on the id not being there, so a redelivered beacon's write is refused.

Ids applied more than :data:`RETAIN_SECONDS` ago are dropped in the same write, so the map stays
small (an entity's last day of hits). That is safe: the stream delivers a record again at most
24 hours after it was written (its retention), and a beacon is applied after its record was
written; an id is kept for 26 hours after it was applied, beyond its last possible redelivery.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from pynamodb.attributes import MapAttribute
from pynamodb.exceptions import UpdateError
from pynamodb.expressions.operand import Path, Value

if TYPE_CHECKING:
    from collections.abc import Iterator

    from pynamodb.models import Model

RETAIN_SECONDS = 26 * 3600
_ATTEMPTS = 4


class Applying:
    """The beacon whose deferred hook is running, and whether a write of it was refused as
    applied before.

    A plain class, not a dataclass: only the stream uses it, but the track function imports this
    module (a plugin's model declares :class:`AppliedBeacons`), and a dataclass's methods are
    compiled when it is defined (bench/cold_start.py)."""

    __slots__ = ("beacon_id", "refused")

    def __init__(self, beacon_id: str, *, refused: bool = False) -> None:
        self.beacon_id = beacon_id
        self.refused = refused


_current: ContextVar[Applying | None] = ContextVar("webbugger_applying", default=None)


class AppliedBeacons(MapAttribute[str, Any]):
    """The ids of the beacons lately applied to a record, with when (declare one on a model
    whose deferred hook writes with :func:`update_once`)."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)  # type: ignore[no-untyped-call]

    @classmethod
    def is_raw(cls) -> bool:
        """Keys are beacon ids, not declared attributes."""
        return True


@contextmanager
def applying(beacon_id: str) -> Iterator[Applying]:
    """Make ``beacon_id`` the beacon whose deferred hook is running (used by the stream)."""
    state = Applying(beacon_id)
    token = _current.set(state)
    try:
        yield state
    finally:
        _current.reset(token)


def _applied_attribute(model: type[Model]) -> tuple[str, AppliedBeacons]:
    for python_name, attribute in model.get_attributes().items():
        if isinstance(attribute, AppliedBeacons):
            return python_name, attribute
    raise TypeError(f"update_once: {model.__name__} declares no AppliedBeacons attribute")


def _applied_now(record: Model, python_name: str) -> dict[str, Any] | None:
    value = getattr(record, python_name, None)
    return None if value is None else dict(value.as_dict())


def update_once(record: Model, actions: list[Any]) -> bool:
    """Apply update ``actions`` to ``record``: once per beacon inside a deferred hook (True if
    applied now, False if this beacon was applied before), directly elsewhere. The record's
    model declares an :class:`AppliedBeacons` attribute; the record need not be stored yet (the
    update creates it)."""
    state = _current.get()
    if state is None:
        record.update(actions=actions)
        return True
    beacon_id = state.beacon_id
    python_name, attribute = _applied_attribute(type(record))
    name = attribute.attr_name
    for _ in range(_ATTEMPTS):
        applied = _applied_now(record, python_name)
        if applied is not None and beacon_id in applied:
            state.refused = True
            return False
        now = int(time.time())
        if applied is None:
            extra = [attribute.set({beacon_id: now})]
            condition = attribute.does_not_exist()
        else:
            extra = [Path([name, beacon_id]).set(Value({"N": str(now)}))]
            extra += [Path([name, old]).remove() for old, at in applied.items() if at < now - RETAIN_SECONDS]
            condition = attribute.exists() & Path([name, beacon_id]).does_not_exist()
        try:
            record.update(actions=[*actions, *extra], condition=condition)
        except UpdateError as exc:
            if exc.cause_response_code != "ConditionalCheckFailedException":
                raise
            try:
                record.refresh(consistent_read=True)
            except type(record).DoesNotExist:
                setattr(record, python_name, None)
            continue
        return True
    raise RuntimeError(f"update_once: {type(record).__name__} kept changing; the record is retried")
