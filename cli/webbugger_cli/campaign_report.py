"""The campaign part of ``webbugger report``: a source's sends, rates, clicks per link, opens and
clicks over time, time from send to first open, and the clients of human opens.

Pure rendering, like :mod:`webbugger_cli.report_html` (inline SVG, every data text escaped). The
figures come from :func:`webbugger.service.stats.campaign_figures`; the hours from send to
first open from :func:`webbugger.campaigns.send_to_open`.
"""

from __future__ import annotations

import html
import statistics
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    from webbugger.campaigns import CampaignFigures

# Bar colours of human and machine hits (the browser test looks for them on the screenshot: only
# the bars and two legend swatches have them).
HUMAN_COLOUR = "#0f766e"
MACHINE_COLOUR = "#db2777"
CARD_COLOUR = "#111827"
# Hourly buckets up to this many hours from the first hit to the last, daily ones beyond.
MAX_HOURLY = 72
TOP_CLIENTS = 8
# (upper bound in hours, label) of the time-to-first-open buckets.
OPEN_DELAYS: tuple[tuple[float, str], ...] = (
    (1, "under 1 hour"),
    (6, "1 to 6 hours"),
    (24, "6 to 24 hours"),
    (72, "1 to 3 days"),
    (float("inf"), "over 3 days"),
)
_W, _H, _LEFT, _BOTTOM, _TOP = 560, 200, 40, 34, 10


@dataclass(frozen=True, slots=True)
class CampaignReport:
    """What the campaign part shows: the figures, and each opener's hours from send to open."""

    figures: CampaignFigures
    hours_to_open: Sequence[float] = field(default_factory=list)


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _percent(rate: float | None) -> str:
    return "-" if rate is None else f"{100 * rate:.1f}%"


def buckets(hours: dict[str, list[int]]) -> tuple[str, list[tuple[str, list[int]]]]:
    """The hits over time, every bucket from the first to the last present: hourly when they
    span at most :data:`MAX_HOURLY` hours, else daily. The unit, and (label, counts) in order."""
    if not hours:
        return "hour", []
    times = sorted(datetime.fromisoformat(label) for label in hours)
    hourly = times[-1] - times[0] <= timedelta(hours=MAX_HOURLY)
    step, unit = (timedelta(hours=1), "hour") if hourly else (timedelta(days=1), "day")
    merged: dict[str, list[int]] = {}
    for label, counts in hours.items():
        key = label if hourly else label[:10]
        merged[key] = [a + b for a, b in zip(merged.get(key, [0, 0, 0, 0]), counts, strict=True)]
    moment = times[0] if hourly else times[0].replace(hour=0)
    series = []
    while moment <= times[-1]:
        key = moment.strftime("%Y-%m-%dT%H:00") if hourly else moment.strftime("%Y-%m-%d")
        series.append((key, merged.get(key, [0, 0, 0, 0])))
        moment += step
    return unit, series


def pair_chart(chart_id: str, title: str, unit: str, series: list[tuple[str, int, int]]) -> str:
    """An SVG chart of human and machine counts per bucket, side by side."""
    peak = max((max(human, machine) for _, human, machine in series), default=0) or 1
    plot_w, plot_h = _W - _LEFT - 8, _H - _TOP - _BOTTOM
    slot = plot_w / max(len(series), 1)
    bar = max(slot * 0.4, 1.0)
    every = max(1, -(-len(series) // 8))
    parts = [
        f'<svg class="chart" id="{chart_id}" role="img" viewBox="0 0 {_W} {_H}" width="{_W}" '
        f'height="{_H}" xmlns="http://www.w3.org/2000/svg"><title>{_e(title)} per {unit}</title>',
        f'<text class="tick" x="{_LEFT - 6}" y="{_TOP + 4}" text-anchor="end">{peak}</text>',
        f'<line class="axis" x1="{_LEFT}" y1="{_TOP + plot_h}" x2="{_W - 8}" y2="{_TOP + plot_h}"/>',
    ]
    for index, (label, human, machine) in enumerate(series):
        x = _LEFT + index * slot + slot * 0.1
        for offset, value, colour, kind in (
            (0, human, HUMAN_COLOUR, "human"),
            (bar, machine, MACHINE_COLOUR, "machine"),
        ):
            height = value * plot_h / peak
            parts.append(
                f'<rect class="bar" x="{x + offset:.1f}" y="{_TOP + plot_h - height:.1f}" width="{bar:.1f}" '
                f'height="{height:.1f}" fill="{colour}"><title>{_e(label)}: {value} {kind}</title></rect>'
            )
        if index % every == 0:
            text = label[11:16] if unit == "hour" else label[5:]
            parts.append(
                f'<text class="day" x="{x + bar:.1f}" y="{_H - 18}" text-anchor="middle">{_e(text)}</text>'
            )
    parts.append(
        f'<text class="day" x="{_LEFT + plot_w / 2:.0f}" y="{_H - 4}" text-anchor="middle">'
        f"{unit} (UTC)</text></svg>"
    )
    return "".join(parts)


def _card(card_id: str, label: str, value: str, note: str = "") -> str:
    extra = f'<div class="label">{_e(note)}</div>' if note else ""
    return (
        f'<div class="figure" id="campaign-{card_id}" style="border-top-color: {CARD_COLOUR}">'
        f'<div class="label">{_e(label)}</div><div class="value">{_e(value)}</div>{extra}</div>'
    )


def _table(
    table_id: str, caption: str, header: Sequence[str], rows: list[list[str]], text_columns: int = 1
) -> str:
    # The first ``text_columns`` columns are text; the others numbers (right-aligned).
    def css(n: int) -> str:
        return "ref" if n < text_columns else "num"

    heads = "".join(f'<th scope="col" class="{css(n)}">{_e(h)}</th>' for n, h in enumerate(header))
    cells = ["".join(f'<td class="{css(n)}">{_e(cell)}</td>' for n, cell in enumerate(row)) for row in rows]
    body = "".join(f"<tr>{row}</tr>" for row in cells) or f'<tr><td colspan="{len(header)}">none</td></tr>'
    return (
        f'<div class="panel"><table id="{table_id}"><caption><h3>{_e(caption)}</h3></caption>'
        f"<thead><tr>{heads}</tr></thead><tbody>{body}</tbody></table></div>"
    )


def _delays(hours: Sequence[float]) -> str:
    counts = [0] * len(OPEN_DELAYS)
    for value in hours:
        counts[next(n for n, (bound, _) in enumerate(OPEN_DELAYS) if value < bound)] += 1
    total = max(len(hours), 1)
    rows = [
        [label, str(count), f"{count / total:.0%}"]
        for (_, label), count in zip(OPEN_DELAYS, counts, strict=True)
    ]
    median = f"median {statistics.median(hours):.1f} hours" if hours else "no opener with a recorded send"
    return _table(
        "campaign-delays", f"Time from send to first open ({median})", ["after", "openers", "share"], rows
    )


def _clients(figures: CampaignFigures) -> str:
    titles = {"browser": "Mail client or browser", "os": "Operating system", "device": "Device"}
    total = max(figures.human_opens, 1)
    tables = [
        _table(
            f"campaign-clients-{name}",
            titles[name],
            [titles[name].lower(), "human opens", "share"],
            [
                [label, str(count), f"{count / total:.0%}"]
                for label, count in list(counts.items())[:TOP_CLIENTS]
            ],
        )
        for name, counts in figures.clients.items()
    ]
    return f'<div class="tops">{"".join(tables)}</div>'


def campaign_section(report: CampaignReport) -> str:
    """The campaign's part of the page."""
    f = report.figures
    cards = [
        _card("sent", "Sent", f"{f.sent:,}"),
        _card(
            "opens", "Unique human opens", f"{f.unique_human_opens:,}", f"open rate {_percent(f.open_rate)}"
        ),
        _card(
            "clicks",
            "Unique human clicks",
            f"{f.unique_human_clicks:,}",
            f"click rate {_percent(f.click_rate)}",
        ),
        _card("cto", "Click-to-open", _percent(f.click_to_open_rate)),
        _card("machine-opens", "Machine opens", f"{f.machine_opens:,}", "prefetches, image proxies"),
        _card("machine-clicks", "Machine clicks", f"{f.machine_clicks:,}", "link scanners, honeypot"),
    ]
    links = [
        [link.target, link.url or "-", str(link.unique_human), str(link.human), str(link.machine)]
        for link in f.links
    ]
    machines = [[label, str(count)] for label, count in sorted(f.machine_classes.items())]
    unit, series = buckets(f.hours)
    opens = [(label, counts[0], counts[1]) for label, counts in series]
    clicks = [(label, counts[2], counts[3]) for label, counts in series]
    legend = (
        f'<p class="note"><span class="swatch" style="background: {HUMAN_COLOUR}"></span>human '
        f'<span class="swatch" style="background: {MACHINE_COLOUR}"></span>machine</p>'
    )
    capped = (
        f'<p class="warn">Only the newest {f.scanned:,} beacons were read (the scan is capped).</p>'
        if f.capped
        else ""
    )
    pending = (
        f'<p class="note">Not labelled yet (the stream labels hits within seconds): {f.pending:,}.</p>'
        if f.pending
        else ""
    )
    if f.openers_not_sent:
        pending += (
            f'<p class="warn">Opened with no recorded send, left out of the rates: '
            f"{f.openers_not_sent:,} (record their sends with POST /sends).</p>"
        )
    charts = "".join(
        f'<div class="panel"><h3>{title}</h3>{pair_chart(chart_id, title, unit, rows)}</div>'
        for chart_id, title, rows in (
            ("campaign-opens", "Opens", opens),
            ("campaign-clicks", "Clicks", clicks),
        )
    )
    columns = ["link", "URL", "unique human", "human", "machine"]
    return (
        '<section aria-labelledby="campaign-title"><h2 id="campaign-title">Campaign</h2>'
        f'<div class="figures">{"".join(cards)}</div>{capped}{pending}'
        '<p class="note">Unique human opens: recipients with an open or a click labelled human over the '
        "whole range (a click means the mail was opened). Rates are over the recipients sent.</p>"
        f"{_table('campaign-links', 'Clicks per link', columns, links, 2)}"
        f'<h3>Opens and clicks over time</h3>{legend}<div class="charts">{charts}</div>'
        f'<div class="tops">{_delays(report.hours_to_open)}'
        f"{_table('campaign-machines', 'Machine hits by class', ['class', 'hits'], machines)}</div>"
        f"{_clients(f)}</section>"
    )
