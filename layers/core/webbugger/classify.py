"""Human or machine: the class of every hit, its reasons, and its browser, OS and device family.

Runs in the stream function only (never on the track function's path): crawlerdetect and ua-parser
are imported on first use.

A hit's *own* class comes from what it carries (:func:`classify_hit`), strongest signal first:

1. the ``honeypot`` hint (the hit followed an invisible link no person sees) → security-scanner;
2. our table of user agents (``data/machines.json``: mail proxies, Apple's privacy prefetch,
   scanners, link-preview bots);
3. the ``prefetch`` hint (``Purpose``/``Sec-Purpose: prefetch``) → privacy-prefetch;
4. crawlerdetect's list of crawler user agents (known mail clients it mistakes for bots excepted),
   and ua-parser's "Spider" device family → crawler;
5. published network ranges (``data/machines.json``), matched on the stored network (the address
   is kept as its /24 or /48, so the range and that network must overlap);
6. ``HEAD`` → unknown-machine;
7. a hit less than :data:`SECONDS_AFTER_MINT` seconds after its URL was minted → security-scanner;
8. no user agent at all (unless the visitor opted out, which removes it) → unknown-machine.

Every signal found is kept as a reason; the first one decides the class. No signal: human.

Then the hits of one *entity* (a recipient) are settled together (:func:`settle`):

* a honeypot hit makes the entity's other hits within :data:`HONEYPOT_WINDOW` machine too
  (a scanner follows every link of a mail at once);
* a human click is evidence of a human open: the latest open of the same entity and source in the
  :data:`EVIDENCE_WINDOW` before the click, labelled mail-proxy or privacy-prefetch, becomes human
  (Apple's and Gmail's proxies fetch the pixel in place of the reader, so the proxy's fetch is the
  only open we will ever see of a reader who then clicked), unless that window already holds an
  open that is human on its own. One click upgrades at most one open.

"The same visitor" is the entity here: a proxy's fetch never shares the reader's address or user
agent, so the hashed visitor key cannot pair them, while the entity (one recipient of one mail) is
exactly the person. Both rules read only the hits' own classes and the honeypot hints, which never
change once stored, so the settled class of each hit is a function of which hits exist, not of the
order the stream delivers them in: whichever hit arrives last sees the others and corrects them
(:func:`label_beacon`).
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache, lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from webbugger.labels import HUMAN, Device, Verdict
from webbugger.modes import Mode

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence

    from webbugger.models import Beacon
    from webbugger.settings import Settings

MAIL_PROXY = "mail-proxy"
PRIVACY_PREFETCH = "privacy-prefetch"
SECURITY_SCANNER = "security-scanner"
LINK_PREVIEW = "link-preview"
CRAWLER = "crawler"
UNKNOWN_MACHINE = "unknown-machine"
CLASSES = (HUMAN, MAIL_PROXY, PRIVACY_PREFETCH, SECURITY_SCANNER, LINK_PREVIEW, CRAWLER, UNKNOWN_MACHINE)
MACHINE_CLASSES = CLASSES[1:]

# A hit this soon after its URL was minted is a machine's. Mail senders mint a recipient's URLs
# when they build the message, so this is "seconds after sending": delivery alone takes a second
# or more, and security gateways open every link while the mail is being delivered (within
# seconds), whereas a person has to notice the mail, open it and read it before clicking. Ten
# seconds keeps the fastest plausible human (a mail opened the moment it lands) out, and catches
# the gateways that fetch at delivery. URLs minted long before sending simply give no signal.
SECONDS_AFTER_MINT = 10
# Hits dated before their URL's minting by at most this much are clock skew between the minting
# machine and AWS, and still count as "just after minting"; earlier ones give no timing signal.
CLOCK_SKEW_SECONDS = 5
HONEYPOT_WINDOW = timedelta(seconds=2)
EVIDENCE_WINDOW = timedelta(days=7)
# Opens a later human click can vouch for: fetches made in place of a reader.
UPGRADABLE = frozenset({MAIL_PROXY, PRIVACY_PREFETCH})
HINT_HONEYPOT = "honeypot"
HINT_PREFETCH = "prefetch"
# Entries of the entity read when settling one hit (newest first): bounds the work of an entity
# with very many hits (e.g. an IP entity); beyond it, older hits are not re-settled.
MAX_NEIGHBOURS = 500
# How far one hit's class can depend on another's: an open on a click up to EVIDENCE_WINDOW
# later, that click on the opens up to EVIDENCE_WINDOW before it, and honeypots around both.
REACH = 2 * EVIDENCE_WINDOW + 2 * HONEYPOT_WINDOW

DATA_FILE = Path(__file__).resolve().parent / "data" / "machines.json"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class UserAgentRule:
    """One user-agent entry of the data file."""

    id: str
    classification: str | None  # None for a known mail client (a person's)
    exact: bool
    pattern: str
    modes: frozenset[str] = frozenset({Mode.PIXEL, Mode.REDIRECT})

    def matches(self, user_agent: str, mode: str | None = None) -> bool:
        """Whether ``user_agent`` (on a hit of ``mode``, if given) is this entry's."""
        if mode is not None and mode not in self.modes:
            return False
        if self.exact:
            return user_agent.strip() == self.pattern
        return self.pattern.lower() in user_agent.lower()


@dataclass(frozen=True, slots=True)
class NetworkRule:
    """One provider's published ranges."""

    id: str
    classification: str
    ranges: tuple[Network, ...]


@dataclass(frozen=True, slots=True)
class Machines:
    """The data file, parsed."""

    user_agents: tuple[UserAgentRule, ...]
    networks: tuple[NetworkRule, ...]
    mail_clients: tuple[UserAgentRule, ...]


def _ua_rule(entry: dict[str, Any], classification: str | None) -> UserAgentRule:
    match = entry.get("match", "contains")
    if match not in ("exact", "contains"):
        raise ValueError(f"{entry['id']}: match must be 'exact' or 'contains', got {match!r}")
    modes = frozenset(Mode(mode) for mode in entry.get("modes", list(Mode)))
    return UserAgentRule(entry["id"], classification, match == "exact", entry["pattern"], modes)


def parse_machines(data: dict[str, Any]) -> Machines:
    """Check and parse the data file's content (a wrong class or range is an error here)."""
    for entry in [*data["user_agents"], *data["networks"], *data["mail_clients"]]:
        if not entry.get("source", "").startswith("https://") or not entry.get("checked"):
            raise ValueError(f"{entry.get('id')}: every entry needs a https source and a checked date")
    for entry in [*data["user_agents"], *data["networks"]]:
        if entry["class"] not in MACHINE_CLASSES:
            raise ValueError(f"{entry['id']}: unknown class {entry['class']!r}")
    return Machines(
        user_agents=tuple(_ua_rule(entry, entry["class"]) for entry in data["user_agents"]),
        networks=tuple(
            NetworkRule(entry["id"], entry["class"], tuple(ipaddress.ip_network(r) for r in entry["ranges"]))
            for entry in data["networks"]
        ),
        mail_clients=tuple(_ua_rule(entry, None) for entry in data["mail_clients"]),
    )


@cache
def machines() -> Machines:
    """The packaged data file (read once per container)."""
    return parse_machines(json.loads(DATA_FILE.read_text(encoding="utf-8")))


@cache
def _crawler_detect() -> Any:
    from crawlerdetect import CrawlerDetect  # type: ignore[import-untyped]  # stream function only

    return CrawlerDetect()


@lru_cache(maxsize=4096)
def is_crawler(user_agent: str) -> bool:
    """crawlerdetect's verdict (cached per user agent)."""
    return bool(_crawler_detect().isCrawler(user_agent))


def _family(part: Any) -> str | None:
    family = getattr(part, "family", None)
    return None if family in (None, "", "Other") else str(family)


@lru_cache(maxsize=4096)
def parse_device(user_agent: str | None) -> Device:
    """ua-parser's reading of a user agent (its bundled regexes; cached per user agent)."""
    if not user_agent:
        return Device()
    from ua_parser import parse  # stream function only

    result = parse(user_agent)
    return Device(_family(result.user_agent), _family(result.os), _family(result.device))


def warm_up() -> None:
    """Load the data file and both parsers' rules now (~0.4 s of CPU): the stream function calls
    this at init, where Lambda gives the CPU anyway, so that its first record does not wait."""
    classify_hit(Hit(user_agent="Mozilla/5.0 (X11; Linux x86_64) warm-up"))


def stored_network(ip: str | None) -> Network | None:
    """The network a stored address stands for: an anonymised one (host bits zero) is its /24 or
    /48, a full one is itself. None when there is no address or it does not parse."""
    if not ip:
        return None
    try:
        address = ipaddress.ip_address(ip.strip())
    except ValueError:
        return None
    prefix = 24 if address.version == 4 else 48
    network = ipaddress.ip_network(f"{address}/{prefix}", strict=False)
    return network if network.network_address == address else ipaddress.ip_network(address)


@dataclass(frozen=True, slots=True)
class Hit:
    """What classification reads of one hit."""

    mode: str = Mode.PIXEL
    method: str = "GET"
    user_agent: str | None = None
    ip: str | None = None
    hints: frozenset[str] = frozenset()
    seconds_after_mint: float | None = None
    opted_out: bool = False

    @classmethod
    def of(cls, beacon: Beacon) -> Hit:
        """The hit a stored beacon records."""
        minted = beacon.minted
        after = None if minted is None else beacon.created_at.timestamp() - float(minted)
        return cls(
            mode=beacon.mode,
            method=beacon.method,
            user_agent=beacon.user_agent,
            ip=beacon.ip,
            hints=frozenset(beacon.hints or ()),
            seconds_after_mint=after,
            opted_out=bool(beacon.opted_out),
        )


def _network_signal(network: Network | None, table: Machines) -> tuple[str, str] | None:
    if network is None:
        return None
    for rule in table.networks:
        if any(r.version == network.version and r.overlaps(network) for r in rule.ranges):
            return rule.classification, f"range:{rule.id}"
    return None


def _user_agent_signals(user_agent: str, mode: str, table: Machines) -> list[tuple[str, str]]:
    for rule in table.user_agents:
        if rule.matches(user_agent, mode):
            return [(str(rule.classification), f"ua:{rule.id}")]
    return []


def _crawler_signal(user_agent: str, table: Machines) -> tuple[str, str] | None:
    if any(rule.matches(user_agent) for rule in table.mail_clients):
        return None
    if is_crawler(user_agent):
        return CRAWLER, "ua:crawler"
    if parse_device(user_agent).device == "Spider":
        return CRAWLER, "ua:spider"
    return None


def classify_hit(hit: Hit, table: Machines | None = None) -> Verdict:
    """A hit's own class, from what it carries (see the module's docstring for the order)."""
    table = table or machines()
    signals: list[tuple[str, str]] = []
    if HINT_HONEYPOT in hit.hints:
        signals.append((SECURITY_SCANNER, "honeypot"))
    if hit.user_agent:
        signals += _user_agent_signals(hit.user_agent, hit.mode, table)
    if HINT_PREFETCH in hit.hints:
        signals.append((PRIVACY_PREFETCH, "prefetch"))
    if hit.user_agent:
        # A self-declared crawler outranks an address: providers' ranges host many services.
        crawler = _crawler_signal(hit.user_agent, table)
        if crawler:
            signals.append(crawler)
    network = _network_signal(stored_network(hit.ip), table)
    if network:
        signals.append(network)
    if hit.method.upper() == "HEAD":
        signals.append((UNKNOWN_MACHINE, "method:head"))
    after = hit.seconds_after_mint
    if after is not None and -CLOCK_SKEW_SECONDS <= after < SECONDS_AFTER_MINT:
        signals.append((SECURITY_SCANNER, f"timing:{max(0, int(after))}s"))
    if not hit.user_agent and not hit.opted_out:
        signals.append((UNKNOWN_MACHINE, "ua:none"))
    if not signals:
        return Verdict(HUMAN)
    return Verdict(signals[0][0], tuple(dict.fromkeys(reason for _, reason in signals)))


# --- one entity's hits together ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class EntityHit:
    """One hit of an entity, as :func:`settle` sees it."""

    id: str
    time: datetime
    mode: str
    source: str | None
    own: Verdict
    honeypot: bool


def entity_hit(beacon: Beacon) -> EntityHit:
    """A stored beacon as an entity's hit (its own class computed here)."""
    hit = Hit.of(beacon)
    return EntityHit(
        beacon.id,
        beacon.created_at,
        beacon.mode,
        beacon.source,
        classify_hit(hit),
        HINT_HONEYPOT in hit.hints,
    )


def _near_honeypot(hits: Sequence[EntityHit]) -> set[str]:
    """Ids of the hits within HONEYPOT_WINDOW of another hit that followed a honeypot link
    (O(hits x honeypot hits): honeypot hits are few)."""
    traps = [hit for hit in hits if hit.honeypot]
    return {
        hit.id
        for hit in hits
        if any(trap.id != hit.id and abs(trap.time - hit.time) <= HONEYPOT_WINDOW for trap in traps)
    }


def _evidenced(click: EntityHit, hits: Sequence[EntityHit], near: set[str]) -> str | None:
    opens = [
        hit
        for hit in hits
        if hit.mode == Mode.PIXEL
        and hit.source == click.source
        and click.time - EVIDENCE_WINDOW <= hit.time <= click.time
        and hit.id not in near
    ]
    if any(hit.own.human for hit in opens):
        return None
    candidates = [hit for hit in opens if hit.own.classification in UPGRADABLE]
    return max(candidates, key=lambda hit: hit.id).id if candidates else None


def evidenced_open(click: EntityHit, hits: Sequence[EntityHit]) -> str | None:
    """The id of the open a human click vouches for, if any (see the module's docstring)."""
    return _evidenced(click, hits, _near_honeypot(hits))


def settle_all(hits: Sequence[EntityHit]) -> dict[str, Verdict]:
    """The class of each of one entity's hits, given all of them (O(clicks x hits))."""
    near = _near_honeypot(hits)
    vouched: dict[str, str] = {}  # open id -> the earliest human click vouching for it
    for click in sorted(hits, key=lambda hit: hit.id):
        if click.mode == Mode.REDIRECT and click.own.human and click.id not in near:
            opened = _evidenced(click, hits, near)
            if opened is not None:
                vouched.setdefault(opened, click.id)
    verdicts = {}
    for hit in hits:
        if not hit.honeypot and hit.id in near:
            verdicts[hit.id] = Verdict(SECURITY_SCANNER, (*hit.own.reasons, "honeypot-window"))
        elif hit.id in vouched:
            verdicts[hit.id] = Verdict(HUMAN, (*hit.own.reasons, f"click:{vouched[hit.id]}"))
        else:
            verdicts[hit.id] = hit.own
    return verdicts


def settle(hit: EntityHit, hits: Sequence[EntityHit]) -> Verdict:
    """The class of ``hit`` given every hit of its entity (``hits``, which may include it)."""
    others = [other for other in hits if other.id != hit.id]
    return settle_all([*others, hit])[hit.id]


# --- storing labels (stream function) ---------------------------------------------------------


def entity_beacons(entity: str, around: datetime) -> list[Beacon]:
    """The entity's beacons whose class can depend on a hit at ``around`` (newest first, capped)."""
    from webbugger.ids import beacon_id_floor
    from webbugger.models import Beacon, hydrate

    low = beacon_id_floor(around - REACH)
    high = beacon_id_floor(around + REACH + timedelta(milliseconds=1))
    query = Beacon.by_entity.query(
        entity, Beacon.id.between(low, high), scan_index_forward=False, limit=MAX_NEIGHBOURS
    )
    return list(hydrate(query, consistent_read=True))


def _affected(beacon: Beacon, others: Iterable[Beacon]) -> list[Beacon]:
    # The hits whose class the arrival of `beacon` can change.
    span = EVIDENCE_WINDOW + HONEYPOT_WINDOW
    return [other for other in others if abs(other.created_at - beacon.created_at) <= span]


def label_beacon(beacon: Beacon, salt_secret: bytes, settings: Settings) -> Beacon:
    """Classify and device-parse a new beacon, store the result once, and return the beacon with
    the class that is stored (which the counters then count).

    A beacon of an entity is settled with the entity's other hits, which are corrected where the
    new hit changes their class (counters included, see :func:`webbugger.counters.relabel`).
    Safe to repeat: a replayed beacon finds its label stored and the others already corrected.
    """
    from webbugger.counters import relabel, store_label

    device = parse_device(beacon.user_agent)
    if not beacon.entity:
        store_label(beacon, classify_hit(Hit.of(beacon)), device, salt_secret, settings)
        return beacon
    stored = entity_beacons(beacon.entity, beacon.created_at)
    if all(other.id != beacon.id for other in stored):
        stored.append(beacon)  # an index read may lag the table's own write
    verdicts = settle_all([entity_hit(other) for other in stored])
    store_label(beacon, verdicts[beacon.id], device, salt_secret, settings)
    for other in _affected(beacon, stored):
        if other.id == beacon.id:
            continue
        verdict = verdicts[other.id]
        current: str | None = other.classification  # PynamoDB types it non-null
        if current is None:
            store_label(other, verdict, parse_device(other.user_agent), salt_secret, settings)
        elif current != verdict.classification:
            relabel(other, verdict, salt_secret, settings)
    return beacon
