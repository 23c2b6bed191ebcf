"""Re-run classification on stored beacons (after the lists or the data file changed) and move the
counts of each beacon whose class changes between human and machine, exactly once.

The counts move through :func:`webbugger.labelling.relabel`, conditional on the class it reads: a
second run, or a run beside the stream function, finds the class already changed and moves
nothing. Beacons the stream function has not labelled yet are left to it.

A hit's class can depend on its entity's other hits (:func:`webbugger.classify.settle_all`): a
click up to :data:`~webbugger.classify.EVIDENCE_WINDOW` later vouches for an open, an open that
is human on its own in the week before a click blocks that, and a honeypot hit pulls in its
neighbours. So an entity's hits are read from a week (and the honeypot window) before ``since``,
and settled together; only those made from ``since`` on are changed.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from webbugger.beacon_queries import beacons_between
from webbugger.classify import (
    EVIDENCE_WINDOW,
    HONEYPOT_WINDOW,
    Hit,
    Verdict,
    classify_hit,
    entity_hit,
    settle_all,
)
from webbugger.refs import Ref
from webbugger.registry import Kind

if TYPE_CHECKING:
    from datetime import datetime

    from webbugger.models import Beacon
    from webbugger.settings import Settings


@dataclass
class Reclassified:
    """What a run examined and changed."""

    examined: int = 0
    unlabelled: int = 0
    changed: Counter[str] = field(default_factory=Counter)  # "old -> new" -> beacons

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "examined": self.examined,
            "unlabelled": self.unlabelled,
            "changed": sum(self.changed.values()),
            "by_change": dict(sorted(self.changed.items())),
        }


def _entity_verdicts(entity: str, since: datetime, until: datetime) -> list[tuple[Beacon, Verdict]]:
    reach = since - EVIDENCE_WINDOW - HONEYPOT_WINDOW
    stored = list(beacons_between(reach, until, kind=Kind.ENTITY, ref=Ref.parse(entity, allow_new=True)))
    verdicts = settle_all([entity_hit(beacon) for beacon in stored])
    return [(beacon, verdicts[beacon.id]) for beacon in stored if beacon.created_at >= since]


def _apply(
    beacon: Beacon, verdict: Verdict, salt_secret: bytes, settings: Settings, result: Reclassified
) -> None:
    from webbugger.labelling import relabel

    result.examined += 1
    old: str | None = beacon.classification  # PynamoDB types it non-null
    if old is None:
        result.unlabelled += 1
    elif old != verdict.classification and relabel(beacon, verdict, salt_secret, settings):
        result.changed[f"{old} -> {verdict.classification}"] += 1


def reclassify(since: datetime, until: datetime, salt_secret: bytes, settings: Settings) -> Reclassified:
    """Classify again every beacon made from ``since`` to ``until`` and store each changed class
    (with its counts moved, once); what was examined and changed."""
    result = Reclassified()
    entities: set[str] = set()
    for beacon in beacons_between(since, until):
        if beacon.entity:
            entities.add(beacon.entity)  # settled with the entity's other hits below
        else:
            _apply(beacon, classify_hit(Hit.of(beacon)), salt_secret, settings, result)
    for entity in sorted(entities):
        for beacon, verdict in _entity_verdicts(entity, since, until):
            _apply(beacon, verdict, salt_secret, settings, result)
    return result
