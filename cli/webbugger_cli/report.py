"""A reference's traffic, folded for ONE self-contained HTML page (:mod:`webbugger_cli.report_html`
draws it): pure data, no database.

:func:`tally` folds the reference's beacons (newest first, as
:func:`webbugger.beacon_queries.beacons_between` yields them) into top sources and targets and the
latest beacons, reading at most a capped number; :class:`ReportData` holds that and the daily
counters. :mod:`webbugger_cli.commands.report` fetches the data and writes the file.
"""

from __future__ import annotations

import collections
import itertools
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from datetime import datetime

    from webbugger.counters import DayCounts

    from webbugger_cli.campaign_report import CampaignReport

DEFAULT_SCAN_CAP = 50_000
LATEST_BEACONS = 50
TOP_ROWS = 10
NONE_LABEL = "(none)"


class BeaconLike(Protocol):
    """What :func:`tally` reads of a beacon (a :class:`webbugger.models.Beacon` has it all)."""

    @property
    def created_at(self) -> datetime: ...
    @property
    def mode(self) -> str: ...
    @property
    def target(self) -> str | None: ...
    @property
    def entity(self) -> str | None: ...
    @property
    def source(self) -> str | None: ...
    @property
    def country(self) -> str | None: ...
    @property
    def user_agent(self) -> str | None: ...


@dataclass(frozen=True, slots=True)
class BeaconRow:
    """One line of the latest-beacons table."""

    time: str
    mode: str
    target: str | None
    entity: str | None
    source: str | None
    country: str | None
    user_agent: str | None
    classification: str | None = None


@dataclass(frozen=True, slots=True)
class Tally:
    """What a scan of the reference's beacons found."""

    scanned: int
    capped: bool
    cap: int
    top_sources: list[tuple[str, int]] = field(default_factory=list)
    top_targets: list[tuple[str, int]] = field(default_factory=list)
    latest: list[BeaconRow] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class ReportData:
    """Everything the page shows."""

    ref: str
    kind: str
    first_day: str
    last_day: str
    generated_at: datetime
    days: Sequence[DayCounts]
    tally: Tally
    # A source's campaign part (its sends, rates, links, timings, clients), when it has one.
    campaign: CampaignReport | None = None


def beacon_row(beacon: BeaconLike) -> BeaconRow:
    """A beacon as a row of the latest-beacons table."""
    return BeaconRow(
        time=beacon.created_at.strftime("%Y-%m-%d %H:%M:%SZ"),
        mode=str(beacon.mode),
        target=beacon.target,
        entity=beacon.entity,
        source=beacon.source,
        country=beacon.country,
        user_agent=beacon.user_agent,
        classification=getattr(beacon, "classification", None),  # set by the stream function
    )


def tally(
    beacons: Iterable[BeaconLike],
    *,
    cap: int = DEFAULT_SCAN_CAP,
    latest: int = LATEST_BEACONS,
    top: int = TOP_ROWS,
) -> Tally:
    """Top sources and targets of at most ``cap`` beacons, and the first ``latest`` of them.

    ``beacons`` come newest first; one more than ``cap`` is read to tell whether the scan was cut.
    """
    if cap < 1:
        raise ValueError(f"the scan cap must be at least 1, got {cap}")
    sources: collections.Counter[str] = collections.Counter()
    targets: collections.Counter[str] = collections.Counter()
    rows: list[BeaconRow] = []
    scanned = 0
    capped = False
    for beacon in itertools.islice(beacons, cap + 1):
        if scanned == cap:
            capped = True
            break
        scanned += 1
        sources[beacon.source or NONE_LABEL] += 1
        targets[beacon.target or NONE_LABEL] += 1
        if len(rows) < latest:
            rows.append(beacon_row(beacon))
    return Tally(
        scanned=scanned,
        capped=capped,
        cap=cap,
        top_sources=_top(sources, top),
        top_targets=_top(targets, top),
        latest=rows,
    )


def _top(counts: collections.Counter[str], top: int) -> list[tuple[str, int]]:
    # Most first; ties by name, so the page is the same for the same data.
    return sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:top]
