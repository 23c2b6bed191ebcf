"""``webbugger report`` end to end, looked at by a real browser.

Hits go through the local stack's HTTP API (two user agents), the stream feed updates the
counters, the command writes the HTML report, and headless Chromium (Debian's ``chromium``,
installed by ``make setup``) renders it twice: once to a PNG screenshot, which must show the
charts' colours, and once with ``--dump-dom``, whose DOM must hold the four SVG charts. Chromium
logs the page's console to stderr (``--enable-logging=stderr``): no console message may come from
the report. A control page with a deliberate console error proves that such lines do show up.

Chromium gets no network to speak of: the report is a file, its Content-Security-Policy allows no
fetch, and background networking, QUIC, sync and component updates are off.
"""

from __future__ import annotations

import http.client
import re
import time
import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest
from browser import WINDOW, chromium, run_browser
from PIL import Image
from webbugger.counters import daily_stats
from webbugger.modes import Mode
from webbugger.refs import Ref
from webbugger.registry import Kind
from webbugger.tokens import TokenClaims
from webbugger_cli.report_html import METRICS
from webbugger_plugins.campaign import create_campaign

if TYPE_CHECKING:
    from collections.abc import Callable
    from pathlib import Path

    from conftest import RunningStack

pytestmark = pytest.mark.ddblocal

COUNTERS_TIMEOUT_S = 20.0
COLOUR_TOLERANCE = 8  # per channel: the bars are flat fills, so their insides are exact
# How Chromium logs the page's console and uncaught exceptions on stderr.
CONSOLE_LINE = re.compile(r":CONSOLE[:(]|Uncaught|Refused to|violates the following Content Security Policy")


def console_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if CONSOLE_LINE.search(line)]


def hit(url: str, agent: str) -> int:
    parts = urlsplit(url)
    assert parts.hostname == "127.0.0.1"
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
    try:
        conn.request("GET", parts.path, headers={"User-Agent": agent})
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def poll(check: Callable[[], Any], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


def rgb(colour: str) -> tuple[int, int, int]:
    value = int(colour.removeprefix("#"), 16)
    return value >> 16, (value >> 8) & 0xFF, value & 0xFF


def pixels_near(colours: list[tuple[int, tuple[int, int, int]]], wanted: tuple[int, int, int]) -> int:
    return sum(
        count
        for count, found in colours
        if all(abs(a - b) <= COLOUR_TOLERANCE for a, b in zip(found, wanted, strict=True))
    )


def test_control_page_console_error_is_seen(tmp_path: Path) -> None:
    """The console check below can fail: a page's console error does reach stderr."""
    binary = chromium()
    page = tmp_path / "control.html"
    page.write_text('<!DOCTYPE html><p>control</p><script>console.error("control-error"); nope();</script>')
    seen = run_browser(binary, tmp_path, page.as_uri(), "--dump-dom")
    assert seen.returncode == 0, seen.stderr[-2000:]
    found = console_lines(seen.stderr)
    assert any("control-error" in line for line in found), seen.stderr[-2000:]
    assert any("Uncaught" in line for line in found), seen.stderr[-2000:]


def test_report_renders_in_chromium(local_stack: RunningStack, tmp_path: Path) -> None:
    binary = chromium()
    link_id = local_stack.create_link("https://example.com/reported")  # binds every model, counters too
    campaign_id = f"report-{uuid.uuid4().hex[:8]}"
    create_campaign(campaign_id, "Report test")
    target = Ref("link", link_id)
    # Sent an hour ago: hits seconds after minting would be labelled security scanners.
    sent = int(time.time()) - 3600
    redirect = local_stack.mint(
        TokenClaims(mode=Mode.REDIRECT, issued_at=sent, target=target, source=Ref("campaign", campaign_id))
    )
    pixel = local_stack.mint(TokenClaims(mode=Mode.PIXEL, issued_at=sent, target=target))
    tag = uuid.uuid4().hex[:8]
    agent_a = f"Mozilla/5.0 (X11; Linux x86_64) ReportTestA/{tag} <b>&amp;"
    agent_b = f"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) ReportTestB/{tag}"
    first_day = datetime.now(UTC).date()
    for _ in range(3):
        assert hit(redirect, agent_a) == 302
    for _ in range(2):
        assert hit(pixel, agent_b) == 200
    last_day = datetime.now(UTC).date()

    def counted() -> tuple[int, int]:
        totals = daily_stats(Kind.TARGET, str(target), first_day, last_day).totals
        return totals.total, totals.unique

    found = poll(lambda: counted() if counted() == (5, 2) else None, COUNTERS_TIMEOUT_S)
    assert found == (5, 2), f"not within {COUNTERS_TIMEOUT_S:.0f} s: counters of {target} are {counted()}"

    out = tmp_path / "report.html"
    made = local_stack.cli("report", str(target), "--days", "7", "--html", str(out))
    assert made.returncode == 0, made.stderr
    assert "Traceback" not in made.stderr
    # The stream labels both browsers' hits human: one person opened, the other clicked.
    assert made.stdout.startswith(
        f"wrote {out}: 1 unique human opens, 1 unique human clicks; "
        "5 hits, 2 unique visitor-days over 7 days; 5 beacons"
    )
    page = out.read_text(encoding="utf-8")
    assert f"campaign:{campaign_id}" in page
    assert "ReportTestA" in page and "<b>&amp;" not in page  # escaped
    assert page.count("<svg") == 4

    # 1. The screenshot: a real picture, with the charts' colours in it.
    shot = tmp_path / "shot.png"
    seen = run_browser(binary, tmp_path, out.as_uri(), f"--screenshot={shot}")
    assert seen.returncode == 0, seen.stderr[-2000:]
    assert shot.is_file(), seen.stderr[-2000:]
    with Image.open(shot) as image:
        assert image.size == WINDOW
        colours = image.convert("RGB").getcolors(maxcolors=WINDOW[0] * WINDOW[1])
    assert colours is not None
    assert len(colours) > 20, f"a nearly blank screenshot: {len(colours)} colours"
    for metric, _title, colour in METRICS:
        # Every metric's swatches; total and unique also have bars (machine is 0 here).
        minimum = 400 if metric in ("total", "unique") else 50
        assert pixels_near(colours, rgb(colour)) >= minimum, f"{metric} ({colour}) barely on screen"
    assert console_lines(seen.stderr) == []

    # 2. The DOM as the browser built it, and no console output from the page.
    seen = run_browser(binary, tmp_path, out.as_uri(), "--dump-dom")
    assert seen.returncode == 0, seen.stderr[-2000:]
    dom = seen.stdout
    for metric, title, colour in METRICS:
        assert re.search(rf'<svg[^>]*id="chart-{metric}"[^>]*role="img"', dom), metric
        assert f"{title} per day</title>" in dom
        assert f'fill="{colour}"' in dom
    assert dom.count('class="bar"') == 4 * 7
    assert f"link:{link_id}" in dom
    assert "Latest 5 beacons" in dom
    assert console_lines(seen.stderr) == [], "\n".join(console_lines(seen.stderr))
