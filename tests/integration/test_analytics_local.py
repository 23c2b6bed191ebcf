"""The analytics table locally, against the real local stack: a day of a campaign's hits (through
the HTTP API, labelled and counted by the stream feed) exported with ``webbugger export --format
parquet``, read back by DuckDB with the named queries of template.yaml's Athena workgroup
(``webbugger sql --named``), gives the figures ``webbugger stats`` gives.

The scenario has a class that changes after it was first stored (Apple's prefetch of an open,
human once the recipient clicks), machines, and visitors without an entity (people by their
daily visitor key).
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest
from test_campaign_classification import EDGE, GMAIL_PROXY, MPP, OUTLOOK, SAFARI_IOS, Campaign
from test_cli_stats_export_local import get
from webbugger.counters import daily_stats
from webbugger.modes import Mode
from webbugger.registry import Kind
from webbugger_cli.main import main
from webbugger_plugins.campaign import create_campaign

if TYPE_CHECKING:
    from pathlib import Path

    from conftest import RunningStack

pytestmark = pytest.mark.ddblocal

COUNTERS_TIMEOUT_S = 30.0
STATS_FIELDS = ("unique_human_opens", "unique_human_clicks", "total", "human", "machine")


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """``webbugger ARGS`` in this process (the local stack's environment is applied)."""
    capsys.readouterr()
    status = main(list(args))
    out, err = capsys.readouterr()
    return status, out, err


def _json_lines(capsys: pytest.CaptureFixture[str], *args: str) -> list[dict[str, Any]]:
    status, out, err = _cli(capsys, *args)
    assert status == 0, err
    return [json.loads(line) for line in out.splitlines()]


def _counted(kind: Kind, ref: str) -> dict[str, Any]:
    today = datetime.now(UTC).date()
    return daily_stats(kind, ref, today, today).days[-1].as_dict()


def test_the_parquet_of_a_day_gives_the_figures_of_stats(
    local_stack: RunningStack, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    link_id = local_stack.create_link("https://example.com/analytics")
    campaign_id = f"analytics-{uuid.uuid4().hex[:8]}"
    create_campaign(campaign_id, "Analytics export")
    mail = Campaign(local_stack, link_id, campaign_id)
    sent = int(time.time()) - 7200
    assert mail.hit(mail.url("mpp-click", Mode.PIXEL, sent), MPP, "17.58.97.12") == 200
    assert mail.hit(mail.url("outlook", Mode.PIXEL, sent), OUTLOOK, "81.2.69.160") == 200
    assert mail.hit(mail.url("gmail", Mode.PIXEL, sent), GMAIL_PROXY, "66.249.84.17") == 200
    assert mail.hit(mail.url("gateway", Mode.REDIRECT, int(time.time())), EDGE, "35.175.2.7") == 302
    # The click that makes Apple's prefetch of this recipient's open a human open.
    assert mail.hit(mail.url("mpp-click", Mode.REDIRECT, sent), SAFARI_IOS, "92.184.105.33") == 302
    # Visitors with no entity, on the link's short URL: two people by their visitor keys.
    short_url = f"{local_stack.api_url.rstrip('/')}/l/{link_id}"
    for agent in ("analytics-test/visitor-a", "analytics-test/visitor-a", "analytics-test/visitor-b"):
        assert get(short_url, agent).status == 302

    campaign, link = f"campaign:{campaign_id}", f"link:{link_id}"
    deadline = time.monotonic() + COUNTERS_TIMEOUT_S
    # Every hit counted, and the prefetch relabelled.
    while True:
        counts = _counted(Kind.SOURCE, campaign), _counted(Kind.TARGET, link)
        if (counts[0]["total"], counts[0]["unique_human_opens"], counts[1]["total"]) == (5, 2, 8):
            break
        assert time.monotonic() < deadline, counts
        time.sleep(0.5)

    today = datetime.now(UTC).date().isoformat()
    out = tmp_path / "beacons"
    # The link's hits are all of the scenario's (the campaign's carry the link as their target).
    days = "--from", today, "--to", today
    status, _, err = _cli(
        capsys, "export", "--format", "parquet", "--target", link, *days, "--output", str(out)
    )
    assert status == 0, err
    assert err == "exported 8 rows to " + str(out) + "\n"
    assert sorted(path.name for path in out.iterdir()) == [f"day={today}"]

    named = "sql", "--parquet", str(out), "--json", "--named"
    by_campaign = {row["campaign"]: row for row in _json_lines(capsys, *named, "unique-humans-by-campaign")}
    by_link = {row["link"]: row for row in _json_lines(capsys, *named, "unique-humans-by-link")}
    for row, ref in ((by_campaign[campaign], campaign), (by_link[link], link)):
        (stats,) = _json_lines(capsys, "stats", ref, "--json", "--days", "1")
        day = stats["days"][-1]
        assert row["day"] == day["day"] == today
        assert {name: row[name] for name in STATS_FIELDS} == {name: day[name] for name in STATS_FIELDS}
        assert row["unique_people"] == day["unique"]
    assert (by_campaign[campaign]["unique_human_opens"], by_campaign[campaign]["unique_human_clicks"]) == (
        2,
        1,
    )
    assert by_link[link]["unique_people"] == 6  # four recipients and two visitors

    # Any SQL over the same table; a mistake is one line.
    query = f"SELECT class, count(*) AS hits FROM beacons WHERE source = '{campaign}' GROUP BY 1 ORDER BY 1"  # noqa: S608
    assert _json_lines(capsys, "sql", "--parquet", str(out), "--json", query) == [
        {"class": "human", "hits": 3},
        {"class": "mail-proxy", "hits": 1},
        {"class": "security-scanner", "hits": 1},
    ]
    status, out_text, err = _cli(capsys, "sql", "--parquet", str(out), "SELECT nope FROM beacons")
    assert (status, out_text) == (1, "")
    assert len(err.splitlines()) == 1 and "nope" in err
