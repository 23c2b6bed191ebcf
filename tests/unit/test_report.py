"""The HTML report: rendering from plain data (no database), the scan tally, and the command's
fetch and write with the stack and tables replaced by fakes."""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from typing import TYPE_CHECKING, Any

import pytest
from webbugger import beacon_queries, counters
from webbugger.counters import DayCounts, Stats
from webbugger.registry import Kind
from webbugger_cli.commands import UsageError
from webbugger_cli.commands import report as command
from webbugger_cli.report import NONE_LABEL, ReportData, Tally, tally
from webbugger_cli.report_html import METRICS, bar_chart, nice_ticks, render_html

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

NOW = datetime(2024, 5, 20, 12, 30, tzinfo=UTC)
EVIL = '<script>alert("x")</script>&"\''


@dataclass
class FakeBeacon:
    created_at: datetime
    mode: str = "p"
    target: str | None = "link:abc"
    entity: str | None = None
    source: str | None = None
    country: str | None = None
    user_agent: str | None = "Mozilla/5.0"
    classification: str | None = None


def days(values: list[int], start: date = date(2024, 5, 14)) -> list[DayCounts]:
    return [
        DayCounts((start + timedelta(days=i)).isoformat(), total=v, unique=v // 2, human=0, machine=0)
        for i, v in enumerate(values)
    ]


def data(**changes: Any) -> ReportData:
    base: dict[str, Any] = {
        "ref": "link:abc",
        "kind": "target",
        "first_day": "2024-05-14",
        "last_day": "2024-05-20",
        "generated_at": NOW,
        "days": days([0, 3, 5, 1, 0, 8, 2]),
        "tally": Tally(scanned=19, capped=False, cap=50_000),
    }
    return ReportData(**(base | changes))


class Structure(HTMLParser):
    """Collects tags, attribute values and the urls a page would load."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []
        self.open: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.attrs += attrs

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(page: str) -> Structure:
    found = Structure()
    found.feed(page)
    found.close()
    return found


# --- rendering ----------------------------------------------------------------------------------


def test_page_is_self_contained() -> None:
    page = render_html(data())
    found = parse(page)
    assert "script" not in found.tags
    assert not {"link", "img", "iframe", "object", "embed"} & set(found.tags)
    for name, value in found.attrs:
        assert name not in ("src", "href"), (name, value)
    # Nothing to fetch from CSS either, and the browser is told so.
    assert "url(" not in page
    assert "@import" not in page
    assert "default-src 'none'" in page
    # The only URL is the SVG namespace, which is a name, not a fetch.
    assert set(re.findall(r"https?://[^\s\"'<>]+", page)) == {"http://www.w3.org/2000/svg"}


def test_header_figures_and_four_charts() -> None:
    page = render_html(data())
    found = parse(page)
    text = " ".join(found.text)
    assert "target link:abc" in text
    assert "2024-05-14 to 2024-05-20" in text
    assert "Generated: 2024-05-20 12:30:00 UTC" in text
    assert found.tags.count("svg") == 4
    for metric, title, colour in METRICS:
        assert f'id="chart-{metric}"' in page
        assert f'id="figure-{metric}"' in page
        assert f"{title} per day" in text
        assert colour in page
    # Headline figures: 19 total, 8 unique (sum of v // 2), human and machine shown as 0.
    assert re.search(r'id="figure-total".*?<div class="value">19</div>', page)
    assert re.search(r'id="figure-unique".*?<div class="value">8</div>', page)
    assert re.search(r'id="figure-human".*?<div class="value">0</div>', page)
    assert re.search(r'id="figure-machine".*?<div class="value">0</div>', page)
    assert "no classification yet" in text
    assert re.search(r'id="figure-unique_human_opens".*?<div class="value">0</div>', page)
    assert re.search(r'id="figure-unique_human_clicks".*?<div class="value">0</div>', page)


def test_the_headline_is_unique_human_opens_and_clicks_and_beacons_show_their_class() -> None:
    labelled = [
        DayCounts(
            "2024-05-19", total=9, unique=4, human=3, machine=6, unique_human_opens=2, unique_human_clicks=1
        ),
        DayCounts("2024-05-20", total=4, unique=2, human=2, machine=2, unique_human_opens=1),
    ]
    beacon = FakeBeacon(created_at=datetime(2024, 5, 20, 8, 0, tzinfo=UTC), classification="privacy-prefetch")
    page = render_html(data(days=labelled, tally=tally([beacon])))
    headline = page.index('id="figure-unique_human_opens"')
    assert headline < page.index('id="figure-total"')  # first on the page
    assert re.search(r'id="figure-unique_human_opens".*?<div class="value">3</div>', page)
    assert re.search(r'id="figure-unique_human_clicks".*?<div class="value">1</div>', page)
    assert "no classification yet" not in page
    assert '<th scope="col">class</th>' in page
    assert "<td>privacy-prefetch</td>" in page


def test_charts_are_accessible_and_have_a_bar_per_day() -> None:
    chart = bar_chart("total", "Total hits", "#2563eb", days([0, 3, 5, 1, 0, 8, 2]))
    assert 'role="img"' in chart
    assert 'aria-labelledby="chart-total-title chart-total-desc"' in chart
    assert '<title id="chart-total-title">Total hits per day</title>' in chart
    assert "19 in all, at most 8 in a day" in chart
    assert chart.count('class="bar"') == 7
    assert "<title>2024-05-19: 8</title>" in chart
    # Day labels (month-day) and y ticks up to at least the peak.
    assert ">05-14</text>" in chart
    assert ">05-20</text>" in chart
    assert re.search(r'class="tick"[^>]*>8</text>', chart)


def test_long_ranges_thin_the_day_labels() -> None:
    chart = bar_chart("total", "Total hits", "#2563eb", days(list(range(90))))
    assert chart.count('class="bar"') == 90
    assert chart.count('class="day"') <= 11  # ten day labels and the axis caption


def test_empty_series_says_so() -> None:
    chart = bar_chart("human", "Human hits", "#d97706", days([0, 0, 0]))
    assert "none recorded" in chart
    assert 'height="0"' in chart
    assert bar_chart("human", "Human hits", "#d97706", []).count('class="bar"') == 0


@pytest.mark.parametrize(
    ("maximum", "expected"),
    [
        (0, [0, 1]),
        (1, [0, 1]),
        (7, [0, 2, 4, 6, 8]),
        (100, [0, 20, 40, 60, 80, 100]),
        (101, [0, 50, 100, 150]),
        (12345, [0, 5000, 10000, 15000]),
    ],
)
def test_nice_ticks(maximum: int, expected: list[int]) -> None:
    assert nice_ticks(maximum) == expected


def test_everything_from_data_is_escaped() -> None:
    beacon = FakeBeacon(
        NOW, target=f"link:{EVIL}", entity=f"e:{EVIL}", source=f"s:{EVIL}", country=EVIL, user_agent=EVIL
    )
    page = render_html(
        data(ref=f"link:{EVIL}", kind=EVIL, first_day=EVIL, tally=tally([beacon]), days=[DayCounts(EVIL, 1)])
    )
    assert "<script>" not in page
    assert 'alert("x")' not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&amp;&quot;&#x27;" in page
    assert "script" not in parse(page).tags


def test_tables_show_tops_latest_and_truncated_agents() -> None:
    agent = "A" * 100
    beacons = [
        FakeBeacon(NOW - timedelta(minutes=i), source="campaign:spring" if i % 3 else None, user_agent=agent)
        for i in range(60)
    ]
    found = tally(beacons)
    assert found.scanned == 60
    assert not found.capped
    assert found.top_sources == [("campaign:spring", 40), (NONE_LABEL, 20)]
    assert found.top_targets == [("link:abc", 60)]
    assert len(found.latest) == 50
    assert found.latest[0].time == "2024-05-20 12:30:00Z"
    page = render_html(data(tally=found))
    assert "Latest 50 beacons" in page
    assert "Over all 60 beacons of the range." in page
    assert "A" * 59 + "…" in page
    assert f'title="{agent}"' in page
    assert "66.7%" in page
    assert "scan-capped" not in page


def test_capped_scan_is_said() -> None:
    beacons = (FakeBeacon(NOW, target=f"link:{i % 3}") for i in range(1000))
    found = tally(beacons, cap=100, latest=5, top=2)
    assert found.scanned == 100
    assert found.capped
    assert len(found.latest) == 5
    assert len(found.top_targets) == 2
    page = render_html(data(tally=found))
    assert 'id="scan-capped"' in page
    assert "only the newest 100 beacons" in page


def test_exactly_cap_beacons_is_not_capped() -> None:
    found = tally([FakeBeacon(NOW)] * 10, cap=10)
    assert (found.scanned, found.capped) == (10, False)


def test_tally_reads_at_most_one_more_than_the_cap() -> None:
    read = 0

    def endless() -> Iterator[FakeBeacon]:
        nonlocal read
        while True:
            read += 1
            yield FakeBeacon(NOW)

    assert tally(endless(), cap=7).capped
    assert read == 8


def test_no_beacons() -> None:
    page = render_html(data(days=days([0] * 7), tally=tally([])))
    assert "Latest 0 beacons" in page
    assert page.count("no beacons in range") == 3
    assert "no classification yet" not in page


# --- the command --------------------------------------------------------------------------------


def parser() -> argparse.ArgumentParser:
    """The command wired as main.py wires it: top-level --stack/--region with None defaults."""
    top = argparse.ArgumentParser(prog="webbugger")
    top.add_argument("--stack", default=None)
    top.add_argument("--region", default=None)
    command.register(top.add_subparsers(dest="command", required=True))
    return top


def test_arguments() -> None:
    args = parser().parse_args(["--stack", "prod", "report", "link:abc", "--html", "out.html"])
    assert (args.ref, args.kind, args.days, args.html, args.max_scan) == (
        "link:abc",
        None,  # the kind TYPE is registered as, as `stats` infers it
        30,
        "out.html",
        50_000,
    )
    assert args.stack == "prod"
    assert args.handler is command.cmd_report
    args = parser().parse_args(
        ["report", "campaign:x", "--kind", "source", "--days", "7", "--html", "o.html", "--stack", "s"]
    )
    assert (args.kind, args.days, args.stack) == ("source", 7, "s")


@pytest.mark.parametrize(
    "argv",
    [
        ["report", "link:abc"],  # --html is required
        ["report", "link:abc", "--html", "o.html", "--days", "0"],
        ["report", "link:abc", "--html", "o.html", "--days", "many"],
        ["report", "link:abc", "--html", "o.html", "--kind", "visitor"],
        ["report", "link:abc", "--html", "o.html", "--max-scan", "0"],
    ],
)
def test_bad_arguments(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        parser().parse_args(argv)
    assert exited.value.code == 2
    assert "Traceback" not in capsys.readouterr().err


def test_day_range() -> None:
    assert command.day_range(1, NOW) == (date(2024, 5, 20), date(2024, 5, 20))
    assert command.day_range(30, NOW) == (date(2024, 4, 21), date(2024, 5, 20))


class FakeStack:
    name = "local"

    class settings:  # noqa: N801 - stands in for the Settings attribute
        counters_table = "counters"


def test_command_fetches_and_writes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    calls: dict[str, Any] = {}

    def daily_stats(kind: Kind, ref: object, first: date, last: date) -> Stats:
        calls["stats"] = (kind, str(ref), first, last)
        return Stats(str(ref), kind, days([1] * ((last - first).days + 1), first))

    def beacons_between(since: datetime, until: datetime, **kw: Any) -> Iterator[FakeBeacon]:
        calls["beacons"] = (since, until, kw["kind"], str(kw["ref"]))
        return iter([FakeBeacon(until, source="campaign:x")] * 3)

    monkeypatch.setattr(command, "resolve_stack", lambda name, region: FakeStack())
    monkeypatch.setattr(command, "require_counters", lambda stack: calls.setdefault("bound", stack.name))
    # Where the command imports them from when it runs (not at start-up: PynamoDB).
    monkeypatch.setattr(counters, "daily_stats", daily_stats)
    monkeypatch.setattr(beacon_queries, "beacons_between", beacons_between)
    out = tmp_path / "report.html"
    args = parser().parse_args(["report", "link:abc", "--days", "3", "--html", str(out), "--max-scan", "2"])
    assert args.handler(args) == 0

    kind, ref, first, last = calls["stats"]
    assert (kind, ref, (last - first).days) == (Kind.TARGET, "link:abc", 2)
    since, until, kind, ref = calls["beacons"]
    assert until.date() == last
    assert (since, kind, ref) == (
        datetime.combine(first, datetime.min.time(), tzinfo=UTC),
        Kind.TARGET,
        "link:abc",
    )
    assert calls["bound"] == "local"
    page = out.read_text(encoding="utf-8")
    assert page.count("<svg") == 4
    assert "only the newest 2 beacons" in page
    assert capsys.readouterr().out.startswith(
        f"wrote {out}: 0 unique human opens, 0 unique human clicks; 3 hits, 0 unique visitor-days over 3 days"
    )
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]  # no temporary file left


def test_the_kind_is_inferred_from_the_type_as_stats_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    asked: list[tuple[Kind, str]] = []

    def daily_stats(kind: Kind, ref: object, first: date, last: date) -> Stats:
        asked.append((kind, str(ref)))
        return Stats(str(ref), kind, days([2] * ((last - first).days + 1), first))

    monkeypatch.setattr(command, "resolve_stack", lambda name, region: FakeStack())
    monkeypatch.setattr(command, "require_counters", lambda stack: None)
    monkeypatch.setattr(counters, "daily_stats", daily_stats)  # where the command imports it from
    monkeypatch.setattr(beacon_queries, "beacons_between", lambda since, until, **kw: iter([]))
    monkeypatch.setattr(command, "campaign_report", lambda *args: None)  # it reads the sends table
    out = tmp_path / "report.html"
    args = parser().parse_args(["report", "campaign:spring", "--days", "2", "--html", str(out)])
    assert args.handler(args) == 0
    assert asked == [(Kind.SOURCE, "campaign:spring")]  # not an empty report of a "target"
    assert "4 hits" in capsys.readouterr().out
    args = parser().parse_args(["report", "nosuch:x", "--html", str(out)])
    with pytest.raises(UsageError, match="no type named 'nosuch' is registered"):
        args.handler(args)


def test_command_refuses_before_looking_for_a_stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_stack(name: object, region: object) -> None:
        raise AssertionError("looked for a stack")

    monkeypatch.setattr(command, "resolve_stack", no_stack)
    args = parser().parse_args(["report", "link:abc", "--html", str(tmp_path / "missing" / "r.html")])
    with pytest.raises(UsageError, match="does not exist"):
        args.handler(args)
    args = parser().parse_args(["report", "link:abc", "--html", str(tmp_path)])
    with pytest.raises(UsageError, match="is a directory"):
        args.handler(args)
    args = parser().parse_args(["report", "no-id", "--html", str(tmp_path / "r.html")])
    with pytest.raises(ValueError, match="expected TYPE:ID"):
        args.handler(args)
