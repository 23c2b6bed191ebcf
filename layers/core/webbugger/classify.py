"""Human or machine: the class of every hit, its reasons, and its browser, OS and device family.

Runs in the stream function only (never on the track function's path): the user-agent lists, the
device parser and the cloud ranges are imported on first use (:mod:`webbugger.agents`,
:mod:`webbugger.networks`).

A hit's *own* class comes from what it carries (:func:`classify_hit`), strongest signal first:

1. the ``honeypot`` hint (the hit followed an invisible link no person sees) → security-scanner;
2. our table of user agents (``data/machines.json``: mail proxies, privacy prefetchers, email
   security gateways, link-preview bots);
3. the ``prefetch`` hint (``Purpose``/``Sec-Purpose: prefetch``) → privacy-prefetch;
4. the maintained lists of machine user agents (device-detector, crawler-user-agents,
   crawlerdetect, ua-parser's "Spider"; mail clients and browsers they mistake for bots excepted);
5. mail gateways' and proxies' published network ranges (``data/machines.json``), matched on the
   stored network (the address is kept as its /24 or /48, so the range and that network overlap);
6. ``HEAD`` → unknown-machine;
7. a hit less than :data:`SECONDS_AFTER_MINT` seconds after its URL was minted, *for a URL minted
   for email* (the ``email`` hint), and *corroborated* by another signal → security-scanner;
8. no user agent at all (unless the visitor opted out, which removes it) → unknown-machine.

Timing alone never makes a machine (a web page's pixel is fetched milliseconds after minting, a
sign-up mail opened within seconds); like Mautic's "2 of 3 signals", a fast email hit needs one of:
a gateway or cloud network, ``HEAD``, a honeypot, a gateway's Referer, no ``Accept-Language``
(browsers always send one), or the ``nofetch`` hint (no ``Sec-Fetch-Mode``, which every current
browser sends: https://www.w3.org/TR/fetch-metadata/).

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
(:mod:`webbugger.labelling` stores the labels).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from webbugger import agents
from webbugger.agents import is_crawler, parse_device
from webbugger.labels import HUMAN, Device, Verdict
from webbugger.machine_table import (
    DATA_FILE,
    MACHINE_CLASSES,
    Machines,
    NetworkRule,
    UserAgentRule,
    machines,
    parse_machines,
)
from webbugger.modes import Mode
from webbugger.networks import Network, cloud_provider, stored_network

if TYPE_CHECKING:
    from collections.abc import Sequence

    from webbugger.models import Beacon

# Re-exported: other modules and the tests import these from here.
__all__ = ["DATA_FILE", "MACHINE_CLASSES", "Device", "NetworkRule", "UserAgentRule", "Verdict"]
__all__ += ["is_crawler", "parse_device", "parse_machines", "stored_network"]

MAIL_PROXY = "mail-proxy"
PRIVACY_PREFETCH = "privacy-prefetch"
SECURITY_SCANNER = "security-scanner"
LINK_PREVIEW = "link-preview"
CRAWLER = "crawler"
UNKNOWN_MACHINE = "unknown-machine"
CLASSES = (HUMAN, *MACHINE_CLASSES)

# A hit on an email URL this soon after minting may be a gateway's: mail senders mint a
# recipient's URLs when they build the message, so this is "seconds after sending", and security
# gateways open every link while the mail is being delivered. People do too, for transactional
# mail, which is why this counts only with another signal (see the module's docstring).
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
HINT_EMAIL = "email"  # the URL was minted for email (webbugger.tokens.Purpose.EMAIL)
HINT_NO_FETCH_METADATA = "nofetch"  # the request had no Sec-Fetch-Mode
PURPOSES = ("web", "email")
# Entries of the entity read when settling one hit (newest first): bounds the work of an entity
# with very many hits (e.g. an IP entity); beyond it, older hits are not re-settled.
MAX_NEIGHBOURS = 500
# How far one hit's class can depend on another's: an open on a click up to EVIDENCE_WINDOW
# later, that click on the opens up to EVIDENCE_WINDOW before it, and honeypots around both.
REACH = 2 * EVIDENCE_WINDOW + 2 * HONEYPOT_WINDOW


def warm_up() -> None:
    """Load the data file and every list's rules now (~1 s of CPU): the stream function calls
    this at init, where Lambda gives the CPU anyway, so that its first record does not wait.
    The cloud ranges load on the first hit that needs them (a fast hit on an email URL)."""
    agents.warm_up()
    classify_hit(Hit(user_agent="Mozilla/5.0 (X11; Linux x86_64) warm-up"))


@dataclass(frozen=True, slots=True)
class Hit:
    """What classification reads of one hit. ``language`` None means no ``Accept-Language``."""

    mode: str = Mode.PIXEL
    method: str = "GET"
    user_agent: str | None = None
    ip: str | None = None
    hints: frozenset[str] = frozenset()
    seconds_after_mint: float | None = None
    opted_out: bool = False
    language: str | None = None
    referer: str | None = None
    purpose: str = "web"

    @classmethod
    def of(cls, beacon: Beacon) -> Hit:
        """The hit a stored beacon records."""
        minted = beacon.minted
        after = None if minted is None else beacon.created_at.timestamp() - float(minted)
        hints = frozenset(beacon.hints or ())
        return cls(
            mode=beacon.mode,
            method=beacon.method,
            user_agent=beacon.user_agent,
            ip=beacon.ip,
            hints=hints,
            seconds_after_mint=after,
            opted_out=bool(beacon.opted_out),
            language=beacon.language,
            referer=beacon.referer,
            purpose="email" if HINT_EMAIL in hints else "web",
        )


Signal = tuple[str, str]  # (class, reason)


def _network_signal(network: Network | None, table: Machines) -> Signal | None:
    if network is None:
        return None
    for rule in table.networks:
        if any(r.version == network.version and r.overlaps(network) for r in rule.ranges):
            return rule.classification, f"range:{rule.id}"
    return None


def _user_agent_signal(user_agent: str, mode: str, table: Machines) -> Signal | None:
    for rule in table.user_agents:
        if rule.matches(user_agent, mode):
            return str(rule.classification), f"ua:{rule.id}"
    return None


def _listed_signal(user_agent: str, table: Machines) -> Signal | None:
    if any(rule.matches(user_agent) for rule in table.people):
        return None
    return agents.listed_machine(user_agent)


def _referer_signal(referer: str | None, table: Machines) -> str | None:
    try:
        host = (urlsplit(referer or "").hostname or "").lower()
    except ValueError:
        return None
    rule = next((rule for rule in table.referers if host and rule.matches(host)), None)
    return None if rule is None else f"referer:{rule.id}"


def _fast_email_hit(hit: Hit) -> bool:
    after = hit.seconds_after_mint
    return hit.purpose == "email" and after is not None and -CLOCK_SKEW_SECONDS <= after < SECONDS_AFTER_MINT


def _corroboration(hit: Hit, network: Network | None, table: Machines) -> list[str]:
    """The weak signals that, with a fast hit on an email URL, make it a machine's."""
    found = []
    cloud = cloud_provider(network)
    if cloud:
        found.append(f"cloud:{cloud}")
    referer = _referer_signal(hit.referer, table)
    if referer:
        found.append(referer)
    if not hit.language:
        found.append("lang:none")
    if HINT_NO_FETCH_METADATA in hit.hints:
        found.append("fetch:none")
    return found


def classify_hit(hit: Hit, table: Machines | None = None) -> Verdict:
    """A hit's own class, from what it carries (see the module's docstring for the order)."""
    table = table or machines()
    signals: list[Signal | None] = []
    if HINT_HONEYPOT in hit.hints:
        signals.append((SECURITY_SCANNER, "honeypot"))
    if hit.user_agent:
        signals.append(_user_agent_signal(hit.user_agent, hit.mode, table))
    if HINT_PREFETCH in hit.hints:
        signals.append((PRIVACY_PREFETCH, "prefetch"))
    if hit.user_agent:
        # A self-declared machine outranks an address: providers' ranges host many services.
        signals.append(_listed_signal(hit.user_agent, table))
    network = stored_network(hit.ip)
    signals.append(_network_signal(network, table))
    if hit.method.upper() == "HEAD":
        signals.append((UNKNOWN_MACHINE, "method:head"))
    if _fast_email_hit(hit):
        weak = _corroboration(hit, network, table)
        strong = any(signal is not None for signal in signals)
        if strong or weak:
            after = max(0, int(hit.seconds_after_mint or 0))
            signals.append((SECURITY_SCANNER, f"timing:{after}s"))
            signals += [(SECURITY_SCANNER, reason) for reason in weak]
    if not hit.user_agent and not hit.opted_out:
        signals.append((UNKNOWN_MACHINE, "ua:none"))
    found = [signal for signal in signals if signal is not None]
    if not found:
        return Verdict(HUMAN)
    return Verdict(found[0][0], tuple(dict.fromkeys(reason for _, reason in found)))


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
