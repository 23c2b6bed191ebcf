"""A test plugin: the ``probe`` entity, with a deferred hook that counts the beacons applied to it.

Its table is declared only here (``WEBBUGGER_TEST_PROBES_TABLE``, not in template.yaml), as a
third-party plugin's would be: the local stack makes it from the model's schema.

- ``probe:<id>``: the hook adds 1 to ``applied``, inside the stream's transaction (so a beacon
  delivered twice counts once);
- ``probe:boom-<id>``: the hook raises, every time (a poison record);
- ``probe:flaky-<id>``: the hook raises on its first call for that id, then counts as usual.

``CALLS`` counts hook calls per id, in this process (the local stack runs in the test process).
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from pynamodb.attributes import NumberAttribute, UnicodeAttribute, UTCDateTimeAttribute
from pynamodb.exceptions import PutError
from pynamodb.models import Model
from webbugger.ids import new_beacon_id
from webbugger.models import utcnow
from webbugger.plugins import HookMode, current_transaction

if TYPE_CHECKING:
    from webbugger.plugins import HitRequest, PluginTypes

TYPE_NAME = "probe"
TABLE_VARIABLE = "WEBBUGGER_TEST_PROBES_TABLE"
CALLS: Counter[str] = Counter()


class ProbeHookError(RuntimeError):
    """Raised on purpose by the hook of a ``boom-`` or first-time ``flaky-`` probe."""


class Probe(Model):
    """A probe entity: how many beacons its deferred hook applied."""

    class Meta:
        table_name = "unbound-probes"

    id = UnicodeAttribute(hash_key=True)
    created_at = UTCDateTimeAttribute()
    applied = NumberAttribute(default=0)

    def beacon_update(self, request: HitRequest) -> None:
        """Count the beacon, in the deferred hook's transaction."""
        CALLS[self.id] += 1
        if self.id.startswith("boom-") or (self.id.startswith("flaky-") and CALLS[self.id] == 1):
            raise ProbeHookError(f"probe {self.id} fails on purpose")
        actions = [Probe.applied.add(1)]
        transaction = current_transaction()
        if transaction is None:
            self.update(actions=actions)
        else:
            transaction.update(self, actions=actions)


def load(probe_id: str) -> Probe | None:
    """The stored probe, or None."""
    try:
        return Probe.get(probe_id, consistent_read=True)
    except Probe.DoesNotExist:
        return None


def get_or_create(probe_id: str | None) -> Probe:
    """The probe with this id, created when missing."""
    if probe_id is not None:
        found = load(probe_id)
        if found is not None:
            return found
    probe = Probe(id=probe_id or new_beacon_id(), created_at=utcnow())
    try:
        probe.save(condition=Probe.id.does_not_exist())
    except PutError:
        if probe_id is None:
            raise
        return Probe.get(probe_id, consistent_read=True)
    return probe


def register(types: PluginTypes) -> None:
    """Plugin entry point."""
    types.table(Probe, variable=TABLE_VARIABLE)
    types.entity(TYPE_NAME, get_or_create=get_or_create, load=load, hooks=HookMode.DEFERRED)
