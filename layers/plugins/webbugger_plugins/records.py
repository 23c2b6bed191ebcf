"""Helpers the built-in entity and source types share: race-free get-or-create, and writes that
join the stream's transaction when a deferred hook runs (so a beacon is applied once)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar

from pynamodb.exceptions import PutError
from webbugger.ids import new_beacon_id
from webbugger.models import utcnow
from webbugger.plugins import current_transaction

if TYPE_CHECKING:
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


def update(record: Model, actions: list[Any]) -> None:
    """Apply update ``actions`` atomically: inside the deferred hook's transaction when there is
    one (applied together with the beacon's "done" mark), directly otherwise."""
    transaction = current_transaction()
    if transaction is not None:
        transaction.update(record, actions=actions)
    else:
        record.update(actions=actions)
