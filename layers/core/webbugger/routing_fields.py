"""A stored link's ``rules`` and ``split`` fields: read from their stored or JSON form, checked
and normalised, into :mod:`webbugger.routing`'s objects.

The write path (the admin API, the CLI, the link store) checks everything and normalises each
destination with :func:`webbugger.destinations.normalise_destination`; the read path (a link
loaded by the track function) parses what was stored, each destination checked again by
:func:`webbugger.destinations.safe_location`. A mistake raises :class:`InvalidRoutingError`
naming the field (``rules[2].country``) and what is wrong.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from webbugger.errors import InvalidRoutingError
from webbugger.routing import DEVICES, SYSTEMS, Rule, Split, Variant

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

MAX_RULES = 20
MAX_VARIANTS = 10
MAX_WEIGHT = 10_000
MAX_VALUES = 50
MAX_QUERY_CONDITIONS = 5
MAX_QUERY_TEXT = 128
NAME = re.compile(r"[A-Za-z0-9_-]{1,32}\Z")
_COUNTRY = re.compile(r"[A-Z]{2}\Z")
_LANGUAGE_RANGE = re.compile(r"[a-z]{1,8}(?:-[a-z0-9]{1,8})*\Z")
_RULE_FIELDS = {"name", "url", "device", "os", "country", "language", "query"}
_SPLIT_FIELDS = {"variants", "ends_at", "winner"}
_VARIANT_FIELDS = {"name", "url", "weight"}


def _mapping(raw: object, where: str, allowed: set[str]) -> Mapping[str, Any]:
    if not isinstance(raw, dict):
        raise InvalidRoutingError(f"{where} must be an object")
    unknown = sorted(set(raw) - allowed)
    if unknown:
        raise InvalidRoutingError(f"{where}: unknown field(s) {', '.join(map(str, unknown))}")
    return raw


def _name(raw: object, where: str) -> str:
    if not isinstance(raw, str) or not NAME.match(raw):
        raise InvalidRoutingError(f"{where}: a name is 1 to 32 letters, digits, '-' or '_'")
    return raw


def _values(raw: object, where: str, check: Callable[[str], str | None]) -> list[str]:
    items = [raw] if isinstance(raw, str) else raw
    if not isinstance(items, list) or not items or len(items) > MAX_VALUES:
        raise InvalidRoutingError(f"{where} must list 1 to {MAX_VALUES} values")
    found = []
    for item in items:
        value = check(item) if isinstance(item, str) else None
        if value is None:
            raise InvalidRoutingError(f"{where}: {item!r:.40} is not a valid value")
        found.append(value)
    return list(dict.fromkeys(found))


def _one_of(choices: Iterable[str]) -> Callable[[str], str | None]:
    allowed = set(choices)
    return lambda text: text.lower() if text.lower() in allowed else None


def _country(text: str) -> str | None:
    return text.upper() if _COUNTRY.match(text.upper()) else None


def _language(text: str) -> str | None:
    return text.lower() if _LANGUAGE_RANGE.match(text.lower()) else None


def _query(raw: object, where: str) -> tuple[tuple[str, str], ...]:
    if not isinstance(raw, dict) or not raw or len(raw) > MAX_QUERY_CONDITIONS:
        raise InvalidRoutingError(f"{where} must be an object of 1 to {MAX_QUERY_CONDITIONS} parameters")
    pairs = []
    for key, value in raw.items():
        if not isinstance(key, str) or not isinstance(value, str) or not key:
            raise InvalidRoutingError(f"{where}: parameters and values must be text")
        if len(key) > MAX_QUERY_TEXT or len(value) > MAX_QUERY_TEXT:
            raise InvalidRoutingError(f"{where}: at most {MAX_QUERY_TEXT} characters a parameter or value")
        pairs.append((key, value))
    return tuple(sorted(pairs))


def _rule(raw: object, where: str, name: str, destination: Callable[[str], str]) -> Rule:
    fields = _mapping(raw, where, _RULE_FIELDS)
    url = fields.get("url")
    if not isinstance(url, str):
        raise InvalidRoutingError(f"{where} needs a url")
    conditions: dict[str, Any] = {}
    checks = {
        "device": _one_of(DEVICES),
        "os": _one_of(SYSTEMS),
        "country": _country,
        "language": _language,
    }
    for field, check in checks.items():
        if fields.get(field) is not None:
            conditions[field] = _values(fields[field], f"{where}.{field}", check)
    if fields.get("query") is not None:
        conditions["query"] = _query(fields["query"], f"{where}.query")
    if not conditions:
        raise InvalidRoutingError(f"{where} needs a condition: device, os, country, language or query")
    return Rule(
        name=name,
        url=destination(url),
        device=frozenset(conditions.get("device", ())),
        os=frozenset(conditions.get("os", ())),
        country=frozenset(conditions.get("country", ())),
        language=tuple(conditions.get("language", ())),
        query=conditions.get("query", ()),
    )


def parse_rules(raw: object, destination: Callable[[str], str]) -> tuple[Rule, ...]:
    """Rules from their stored or JSON form; a rule without a name gets the first free ``rN``.

    ``destination`` checks (and may rewrite) each rule's URL. Raises :class:`InvalidRoutingError`
    (or the destination check's error) saying what is wrong.
    """
    if raw is None:
        return ()
    if not isinstance(raw, list) or len(raw) > MAX_RULES:
        raise InvalidRoutingError(f"rules must be a list of at most {MAX_RULES}")
    given = [item.get("name") if isinstance(item, dict) else None for item in raw]
    names = [_name(name, f"rules[{i}].name") if name is not None else None for i, name in enumerate(given)]
    taken = {name for name in names if name is not None}
    if len(taken) != len([name for name in names if name is not None]):
        raise InvalidRoutingError("rule names must be unique")
    rules = []
    free = (f"r{n}" for n in range(1, 2 * MAX_RULES + 2) if f"r{n}" not in taken)
    for index, item in enumerate(raw):
        rules.append(_rule(item, f"rules[{index}]", names[index] or next(free), destination))
    return tuple(rules)


def _moment(raw: object, where: str) -> datetime | None:
    if raw is None or isinstance(raw, datetime):
        moment = raw
    elif isinstance(raw, str):
        try:
            moment = datetime.fromisoformat(raw)
        except ValueError:
            raise InvalidRoutingError(f"{where} must be an ISO 8601 time") from None
    else:
        raise InvalidRoutingError(f"{where} must be an ISO 8601 time")
    if moment is not None and moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment


def _weight(raw: object, where: str) -> int:
    if isinstance(raw, float) and raw.is_integer():
        raw = int(raw)  # a stored number may come back as a float
    if not isinstance(raw, int) or isinstance(raw, bool) or not 1 <= raw <= MAX_WEIGHT:
        raise InvalidRoutingError(f"{where} must be a whole number from 1 to {MAX_WEIGHT}")
    return raw


def parse_split(raw: object, destination: Callable[[str], str]) -> Split | None:
    """A split from its stored or JSON form (None for none); 2 to 10 variants with unique names,
    a winner (if any) among them. Raises :class:`InvalidRoutingError` saying what is wrong."""
    if raw is None:
        return None
    fields = _mapping(raw, "split", _SPLIT_FIELDS)
    items = fields.get("variants")
    if not isinstance(items, list) or not 2 <= len(items) <= MAX_VARIANTS:
        raise InvalidRoutingError(f"split.variants must list 2 to {MAX_VARIANTS} variants")
    variants = []
    for index, item in enumerate(items):
        where = f"split.variants[{index}]"
        variant = _mapping(item, where, _VARIANT_FIELDS)
        url = variant.get("url")
        if not isinstance(url, str):
            raise InvalidRoutingError(f"{where} needs a url")
        weight = _weight(variant.get("weight", 1), f"{where}.weight")
        variants.append(Variant(_name(variant.get("name"), f"{where}.name"), destination(url), weight))
    if len({variant.name for variant in variants}) != len(variants):
        raise InvalidRoutingError("variant names must be unique")
    winner = fields.get("winner")
    if winner is not None and winner not in {variant.name for variant in variants}:
        raise InvalidRoutingError(f"split.winner {winner!r:.40} is not one of the variants")
    return Split(tuple(variants), _moment(fields.get("ends_at"), "split.ends_at"), winner)


def check_rules(raw: object, destination: Callable[[str], str]) -> list[dict[str, Any]]:
    """Rules as they are stored: checked, normalised, each named."""
    return [rule.as_dict() for rule in parse_rules(raw, destination)]


def check_split(raw: object, destination: Callable[[str], str]) -> dict[str, Any] | None:
    """A split as it is stored: checked and normalised (None for none)."""
    split = parse_split(raw, destination)
    return None if split is None else split.as_dict()
