"""What the hit feed says about a hit: an EventBridge event's detail, and an analytics row.

Both are made from a stored beacon. Neither carries the client address or the user agent: the
event has the browser, OS and device family, the country and the references; the row has, in
place of an address, the hit's *person* for the day, as the counters count people
(:mod:`webbugger.persons`): ``e#TYPE:ID`` for an entity, else ``v#KEY``, the daily-salted visitor
key (not linkable across days), so that unique figures can be computed from rows.

A row names its entity by a pseudonym (:func:`analytics_entity`: the type, then a keyed hash of
the reference under a key derived from the visitor-salt secret), in ``entity`` and in
``person``, unless the stack keeps them in clear (``ANALYTICS_ENTITIES=clear``): the analytics
bucket is not reached by an erasure (its rows expire by lifecycle), so by default it names
nobody, and whoever reads it without the secret cannot test a guessed id. Events name the entity
in clear: they are delivered to the stack owner's own rules, not kept by the stack.

``label_version`` is the beacon's ``version`` when the class was read: every write of another
beacon's processing to this one (a relabel among them) raises it, so of two events or rows about
one beacon, the one with the higher version holds the later class. The event's schema is
``docs/hit-event.schema.json`` (:data:`SCHEMA_VERSION`); the row's columns are those of
template.yaml's ``AnalyticsTable``.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from webbugger.counters import daily_salt, day_of
from webbugger.labels import Device
from webbugger.persons import person_of
from webbugger.signing import keyed_digest

if TYPE_CHECKING:
    from webbugger.models import Beacon

# Raised on a change that breaks a consumer (a field removed or retyped); new fields do not.
SCHEMA_VERSION = 1
EVENT_SOURCE = "webbugger"
LABELLED = "Hit labelled"
RELABELLED = "Hit relabelled"


def utc_text(moment: datetime) -> str:
    """ISO 8601 in UTC to the millisecond with a ``Z`` (what Athena's JSON reader parses)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def device_of(beacon: Beacon) -> Device:
    """The beacon's browser, OS and device family: as stored, else parsed from its user agent."""
    if beacon.browser or beacon.os or beacon.device or not beacon.user_agent:
        return Device(beacon.browser, beacon.os, beacon.device)
    from webbugger.classify import parse_device  # compiled at the stream function's init

    return parse_device(beacon.user_agent)


def analytics_entity(salt_secret: bytes, entity: str) -> str:
    """The pseudonym of ``entity`` (``TYPE:ID``) in analytics rows: ``TYPE:`` and 24 hex digits
    (96 bits: no collision among billions), the same in every row and day of one deployment."""
    entity_type, _, _ = entity.partition(":")
    return f"{entity_type}:{keyed_digest(salt_secret, b'analytics-entity', entity)[:24]}"


def person_key(beacon: Beacon, salt_secret: bytes) -> str | None:
    """The beacon's person that day (``e#ENTITY`` or ``v#KEY``), None when it has none."""
    person = person_of(beacon, daily_salt(salt_secret, day_of(beacon.created_at)))
    return None if person is None else person.removeprefix("p#")


def _common(beacon: Beacon) -> dict[str, Any]:
    device = device_of(beacon)
    return {
        "id": beacon.id,
        "mode": beacon.mode,
        "target": beacon.target,
        "entity": beacon.entity,
        "source": beacon.source,
        "class": beacon.classification,
        "reasons": [str(reason) for reason in beacon.reasons or ()],
        "browser": device.browser,
        "os": device.os,
        "device": device.device,
        "country": beacon.country,
        "label_version": int(beacon.version or 0),
    }


def hit_event(beacon: Beacon, previous: str | None = None) -> dict[str, Any]:
    """The detail of a ``Hit labelled`` event, or of ``Hit relabelled`` with ``previous``, the
    class it had."""
    detail: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "time": utc_text(beacon.created_at)}
    detail |= _common(beacon)
    if previous is not None:
        detail["previous_class"] = previous
    return detail


def hit_row(
    beacon: Beacon, salt_secret: bytes, labelled_at: datetime, *, clear_entities: bool = False
) -> dict[str, Any]:
    """The analytics row of the beacon as labelled now (``day``: the partition, its UTC day); its
    entity pseudonymised (:func:`analytics_entity`) unless ``clear_entities``."""
    row: dict[str, Any] = {"ts": utc_text(beacon.created_at)}
    row |= _common(beacon)
    person = person_key(beacon, salt_secret)
    entity: str | None = beacon.entity  # PynamoDB types it non-null
    if entity and not clear_entities:
        row["entity"] = analytics_entity(salt_secret, entity)
        if person == f"e#{entity}":
            person = f"e#{row['entity']}"
    row |= {"person": person, "labelled_at": utc_text(labelled_at), "day": day_of(beacon.created_at)}
    return row
