"""A campaign's figures folded from its beacons: opens and clicks per recipient, over the whole
campaign, with the labels the stream stored.

Why a fold and not the daily counters: a rate needs *distinct recipients over the campaign*,
while the counters' unique figures are person-days (a reader who opens on Monday and Tuesday is
two); and a label can change after a hit is counted (a click upgrades Apple's prefetch of the
same mail to a human open), which the fold reads as it is now.

- ``unique_human_opens``: recipients with a human open, *or a human click* (a click means the
  mail was opened, images shown or not; Mailchimp counts the same way), so the click-to-open rate
  is at most 1.
- ``unique_human_clicks``: recipients with a human click.
- Machine hits (Apple Mail Privacy Protection's prefetch, Gmail's image proxy, link scanners, the
  honeypot) are counted apart, by class; hits not labelled yet are ``pending``.
- Rates are over ``sent`` (:mod:`webbugger.sends`); None when nothing was sent. Openers with no
  send recorded (URLs signed offline and no ``POST /sends``) are left out of them, and counted
  apart (:meth:`CampaignFigures.keep_sent`): else the open rate can pass 100 %.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

from webbugger.labels import HUMAN
from webbugger.modes import Mode

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable, Mapping

_CLIENT_FIELDS = ("browser", "os", "device")


class CampaignBeacon(Protocol):
    """What the fold reads of a beacon (a :class:`webbugger.models.Beacon` has it all)."""

    @property
    def created_at(self) -> datetime: ...
    @property
    def mode(self) -> str: ...
    @property
    def target(self) -> str | None: ...
    @property
    def entity(self) -> str | None: ...
    @property
    def classification(self) -> str | None: ...
    @property
    def browser(self) -> str | None: ...
    @property
    def os(self) -> str | None: ...
    @property
    def device(self) -> str | None: ...


@dataclass
class LinkClicks:
    """One link's clicks in the campaign: hits by class, and distinct human clickers."""

    target: str
    human: int = 0
    machine: int = 0
    unique_human: int = 0
    url: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {
            "target": self.target,
            "url": self.url,
            "unique_human_clicks": self.unique_human,
            "human_clicks": self.human,
            "machine_clicks": self.machine,
        }


def _rate(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None


@dataclass
class CampaignFigures:
    """A campaign's headline figures and per-link clicks, and what the report draws."""

    campaign: str
    sent: int = 0
    unique_human_opens: int = 0
    unique_human_clicks: int = 0
    human_opens: int = 0
    human_clicks: int = 0
    machine_opens: int = 0
    machine_clicks: int = 0
    machine_classes: dict[str, int] = field(default_factory=dict)
    pending: int = 0
    scanned: int = 0
    capped: bool = False
    links: list[LinkClicks] = field(default_factory=list)
    # For the report: hits per UTC hour (ISO hour -> [human opens, machine opens, human clicks,
    # machine clicks]), each opener's first human open, and the clients of human opens.
    hours: dict[str, list[int]] = field(default_factory=dict)
    first_opens: dict[str, datetime] = field(default_factory=dict)
    clients: dict[str, dict[str, int]] = field(default_factory=dict)
    # Who opened (clickers included) and who clicked, for keep_sent.
    openers: set[str] = field(default_factory=set, repr=False)
    clickers: set[str] = field(default_factory=set, repr=False)
    openers_not_sent: int = 0

    def keep_sent(self, sent_to: Collection[str]) -> None:
        """Count in the unique figures (and so the rates) only the openers in ``sent_to``, the
        recipients with a send mark; the others in ``openers_not_sent``."""
        outside = self.openers.difference(sent_to)
        self.openers_not_sent = len(outside)
        self.unique_human_opens = len(self.openers) - len(outside)
        self.unique_human_clicks = len(self.clickers - outside)

    @property
    def open_rate(self) -> float | None:
        """Unique human opens over sent."""
        return _rate(self.unique_human_opens, self.sent)

    @property
    def click_rate(self) -> float | None:
        """Unique human clicks over sent."""
        return _rate(self.unique_human_clicks, self.sent)

    @property
    def click_to_open_rate(self) -> float | None:
        """Unique human clicks over unique human opens."""
        return _rate(self.unique_human_clicks, self.unique_human_opens)

    def as_dict(self) -> dict[str, Any]:
        """The figures, JSON-ready (not the report's series)."""
        return {
            "campaign": self.campaign,
            "sent": self.sent,
            "unique_human_opens": self.unique_human_opens,
            "open_rate": self.open_rate,
            "unique_human_clicks": self.unique_human_clicks,
            "click_rate": self.click_rate,
            "click_to_open_rate": self.click_to_open_rate,
            "openers_not_sent": self.openers_not_sent,
            "human_opens": self.human_opens,
            "human_clicks": self.human_clicks,
            "machine_opens": self.machine_opens,
            "machine_clicks": self.machine_clicks,
            "machine_classes": dict(sorted(self.machine_classes.items())),
            "pending": self.pending,
            "scanned": self.scanned,
            "capped": self.capped,
            "links": [link.as_dict() for link in self.links],
        }


def _hour(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:00")


def fold(
    campaign: str, beacons: Iterable[CampaignBeacon], *, sent: int = 0, cap: int | None = None
) -> CampaignFigures:
    """The figures of ``campaign`` from its beacons (any order), reading at most ``cap``."""
    found = CampaignFigures(campaign, sent=sent)
    openers: set[str] = set()
    clickers: dict[str, set[str]] = collections.defaultdict(set)  # target -> recipients
    links: dict[str, LinkClicks] = {}
    clients: dict[str, collections.Counter[str]] = {name: collections.Counter() for name in _CLIENT_FIELDS}
    for beacon in beacons:
        if cap is not None and found.scanned >= cap:
            found.capped = True
            break
        found.scanned += 1
        label = beacon.classification
        if label is None:
            found.pending += 1
            continue
        click = beacon.mode == Mode.REDIRECT
        human = label == HUMAN
        bucket = found.hours.setdefault(_hour(beacon.created_at), [0, 0, 0, 0])
        bucket[2 * click + (not human)] += 1
        if not human:
            found.machine_classes[label] = found.machine_classes.get(label, 0) + 1
        if click:
            link = links.setdefault(beacon.target or "", LinkClicks(beacon.target or ""))
            link.human += human
            link.machine += not human
            found.human_clicks += human
            found.machine_clicks += not human
            if human and beacon.entity:
                clickers[link.target].add(beacon.entity)
                openers.add(beacon.entity)
            continue
        found.human_opens += human
        found.machine_opens += not human
        if human and beacon.entity:
            openers.add(beacon.entity)
            first = found.first_opens.get(beacon.entity)
            if first is None or beacon.created_at < first:
                found.first_opens[beacon.entity] = beacon.created_at
        if human:
            for name in _CLIENT_FIELDS:
                clients[name][getattr(beacon, name) or "unknown"] += 1
    for target, who in clickers.items():
        links[target].unique_human = len(who)
    found.openers, found.clickers = openers, set().union(*clickers.values())
    found.unique_human_opens = len(openers)
    found.unique_human_clicks = len(found.clickers)
    found.links = sorted(links.values(), key=lambda link: (-link.unique_human, -link.human, link.target))
    found.clients = {name: dict(counts.most_common()) for name, counts in clients.items()}
    return found


def send_to_open(figures: CampaignFigures, sent_at: Mapping[str, datetime]) -> list[float]:
    """Hours from each opener's send to their first human open (openers with a send mark only),
    sorted."""
    return sorted(
        max(0.0, (opened - sent_at[entity]).total_seconds() / 3600)
        for entity, opened in figures.first_opens.items()
        if entity in sent_at
    )
