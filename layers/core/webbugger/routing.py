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
The fields' stored (and JSON) form is read and checked by :mod:`webbugger.routing_fields`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Mapping
    from datetime import datetime

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
# Accept-Language entries looked at: enough for any browser's list.
MAX_LANGUAGES = 20


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
