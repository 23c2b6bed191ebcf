"""Where a hit on a stored link goes: its routing rules, then its A/B split, then its own URL.

**Rules** are ordered; the first whose conditions all hold wins. A condition lists the values it
accepts: ``device`` (``ios``, ``android``, ``desktop``), ``os`` (:data:`SYSTEMS`), ``country``
(ISO 3166-1 alpha-2, only as our CloudFront distribution says it: see
:func:`webbugger.request.country`), ``language`` (language ranges matched against the visitor's
most preferred ``Accept-Language`` tag, RFC 4647 basic filtering: ``de`` matches ``de`` and
``de-CH``), and ``query`` (parameters that must have exactly these values).

**A split** sends each visitor to one of weighted variants, the same one every time: the variant
is picked by a hash of the link id and the visitor (the entity the tracking URL names, else the
anonymised address and the user agent). No cookie, and nothing of the hash is stored: the beacon
keeps the variant's name only. After the split's ``ends_at`` its ``winner`` is served (the link's
own URL if none was chosen), and beacons name no variant any more.

Device and OS come from a few substring tests of the user agent (:func:`operating_system`), not a
user-agent parser: the track function does not load one (its cold start). They are checked
against ua-parser, which the stream function uses, in tests/unit/test_routing.py.

Everything here is plain Python on data already in the cached link: a hit costs no extra read.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from webbugger.errors import InvalidRoutingError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping

DEVICES = ("ios", "android", "desktop")
SYSTEMS = ("ios", "android", "windows", "macos", "linux", "chromeos")
# Ordered: iOS user agents say "like Mac OS X", Android ones "Linux", ChromeOS ones "X11; CrOS".
_OS_MARKERS = (
    ("iphone", "ios"),
    ("ipad", "ios"),
    ("ipod", "ios"),
    ("android", "android"),
    ("windows", "windows"),
    ("; cros ", "chromeos"),
    ("macintosh", "macos"),
    ("mac os x", "macos"),
    ("linux", "linux"),
)
_DEVICE_OF = {"ios": "ios", "android": "android"}  # every other system is a desktop one
MAX_RULES = 20
MAX_VARIANTS = 10
MAX_WEIGHT = 10_000
MAX_VALUES = 50
MAX_QUERY_CONDITIONS = 5
MAX_QUERY_TEXT = 128
# Accept-Language entries looked at: enough for any browser's list.
MAX_LANGUAGES = 20
NAME = re.compile(r"[A-Za-z0-9_-]{1,32}\Z")
_COUNTRY = re.compile(r"[A-Z]{2}\Z")
_LANGUAGE_RANGE = re.compile(r"[a-z]{1,8}(?:-[a-z0-9]{1,8})*\Z")
_RULE_FIELDS = {"name", "url", "device", "os", "country", "language", "query"}
_SPLIT_FIELDS = {"variants", "ends_at", "winner"}
_VARIANT_FIELDS = {"name", "url", "weight"}


def operating_system(user_agent: str | None) -> str | None:
    """The visitor's OS by substring tests (one of :data:`SYSTEMS`), or None when none matches.

    iPadOS's Safari asks for desktop pages with a Mac user agent, so an iPad may count as macOS.
    """
    if not user_agent:
        return None
    text = user_agent.lower()
    return next((name for marker, name in _OS_MARKERS if marker in text), None)


def device_family(system: str | None) -> str | None:
    """``ios`` or ``android`` for those systems, ``desktop`` for the others, None for no system."""
    return None if system is None else _DEVICE_OF.get(system, "desktop")


def preferred_language(header: str | None) -> str | None:
    """The ``Accept-Language`` tag with the highest quality (the first of equals), lower case."""
    best, best_q = None, 0.0
    for entry in (header or "").split(",")[:MAX_LANGUAGES]:
        tag, _, params = entry.partition(";")
        tag = tag.strip().lower()
        if not tag or tag == "*":
            continue
        quality = 1.0
        name, _, value = params.strip().partition("=")
        if name.strip() == "q":
            try:
                quality = float(value)
            except ValueError:
                continue
        if quality > best_q:
            best, best_q = tag, quality
    return best


class Visitor:
    """What rules and splits look at, each derived on first use only (most links have no rules)."""

    def __init__(
        self,
        user_agent: str | None,
        country: str | None,
        accept_language: str | None,
        query: Mapping[str, str],
        identity: Callable[[], str],
    ) -> None:
        self.user_agent = user_agent
        self.country = country
        self.query = query
        self._accept_language = accept_language
        self._identity = identity
        self._derived: dict[str, str | None] = {}

    def _once(self, name: str, derive: Callable[[], str | None]) -> str | None:
        if name not in self._derived:
            self._derived[name] = derive()
        return self._derived[name]

    @property
    def os(self) -> str | None:
        """The OS family (:func:`operating_system`)."""
        return self._once("os", lambda: operating_system(self.user_agent))

    @property
    def device(self) -> str | None:
        """The device family (:func:`device_family`)."""
        return self._once("device", lambda: device_family(self.os))

    @property
    def language(self) -> str | None:
        """The most preferred language tag (:func:`preferred_language`)."""
        return self._once("language", lambda: preferred_language(self._accept_language))

    @property
    def identity(self) -> str:
        """Who the visitor is, for a split: the same text on every visit."""
        return self._once("identity", self._identity) or ""


@dataclass(frozen=True, slots=True)
class Decision:
    """Where a hit goes, and what the beacon records of why: the rule or the variant, by name."""

    url: str
    rule: str | None = None
    variant: str | None = None


@dataclass(frozen=True, slots=True)
class Rule:
    """One routing rule: a destination and the conditions (all must hold) that send a hit there."""

    name: str
    url: str
    device: frozenset[str] = frozenset()
    os: frozenset[str] = frozenset()
    country: frozenset[str] = frozenset()
    language: tuple[str, ...] = ()
    query: tuple[tuple[str, str], ...] = ()

    def matches(self, visitor: Visitor) -> bool:
        """Whether every condition of the rule holds for ``visitor``."""
        if self.country and visitor.country not in self.country:
            return False
        if self.query and any(visitor.query.get(key) != value for key, value in self.query):
            return False
        if self.device and visitor.device not in self.device:
            return False
        if self.os and visitor.os not in self.os:
            return False
        if self.language:
            tag = visitor.language
            if tag is None or not any(tag == r or tag.startswith(r + "-") for r in self.language):
                return False
        return True

    def as_dict(self) -> dict[str, Any]:
        """The stored (and JSON) form: only the conditions it has."""
        data: dict[str, Any] = {"name": self.name, "url": self.url}
        for field in ("device", "os", "country"):
            if getattr(self, field):
                data[field] = sorted(getattr(self, field))
        if self.language:
            data["language"] = list(self.language)
        if self.query:
            data["query"] = dict(self.query)
        return data


@dataclass(frozen=True, slots=True)
class Variant:
    """One destination of a split, and its share (weight over the sum of the weights)."""

    name: str
    url: str
    weight: int

    def as_dict(self) -> dict[str, Any]:
        """The stored (and JSON) form."""
        return {"name": self.name, "url": self.url, "weight": self.weight}


@dataclass(frozen=True, slots=True)
class Split:
    """Weighted variants, stable per visitor, until ``ends_at``; then the ``winner``."""

    variants: tuple[Variant, ...]
    ends_at: datetime | None = None
    winner: str | None = None

    def pick(self, link_id: str, identity: str) -> Variant:
        """The variant of the visitor ``identity`` on link ``link_id`` (the same every time)."""
        total = sum(variant.weight for variant in self.variants)
        digest = hashlib.sha256(f"{link_id}\x00{identity}".encode("utf-8", "replace")).digest()
        point = int.from_bytes(digest[:8], "big") % total
        for variant in self.variants:
            point -= variant.weight
            if point < 0:
                return variant
        return self.variants[-1]  # not reached: point < total

    def decide(self, link_id: str, visitor: Visitor, now: datetime) -> Decision | None:
        """The visitor's variant; after the end the winner's URL, or None (the link's own URL)."""
        if self.ends_at is not None and now >= self.ends_at:
            won = next((v for v in self.variants if v.name == self.winner), None)
            return None if won is None else Decision(won.url)
        variant = self.pick(link_id, visitor.identity)
        return Decision(variant.url, variant=variant.name)

    def as_dict(self) -> dict[str, Any]:
        """The stored (and JSON) form; ``ends_at`` in ISO 8601."""
        return {
            "variants": [variant.as_dict() for variant in self.variants],
            "ends_at": None if self.ends_at is None else self.ends_at.isoformat(),
            "winner": self.winner,
        }


@dataclass(frozen=True, slots=True)
class Routing:
    """A link's rules and split, parsed once when the link is loaded (and cached with it)."""

    rules: tuple[Rule, ...] = ()
    split: Split | None = None

    def decide(self, link_id: str, visitor: Visitor, now: datetime) -> Decision | None:
        """The first matching rule's destination, else the split's, else None (the link's URL)."""
        for rule in self.rules:
            if rule.matches(visitor):
                return Decision(rule.url, rule=rule.name)
        if self.split is not None:
            return self.split.decide(link_id, visitor, now)
        return None


# --- parsing: the write path checks and normalises; the read path (hot) trusts the shape less ---


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
