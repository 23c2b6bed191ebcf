"""Helpers the built-in entity and source types share: race-free get-or-create, and writes that
a deferred hook applies once per beacon (so a beacon the stream delivers twice counts once)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from pynamodb.exceptions import PutError
from webbugger.ids import new_beacon_id
from webbugger.models import utcnow
from webbugger.plugins import AppliedBeacons, current_transaction, update_once

if TYPE_CHECKING:
    from collections.abc import Callable

    from pynamodb.models import Model

M = TypeVar("M", bound="Model")


def get_or_create(model: type[M], record_id: str | None) -> M:
    """The record with ``record_id``, created if missing; a new record (new id) when None."""
    if record_id is not None:
        try:
            return model.get(record_id)
        except model.DoesNotExist:
            pass
    record = model(id=record_id or new_beacon_id(), created_at=utcnow())
    try:
        record.save(condition=model._hash_key_attribute().does_not_exist())  # type: ignore[no-untyped-call]
    except PutError as exc:
        # Someone else created it between our read and write: theirs is the record.
        if exc.cause_response_code == "ConditionalCheckFailedException" and record_id is not None:
            return model.get(record_id)
        raise
    return record


def page_of(model: type[M]) -> Callable[[int, str | None], tuple[list[M], str | None]]:
    """A lister of ``model``'s records keyed by ``id`` (:data:`webbugger.plugins.Pager`): up to
    ``limit`` of them (table order) after the one with id ``after``, and the id to resume after."""

    def page(limit: int, after: str | None) -> tuple[list[M], str | None]:
        found = model.scan(limit=limit, last_evaluated_key={"id": {"S": after}} if after else None)
        records = list(found)
        last = found.last_evaluated_key
        return records, (last.get("id", {}).get("S") if last else None)

    return page


def new_unless_stored(model: type[M], record_id: str) -> M:
    """The stored record with ``record_id``, or a new one not stored yet: for a deferred hook that
    creates it with its first :func:`update` (one write instead of a put and an update)."""
    try:
        return model.get(record_id)
    except model.DoesNotExist:
        return model(id=record_id, created_at=utcnow())


def update(record: Model, actions: list[Any]) -> None:
    """Apply update ``actions`` atomically. In a deferred hook, once per beacon: in the same write
    when the model keeps the beacons applied to it (an ``AppliedBeacons`` attribute), else inside
    the hook's transaction (applied together with the beacon's "done" mark); directly otherwise."""
    if any(isinstance(attribute, AppliedBeacons) for attribute in type(record).get_attributes().values()):
        update_once(record, actions)
        return
    transaction = current_transaction()
    if transaction is not None:
        transaction.update(record, actions=actions)
    else:
        record.update(actions=actions)
