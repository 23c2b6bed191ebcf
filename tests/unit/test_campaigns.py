"""A campaign's figures folded from beacons (no database): distinct recipients over the whole
campaign, clickers as openers, machines apart, per-link clicks, rates over sent; the hours from
send to first open; the stats lines and the report's campaign part."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from webbugger.campaigns import fold, send_to_open
from webbugger_cli.campaign_report import CampaignReport, buckets, campaign_section
from webbugger_cli.commands.stats import campaign_lines

SENT_AT = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)


@dataclass
class Hit:
    entity: str | None
    mode: str = "pixel"
    classification: str | None = "human"
    target: str | None = None
    hours: float = 1.0
    browser: str | None = "Apple Mail"
    os: str | None = "Mac OS X"
    device: str | None = "Mac"

    @property
    def created_at(self) -> datetime:
        return SENT_AT + timedelta(hours=self.hours)


def click(entity: str | None, target: str, classification: str = "human", hours: float = 2.0) -> Hit:
    return Hit(entity, "redirect", classification, target, hours)


HITS = [
    Hit("recipient:a"),
    Hit("recipient:a", hours=30),  # the next day: still one opener, first open at 1 h
    Hit("recipient:b", hours=5),
    Hit("recipient:c", classification="privacy-prefetch", hours=0.01),
    click("recipient:a", "link:news"),
    click("recipient:a", "link:news", hours=3),  # twice: one unique clicker
    click("recipient:d", "link:shop"),  # images off: a click is an open too
    click("recipient:e", "link:news", "security-scanner", 0.001),
    Hit("recipient:f", classification=None),  # not labelled yet
]


def test_fold_counts_recipients_once_over_the_campaign() -> None:
    figures = fold("campaign:spring", HITS, sent=10)
    found = figures.as_dict()
    assert (found["unique_human_opens"], found["unique_human_clicks"]) == (3, 2)  # a b d / a d
    assert (found["open_rate"], found["click_rate"], found["click_to_open_rate"]) == (0.3, 0.2, 0.6667)
    assert (found["human_opens"], found["machine_opens"]) == (3, 1)
    assert (found["human_clicks"], found["machine_clicks"]) == (3, 1)
    assert found["machine_classes"] == {"privacy-prefetch": 1, "security-scanner": 1}
    assert (found["pending"], found["scanned"], found["capped"]) == (1, 9, False)
    assert [(link["target"], link["unique_human_clicks"], link["human_clicks"], link["machine_clicks"])
            for link in found["links"]] == [("link:news", 1, 2, 1), ("link:shop", 1, 1, 0)]  # fmt: skip
    assert figures.clients["browser"] == {"Apple Mail": 3}


def test_rates_are_none_without_sends_and_the_cap_is_kept() -> None:
    figures = fold("campaign:x", HITS, cap=3)
    assert (figures.open_rate, figures.click_rate, figures.scanned, figures.capped) == (None, None, 3, True)
    assert fold("campaign:x", []).click_to_open_rate is None


def test_hours_from_send_to_first_open() -> None:
    figures = fold("campaign:spring", HITS, sent=10)
    sent = {"recipient:a": SENT_AT, "recipient:b": SENT_AT + timedelta(hours=1)}
    assert send_to_open(figures, sent) == [1.0, 4.0]  # d opened by a click: no first open time


def test_buckets_are_hourly_for_three_days_then_daily() -> None:
    unit, series = buckets(fold("c:x", HITS).hours)
    assert unit == "hour" and len(series) == 31  # 09:00 to 15:00 the next day, gaps filled
    assert series[0] == ("2026-05-04T09:00", [0, 1, 0, 1])  # the prefetch and the scanner
    assert series[1] == ("2026-05-04T10:00", [1, 0, 0, 0])  # a's first open
    unit, series = buckets(fold("c:x", [*HITS, Hit("recipient:g", hours=24 * 5)]).hours)
    assert unit == "day" and [label for label, _ in series][:2] == ["2026-05-04", "2026-05-05"]
    assert len(series) == 6


def test_stats_lines_and_report_part() -> None:
    figures = fold("campaign:spring", HITS, sent=10)
    lines = campaign_lines(figures.as_dict())
    assert lines[0] == (
        "sent 10: unique human opens 3 (open rate 30.0%), unique human clicks 2 "
        "(click rate 20.0%, click-to-open 66.7%)"
    )
    assert "privacy-prefetch 1" in lines[1] and "1 hits not labelled yet" in lines[1]
    figures.links[0].url = "https://example.com/<news>"
    page = campaign_section(CampaignReport(figures, [1.0, 4.0]))
    assert "https://example.com/&lt;news&gt;" in page and "<news>" not in page
    assert "median 2.5 hours" in page
    assert page.count("<svg") == 2


def test_openers_with_no_recorded_send_are_left_out_of_the_rates() -> None:
    # Sent to a and b only; d (a click) and g (an open) came from URLs with no send recorded.
    figures = fold("campaign:spring", [*HITS, Hit("recipient:g")], sent=2)
    figures.keep_sent({"recipient:a", "recipient:b"})
    found = figures.as_dict()
    assert (found["unique_human_opens"], found["unique_human_clicks"], found["openers_not_sent"]) == (2, 1, 2)
    assert (found["open_rate"], found["click_rate"], found["click_to_open_rate"]) == (1.0, 0.5, 0.5)
    assert "2 opener(s) with no recorded send" in campaign_lines(found)[-1]
    page = campaign_section(CampaignReport(figures, []))
    assert "Opened with no recorded send, left out of the rates: 2" in page
