"""Affiliates: partners who send visitors, each with a hit counter.

The type is registered twice. As a **source**, ``load`` checks at hit time that the affiliate
exists (a link naming an unknown one answers 404). As an **entity** with a deferred hook,
``beacon_update`` adds one to ``hits`` from the beacons stream, after the visitor was answered,
inside the transaction that marks the beacon applied: a beacon delivered twice counts once.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pynamodb.attributes import NumberAttribute, UnicodeAttribute, UTCDateTimeAttribute
from pynamodb.exceptions import PutError
from pynamodb.models import Model
from webbugger.errors import WebbuggerError
from webbugger.ids import new_beacon_id
from webbugger.models import utcnow
from webbugger.plugins import Ref, current_transaction

if TYPE_CHECKING:
    from pynamodb.expressions.update import Action
    from webbugger.plugins import HitRequest

_CONDITION_FAILED = "ConditionalCheckFailedException"


class AffiliateExistsError(WebbuggerError):
    """An affiliate with this id already exists."""


class Affiliate(Model):
    """A partner who sends traffic, and how many hits it brought."""

    class Meta:
        # Replaced at first use by the table named in AFFILIATES_TABLE (see register()).
        table_name = "unbound-affiliates"

    id = UnicodeAttribute(hash_key=True)
    # None for an affiliate first seen on a hit (see get_or_create_affiliate).
    name = UnicodeAttribute(null=True)
    hits = NumberAttribute(default=0)
    created_at = UTCDateTimeAttribute()

    def beacon_update(self, request: HitRequest) -> None:
        """The deferred hook: count one hit, atomically (``ADD``), whatever the request was.

        Run by the stream function, the update joins the transaction that marks the beacon
        applied, so a redelivered beacon is not counted again. Called anywhere else (a test, a
        script), it updates the item directly.
        """
        actions: list[Action] = [Affiliate.hits.add(1)]
        transaction = current_transaction()
        if transaction is not None:
            transaction.update(self, actions=actions)
        else:
            self.update(actions=actions)

    def to_record(self) -> dict[str, object]:
        """JSON-ready view."""
        return {
            "id": self.id,
            "name": self.name,
            "hits": int(self.hits or 0),
            "created_at": self.created_at.isoformat(),
        }


def load_affiliate(affiliate_id: str) -> Affiliate | None:
    """The stored affiliate, or None (the source type's and the entity type's ``load``)."""
    try:
        return Affiliate.get(affiliate_id)
    except Affiliate.DoesNotExist:
        return None


def _put_new(affiliate: Affiliate) -> bool:
    """Store ``affiliate`` unless its id is taken; whether it was stored."""
    try:
        affiliate.save(condition=Affiliate.id.does_not_exist())
    except PutError as exc:
        if exc.cause_response_code == _CONDITION_FAILED:
            return False
        raise
    return True


def create_affiliate(affiliate_id: str, name: str) -> Affiliate:
    """Store a new affiliate with no hits; :class:`AffiliateExistsError` if the id is taken."""
    Ref("affiliate", affiliate_id)  # validates the id as a reference would
    affiliate = Affiliate(id=affiliate_id, name=name, hits=0, created_at=utcnow())
    if not _put_new(affiliate):
        raise AffiliateExistsError(f"affiliate {affiliate_id!r} already exists")
    return affiliate


def get_or_create_affiliate(affiliate_id: str | None) -> Affiliate:
    """The entity type's ``get_or_create``: the stored affiliate, else a new unnamed one.

    The stream function calls it with the beacon's id. An unknown id is stored (without a name)
    rather than refused, so that its hits are not lost and a beacon does not fail forever; a link
    that also names the affiliate as its source never gets here with an unknown id.
    """
    if affiliate_id is not None:
        found = load_affiliate(affiliate_id)
        if found is not None:
            return found
    affiliate = Affiliate(id=affiliate_id or new_beacon_id(), name=None, hits=0, created_at=utcnow())
    if _put_new(affiliate):
        return affiliate
    # Created by someone else between our read and our write: theirs is the record.
    return Affiliate.get(affiliate.id)
