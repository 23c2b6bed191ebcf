"""The daily counters of one reference over a range of UTC days, a campaign's figures (sent,
open and click rates, per-link clicks) and a stored link's clicks per A/B variant."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from webbugger.beacon_queries import beacons_between
from webbugger.campaigns import CampaignFigures, fold
from webbugger.counters import daily_stats
from webbugger.errors import InvalidTimeError, NotFoundError
from webbugger.modes import Mode
from webbugger.refs import Ref
from webbugger.registry import Kind
from webbugger.sends import sent_at, sent_count
from webbugger.service.links import get_link
from webbugger.tracking import SHORT_LINK_TYPE

if TYPE_CHECKING:
    from webbugger.counters import Stats
    from webbugger.registry import Registry

DEFAULT_DAYS = 30
MAX_DAYS = 366
# Beacons a campaign's figures read at most (the admin API answers within 29 seconds).
CAMPAIGN_SCAN_CAP = 100_000


def parse_day(text: str | None, name: str) -> date | None:
    """A day, ``YYYY-MM-DD``, or None for none."""
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise InvalidTimeError(f"{name} must be a day, YYYY-MM-DD") from exc


def day_range(first: date | None, last: date | None, today: date | None = None) -> tuple[date, date]:
    """``first`` to ``last`` (default: the 30 days up to today), checked: at most 366 days."""
    end = last or today or datetime.now(UTC).date()
    start = first or (end - timedelta(days=DEFAULT_DAYS - 1) if end.year > 1 else end)
    if start > end:
        raise InvalidTimeError("from must not be after to")
    if (end - start).days >= MAX_DAYS:
        raise InvalidTimeError(f"at most {MAX_DAYS} days at once")
    return start, end


def read_stats(
    kind: Kind,
    ref: Ref,
    first: date | None = None,
    last: date | None = None,
    *,
    today: date | None = None,
    registry: Registry | None = None,
) -> Stats:
    """Counts of ``ref`` (as ``kind``) per UTC day from ``first`` to ``last`` (default: the 30
    days up to today), at most 366 days; with ``registry``, :class:`NotFoundError` for a
    reference that is unknown (:func:`require_known`)."""
    start, end = day_range(first, last, today)
    stats = daily_stats(kind, ref, start, end)
    if registry is not None:
        require_known(registry, kind, ref, stats)
    return stats


def record_exists(registry: Registry, kind: Kind, ref: Ref) -> bool | None:
    """Whether ``ref``'s record is stored; None when its type cannot tell (not registered as
    ``kind``, or an entity type that cannot read a record without creating it)."""
    if ref.id is None or not registry.has(kind, ref.type):
        return None
    load = registry.get(kind, ref.type).load  # an entity type's is optional
    return None if load is None else load(ref.id) is not None


def require_known(registry: Registry, kind: Kind, ref: Ref, stats: Stats) -> None:
    """:class:`NotFoundError` when ``ref`` names no stored record and nothing was counted for
    it in ``stats``'s days: zeros for a mistyped id would read as "no traffic". A record deleted
    since keeps its counts (they are shown); the record is read only when the counts are zero."""
    if stats.totals.total or record_exists(registry, kind, ref) is not False:
        return
    span = f"from {stats.days[0].day} to {stats.days[-1].day}" if stats.days else "in these days"
    raise NotFoundError(f"no {ref.type} {kind} with id {ref.id!r}, and no hits counted for {ref} {span}")


def campaign_figures(
    registry: Registry,
    campaign: Ref,
    first: date | None = None,
    last: date | None = None,
    *,
    cap: int = CAMPAIGN_SCAN_CAP,
    today: date | None = None,
) -> CampaignFigures:
    """``campaign``'s (a source's) sends and its beacons from ``first`` to ``last`` (default: the
    last 30 days) folded into its figures (:mod:`webbugger.campaigns`), each stored link's URL
    named. Reads the campaign's beacons (the days its counters show hits on), at most ``cap``; a
    source never sent is no campaign: no beacon is read, and its figures are zeros."""
    start, end = day_range(first, last, today)
    since, until = datetime.combine(start, time.min, UTC), datetime.combine(end, time.max, UTC)
    sent = sent_count(campaign)
    beacons = beacons_between(since, until, kind=Kind.SOURCE, ref=campaign) if sent else ()
    figures = fold(str(campaign), beacons, sent=sent, cap=cap)
    if sent:
        figures.keep_sent(sent_at(campaign, figures.openers))
    for link in figures.links:
        kind, _, link_id = link.target.partition(":")
        record = get_link(registry, link_id) if kind == SHORT_LINK_TYPE and link_id else None
        link.url = None if record is None else str(record.get("url"))
    return figures


@dataclass
class VariantCount:
    """One variant's clicks over a range; ``url`` and ``weight`` None for a variant seen on
    beacons but no longer in the link's split."""

    name: str
    url: str | None
    weight: int | None
    clicks: int = 0
    human_clicks: int = 0


@dataclass
class VariantClicks:
    """A stored link's clicks per A/B variant from ``first`` to ``last`` (UTC days)."""

    link: str
    first: date
    last: date
    ends_at: str | None
    winner: str | None
    variants: list[VariantCount] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready: days in ISO 8601, ``from``/``to`` as the admin API names them."""
        return {
            "link": self.link,
            "from": self.first.isoformat(),
            "to": self.last.isoformat(),
            "ends_at": self.ends_at,
            "winner": self.winner,
            "variants": [vars(variant) for variant in self.variants],
        }


def variant_clicks(
    registry: Registry,
    link_id: str,
    first: date | None = None,
    last: date | None = None,
    *,
    today: date | None = None,
) -> VariantClicks:
    """Clicks per variant of link ``link_id``'s split, counted from its beacons (each click
    records its variant), over ``first`` to ``last`` (default: the last 30 days); ``human_clicks``
    those labelled human. A link without a split reads no beacon and lists no variant.

    This reads every beacon of the range (the beacons table has no index: the day partitions,
    filtered to this link, :func:`webbugger.beacon_queries.beacons_between`): fine for a
    campaign's weeks, slow over millions of beacons. :class:`NotFoundError` when there is no such
    link.
    """
    start, end = day_range(first, last, today)
    record = get_link(registry, link_id)
    if record is None:
        raise NotFoundError(f"no link {link_id!r}")
    split = record.get("split") or None
    found = VariantClicks(link_id, start, end, split and split.get("ends_at"), split and split.get("winner"))
    if split is None:
        return found
    counts = {
        str(item["name"]): VariantCount(str(item["name"]), item.get("url"), int(item.get("weight", 1)))
        for item in split.get("variants", ())
    }
    since = datetime.combine(start, time.min, UTC)
    until = datetime.combine(end, time.max, UTC)
    ref = Ref(SHORT_LINK_TYPE, link_id)
    for beacon in beacons_between(since, until, kind=Kind.TARGET, ref=ref):
        if beacon.mode != Mode.REDIRECT or not beacon.variant:
            continue
        count = counts.setdefault(beacon.variant, VariantCount(beacon.variant, None, None))
        count.clicks += 1
        count.human_clicks += beacon.classification == "human"
    found.variants = list(counts.values())
    return found
