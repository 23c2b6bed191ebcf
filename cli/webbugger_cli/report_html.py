"""A :class:`~webbugger_cli.report.ReportData` as ONE self-contained HTML page: pure rendering.

The page needs no network to view: the CSS is inline, the charts are SVG drawn here, and there is
no script, font or image to fetch (a Content-Security-Policy says so to the browser). Every piece
of text that comes from data (references, user agents, countries...) is HTML-escaped.
"""

from __future__ import annotations

import html
import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    from webbugger.counters import DayCounts

    from webbugger_cli.report import ReportData

USER_AGENT_WIDTH = 60

# (DayCounts field, chart title, bar colour). The browser test looks for these colours.
METRICS: tuple[tuple[str, str, str], ...] = (
    ("total", "Total hits", "#2563eb"),
    ("unique", "Unique visitors", "#16a34a"),
    ("human", "Human hits", "#d97706"),
    ("machine", "Machine hits", "#9333ea"),
)

# The headline: distinct people with a human open / click (DayCounts field, title).
HEADLINE: tuple[tuple[str, str], ...] = (
    ("unique_human_opens", "Unique human opens"),
    ("unique_human_clicks", "Unique human clicks"),
)
HEADLINE_COLOUR = "#111827"

# Chart geometry (SVG user units).
CHART_WIDTH = 560
CHART_HEIGHT = 220
_MARGIN_LEFT = 48
_MARGIN_RIGHT = 12
_MARGIN_TOP = 12
_MARGIN_BOTTOM = 40
_MAX_DAY_LABELS = 10
_MAX_TICKS = 5


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _n(value: int) -> str:
    return f"{value:,}"


def _truncate(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def nice_ticks(maximum: int, count: int = _MAX_TICKS) -> list[int]:
    """Whole-number axis ticks from 0 to at least ``maximum``, steps of 1, 2 or 5 x 10^k."""
    top = max(maximum, 1)
    raw = top / count
    magnitude = 10 ** max(0, math.floor(math.log10(raw))) if raw >= 1 else 1
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    last = math.ceil(top / step) * step
    return list(range(0, last + 1, step))


def _fmt(value: float) -> str:
    return f"{value:.1f}".removesuffix(".0")


def bar_chart(metric: str, title: str, colour: str, days: Sequence[DayCounts]) -> str:
    """An accessible SVG bar chart of one metric per day, with axes, ticks and day labels."""
    values = [int(getattr(day, metric)) for day in days]
    ticks = nice_ticks(max(values, default=0))
    plot_w = CHART_WIDTH - _MARGIN_LEFT - _MARGIN_RIGHT
    plot_h = CHART_HEIGHT - _MARGIN_TOP - _MARGIN_BOTTOM
    base_y = _MARGIN_TOP + plot_h
    scale = plot_h / ticks[-1]
    total = sum(values)
    peak = max(values, default=0)
    first, last = (days[0].day, days[-1].day) if days else ("", "")
    desc = (
        f"{title} per day from {first} to {last}: {_n(total)} in all, at most {_n(peak)} in a day."
        if days
        else f"{title}: no days in range."
    )
    parts = [
        f'<svg class="chart" id="chart-{metric}" role="img" viewBox="0 0 {CHART_WIDTH} {CHART_HEIGHT}" '
        f'width="{CHART_WIDTH}" height="{CHART_HEIGHT}" aria-labelledby="chart-{metric}-title '
        f'chart-{metric}-desc" xmlns="http://www.w3.org/2000/svg">',
        f'<title id="chart-{metric}-title">{_e(title)} per day</title>',
        f'<desc id="chart-{metric}-desc">{_e(desc)}</desc>',
    ]
    for tick in ticks:
        y = _fmt(base_y - tick * scale)
        parts.append(
            f'<line class="grid" x1="{_MARGIN_LEFT}" y1="{y}" x2="{CHART_WIDTH - _MARGIN_RIGHT}" y2="{y}"/>'
            f'<text class="tick" x="{_MARGIN_LEFT - 6}" y="{y}" text-anchor="end" '
            f'dominant-baseline="middle">{_n(tick)}</text>'
        )
    slot = plot_w / max(len(days), 1)
    bar_w = max(slot * 0.8, 1.0)
    every = max(1, math.ceil(len(days) / _MAX_DAY_LABELS))
    for index, (day, value) in enumerate(zip(days, values, strict=True)):
        x = _MARGIN_LEFT + index * slot + (slot - bar_w) / 2
        height = value * scale
        parts.append(
            f'<rect class="bar" x="{_fmt(x)}" y="{_fmt(base_y - height)}" width="{_fmt(bar_w)}" '
            f'height="{_fmt(height)}" fill="{colour}"><title>{_e(day.day)}: {_n(value)}</title></rect>'
        )
        if index % every == 0:
            centre = _fmt(_MARGIN_LEFT + index * slot + slot / 2)
            parts.append(
                f'<line class="axis" x1="{centre}" y1="{base_y}" x2="{centre}" y2="{base_y + 4}"/>'
                f'<text class="day" x="{centre}" y="{base_y + 18}" text-anchor="middle">'
                f"{_e(day.day[5:])}</text>"
            )
    parts.append(
        f'<line class="axis" x1="{_MARGIN_LEFT}" y1="{_MARGIN_TOP}" x2="{_MARGIN_LEFT}" y2="{base_y}"/>'
        f'<line class="axis" x1="{_MARGIN_LEFT}" y1="{base_y}" x2="{CHART_WIDTH - _MARGIN_RIGHT}" '
        f'y2="{base_y}"/>'
    )
    if peak == 0:
        parts.append(
            f'<text class="empty" x="{_fmt(_MARGIN_LEFT + plot_w / 2)}" y="{_fmt(_MARGIN_TOP + plot_h / 2)}" '
            f'text-anchor="middle">none recorded</text>'
        )
    parts.append(
        f'<text class="day" x="{_fmt(_MARGIN_LEFT + plot_w / 2)}" y="{CHART_HEIGHT - 4}" '
        f'text-anchor="middle">day (UTC, month-day)</text></svg>'
    )
    return "".join(parts)


_CSS = """
:root { color-scheme: light; }
* { box-sizing: border-box; }
body { margin: 0; padding: 24px 32px; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto,
  "Helvetica Neue", Arial, sans-serif; color: #111827; background: #f9fafb; }
header { border-bottom: 2px solid #e5e7eb; margin-bottom: 20px; padding-bottom: 12px; }
h1 { font-size: 22px; margin: 0 0 4px; word-break: break-all; }
h2 { font-size: 17px; margin: 28px 0 10px; }
h3 { font-size: 14px; margin: 0 0 6px; }
.meta { color: #4b5563; margin: 2px 0; }
.figures { display: flex; flex-wrap: wrap; gap: 12px; }
.figure { background: #fff; border: 1px solid #e5e7eb; border-radius: 8px; padding: 12px 16px;
  min-width: 150px; border-top-width: 6px; }
.figure .label { color: #4b5563; font-size: 13px; }
.figure .value { font-size: 26px; font-weight: 600; }
.charts { display: grid; grid-template-columns: repeat(auto-fill, minmax(480px, 1fr)); gap: 16px; }
.panel { background: #fff; border: 1px solid #e5e7eb; border-radius: 8px; padding: 12px; }
.chart { width: 100%; height: auto; display: block; }
.chart .grid { stroke: #e5e7eb; stroke-width: 1; }
.chart .axis { stroke: #6b7280; stroke-width: 1; }
.chart text { font-size: 11px; fill: #4b5563; }
.chart .empty { font-size: 13px; fill: #9ca3af; }
.swatch { display: inline-block; width: 12px; height: 12px; border-radius: 2px; margin-right: 6px;
  vertical-align: -1px; }
.tops { display: flex; flex-wrap: wrap; gap: 16px; }
.tops .panel { flex: 1 1 360px; }
table { border-collapse: collapse; width: 100%; background: #fff; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid #e5e7eb; vertical-align: top; }
th { background: #f3f4f6; font-weight: 600; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
td.ref { word-break: break-all; }
td.time { white-space: nowrap; }
.note { color: #6b7280; font-size: 12px; }
.warn { color: #92400e; background: #fef3c7; border: 1px solid #fcd34d; border-radius: 6px;
  padding: 6px 10px; display: inline-block; }
footer { margin-top: 28px; color: #6b7280; font-size: 12px; }
"""

# No script, no fetch of any kind: only inline styles and data: images may load.
_CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"


def _figures(data: ReportData) -> str:
    fields = [metric for metric, _, _ in METRICS] + [metric for metric, _ in HEADLINE]
    totals = {metric: sum(int(getattr(day, metric)) for day in data.days) for metric in fields}
    cards = [
        f'<div class="figure headline" id="figure-{metric}" style="border-top-color: {HEADLINE_COLOUR}">'
        f'<div class="label">{_e(title)}</div><div class="value">{_n(totals[metric])}</div></div>'
        for metric, title in HEADLINE
    ]
    for metric, title, colour in METRICS:
        cards.append(
            f'<div class="figure" id="figure-{metric}" style="border-top-color: {colour}">'
            f'<div class="label"><span class="swatch" style="background: {colour}"></span>{_e(title)}</div>'
            f'<div class="value">{_n(totals[metric])}</div></div>'
        )
    unclassified = totals["human"] + totals["machine"] == 0 and totals["total"] > 0
    note = (
        '<p class="note">Human and machine are 0: these beacons carry no classification yet.</p>'
        if unclassified
        else ""
    )
    return (
        '<section aria-labelledby="figures-title"><h2 id="figures-title">Headline figures</h2>'
        f'<div class="figures">{"".join(cards)}</div>{note}'
        '<p class="note">From the daily counters. Unique human opens and clicks count the people '
        "(recipients, else visitors) with a hit labelled human, each day. Unique visitors is the sum "
        "of each day's unique visitors: visitors are not linkable across days by design.</p></section>"
    )


def _charts(data: ReportData) -> str:
    panels = [
        f'<div class="panel"><h3><span class="swatch" style="background: {colour}"></span>'
        f"{_e(title)} per day</h3>{bar_chart(metric, title, colour, data.days)}</div>"
        for metric, title, colour in METRICS
    ]
    return (
        '<section aria-labelledby="charts-title"><h2 id="charts-title">Daily charts</h2>'
        f'<div class="charts">{"".join(panels)}</div></section>'
    )


def _top_table(caption: str, rows: list[tuple[str, int]], scanned: int) -> str:
    if not rows:
        body = '<tr><td colspan="3">no beacons in range</td></tr>'
    else:
        body = "".join(
            f'<tr><td class="ref">{_e(name)}</td><td class="num">{_n(count)}</td>'
            f'<td class="num">{count / scanned:.1%}</td></tr>'
            for name, count in rows
        )
    return (
        f'<div class="panel"><table><caption><h3>{_e(caption)}</h3></caption>'
        '<thead><tr><th scope="col">reference</th><th scope="col" class="num">beacons</th>'
        f'<th scope="col" class="num">share</th></tr></thead><tbody>{body}</tbody></table></div>'
    )


def _tops(data: ReportData) -> str:
    found = data.tally
    if found.capped:
        scope = (
            f'<p class="warn" id="scan-capped">Scan capped: only the newest {_n(found.cap)} beacons of the '
            "range were read; older ones are not in these tables.</p>"
        )
    else:
        scope = f'<p class="note">Over all {_n(found.scanned)} beacons of the range.</p>'
    return (
        '<section aria-labelledby="tops-title"><h2 id="tops-title">Top sources and targets</h2>'
        f'{scope}<div class="tops">{_top_table("Top sources", found.top_sources, found.scanned)}'
        f"{_top_table('Top targets', found.top_targets, found.scanned)}</div></section>"
    )


def _cell(value: str | None, css: str = "") -> str:
    klass = f' class="{css}"' if css else ""
    return f"<td{klass}>{_e(value) if value else '-'}</td>"


def _latest(data: ReportData) -> str:
    rows = data.tally.latest
    header = "".join(
        f'<th scope="col">{name}</th>'
        for name in ("time (UTC)", "mode", "class", "target", "entity", "source", "country", "user agent")
    )
    if not rows:
        body = '<tr><td colspan="8">no beacons in range</td></tr>'
    else:
        body = "".join(
            "<tr>"
            f"{_cell(row.time, 'time')}{_cell(row.mode)}{_cell(row.classification)}"
            f"{_cell(row.target, 'ref')}{_cell(row.entity, 'ref')}"
            f"{_cell(row.source, 'ref')}{_cell(row.country)}"
            + (
                f'<td title="{_e(row.user_agent)}">{_e(_truncate(row.user_agent, USER_AGENT_WIDTH))}</td>'
                if row.user_agent
                else "<td>-</td>"
            )
            + "</tr>"
            for row in rows
        )
    return (
        '<section aria-labelledby="latest-title">'
        f'<h2 id="latest-title">Latest {len(rows)} beacons</h2>'
        f"<table><thead><tr>{header}</tr></thead><tbody>{body}</tbody></table></section>"
    )


def _campaign(data: ReportData) -> str:
    if data.campaign is None:
        return ""
    from webbugger_cli.campaign_report import campaign_section

    return campaign_section(data.campaign)


def render_html(data: ReportData) -> str:
    """The whole page, as one string."""
    generated = data.generated_at.strftime("%Y-%m-%d %H:%M:%S %Z").strip()
    days = len(data.days)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{_CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>webbugger report: {_e(data.kind)} {_e(data.ref)}</title>"
        f"<style>{_CSS}</style></head><body>"
        f"<header><h1>{_e(data.kind)} {_e(data.ref)}</h1>"
        f'<p class="meta">Range: {_e(data.first_day)} to {_e(data.last_day)} (UTC, {days} '
        f"day{'s' if days != 1 else ''})</p>"
        f'<p class="meta">Generated: {_e(generated)}</p></header>'
        f"<main>{_campaign(data)}{_figures(data)}{_charts(data)}{_tops(data)}{_latest(data)}</main>"
        "<footer>webbugger report. Figures and charts come from the daily counters; the tables from "
        "the stored beacons (the two can differ while the counters catch up, or when beacons have "
        "expired).</footer></body></html>\n"
    )
