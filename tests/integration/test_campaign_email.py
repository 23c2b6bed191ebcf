"""A mail campaign from its HTML to its report, end to end through the local stack.

``webbugger email rewrite`` writes 20 recipients' messages (their sends recorded); people and
machines then hit the links and pixels those messages hold, over real HTTP to the local API, the
stream function labels the hits, and ``webbugger stats campaign:ID --json`` must give the known
figures. ``webbugger report --html`` then writes the campaign report, which headless Chromium
renders to a screenshot that must show the human and machine bars.

Requests come the way CloudFront forwards them (``cloudfront-viewer-address`` and the secret
origin header), so that the published ranges of Apple, Google and Microsoft are seen. People send
``Accept-Language`` and ``Sec-Fetch-Mode`` as browsers and mail apps do: their hits come seconds
after the URLs were minted, and only a corroborated fast hit is a gateway's.

| recipients | what happens                                                      |
| ---------- | ----------------------------------------------------------------- |
| 0-5        | open the mail (Apple Mail, Outlook, iPhone); 0 and 1 click A,     |
|            | 0 and 2 click B                                                   |
| 6-8        | Apple Mail Privacy Protection prefetches the pixel, nothing more  |
| 9          | Apple's prefetch, then the person clicks A (the prefetch is their |
|            | open)                                                             |
| 10, 11     | Microsoft Safe Links follows A and B                              |
| 12         | Gmail's image proxy fetches the pixel                             |
| 13         | images off: no open seen, the person clicks B                     |
| 14-19      | nothing                                                           |
"""

from __future__ import annotations

import json
import re
import time
import uuid
from typing import TYPE_CHECKING, Any

import pytest
from browser import WINDOW, chromium, run_browser
from PIL import Image
from test_campaign_classification import APPLE_MAIL, EDGE, GMAIL_PROXY, MPP, OUTLOOK, SAFARI_IOS
from test_report_browser import console_lines, pixels_near, rgb
from webbugger.refs import Ref
from webbugger.runtime import default_registry
from webbugger.service.stats import campaign_figures
from webbugger_cli.campaign_report import HUMAN_COLOUR, MACHINE_COLOUR
from webbugger_plugins.campaign import create_campaign

if TYPE_CHECKING:
    from pathlib import Path

    from conftest import RunningStack

pytestmark = pytest.mark.ddblocal

LABELS_TIMEOUT_S = 30.0
RECIPIENTS = 20
MESSAGE = (
    "<!DOCTYPE html><html><head><title>News</title></head><body>\n"
    '<h1>Our news</h1><p><a href="https://example.com/news">Read the news</a></p>\n'
    '<p><a href="https://example.com/shop?ref=mail">Visit the shop</a></p>\n'
    '<p><a href="https://example.com/unsubscribe">Unsubscribe</a></p>\n</body></html>\n'
)
NEWS, SHOP = "https://example.com/news", "https://example.com/shop?ref=mail"
TRUTH = {
    "sent": 20,
    "unique_human_opens": 8,  # 0-5, 9 (its prefetch, upgraded by the click) and 13 (a click)
    "open_rate": 0.4,
    "unique_human_clicks": 5,  # 0, 1, 2, 9, 13
    "click_rate": 0.25,
    "click_to_open_rate": 0.625,
    "human_opens": 7,
    "machine_opens": 4,  # 6-8 prefetched, 12 proxied
    "machine_clicks": 4,  # 10 and 11, both links
    "machine_classes": {"mail-proxy": 1, "privacy-prefetch": 3, "security-scanner": 4},
    "pending": 0,
}
# (destination, unique human clicks, human clicks, machine clicks)
LINKS = {(NEWS, 3, 3, 2), (SHOP, 3, 3, 2)}


class Mailbox:
    """The recipients' rewritten messages, and the hits made on them."""

    def __init__(self, stack: RunningStack, out_dir: Path) -> None:
        self.stack = stack
        self.messages = sorted(out_dir.glob("*.html"))
        assert len(self.messages) == RECIPIENTS

    def urls(self, index: int) -> tuple[str, str, str]:
        """Recipient ``index``'s pixel, news link and shop link."""
        page = self.messages[index].read_text(encoding="utf-8")
        base = re.escape(self.stack.api_url)
        (pixel,) = re.findall(rf'src="({base}/p/[^"]+)"', page)
        news, shop = re.findall(rf'href="({base}/r/[^"]+)"', page)
        return pixel, news, shop

    def hit(self, url: str, agent: str, address: str, *, person: bool) -> int:
        headers = {"Accept-Language": "en-GB,en;q=0.9", "Sec-Fetch-Mode": "no-cors"} if person else {}
        return self.stack.get_via_cloudfront(url, agent, address, headers)

    def open(self, index: int, agent: str, address: str, *, person: bool = True) -> None:
        assert self.hit(self.urls(index)[0], agent, address, person=person) == 200

    def click(self, index: int, link: int, agent: str, address: str, *, person: bool = True) -> None:
        assert self.hit(self.urls(index)[link], agent, address, person=person) == 302


def play(mail: Mailbox) -> None:
    """The hits of the table in the module's docstring."""
    readers = [APPLE_MAIL, OUTLOOK, SAFARI_IOS]
    for n in range(6):
        mail.open(n, readers[n % 3], f"86.12.34.{n + 10}")
    for n, link in ((0, 1), (1, 1), (0, 2), (2, 2)):
        mail.click(n, link, EDGE, f"86.12.34.{n + 10}")
    for n in (6, 7, 8, 9):
        mail.open(n, MPP, "17.58.97.12", person=False)
    mail.click(9, 1, SAFARI_IOS, "92.184.105.33")
    for n in (10, 11):
        for link in (1, 2):
            mail.click(n, link, EDGE, "40.107.22.99", person=False)
    mail.open(12, GMAIL_PROXY, "66.249.84.17", person=False)
    mail.click(13, 2, EDGE, "86.12.34.99")


def test_a_campaign_from_html_to_report(local_stack: RunningStack, tmp_path: Path) -> None:
    local_stack.create_link("https://example.com/bind")  # binds every model of this process
    campaign_id = f"news-{uuid.uuid4().hex[:8]}"
    create_campaign(campaign_id, "End-to-end newsletter")
    campaign = Ref("campaign", campaign_id)
    message, recipients, out_dir = tmp_path / "news.html", tmp_path / "to.txt", tmp_path / "out"
    message.write_text(MESSAGE, encoding="utf-8")
    recipients.write_text("".join(f"reader{n:02d}@example.org\n" for n in range(RECIPIENTS)))
    args = ["email", "rewrite", str(message), "--campaign", campaign_id, "--recipients", str(recipients)]
    made = local_stack.cli(*args, "--out-dir", str(out_dir))
    assert made.returncode == 0, made.stderr
    assert "2 links to 2 destination(s), pixel placed" in made.stderr
    assert "20 new send(s) recorded" in made.stderr
    again = local_stack.cli(*args, "--out-dir", str(tmp_path / "again"))  # sent twice: counted once
    assert "0 new send(s) recorded" in again.stderr, again.stderr

    play(Mailbox(local_stack, out_dir))

    def figures() -> dict[str, Any]:
        found: dict[str, Any] = campaign_figures(default_registry(), campaign).as_dict()
        return found

    deadline = time.monotonic() + LABELS_TIMEOUT_S
    while {key: figures()[key] for key in TRUTH} != TRUTH and time.monotonic() < deadline:
        time.sleep(0.5)

    stats = local_stack.cli("stats", str(campaign), "--json", "--days", "2")
    assert stats.returncode == 0, stats.stderr
    found = json.loads(stats.stdout)["campaign"]
    assert {key: found[key] for key in TRUTH} == TRUTH, found
    links = {
        (link["url"], link["unique_human_clicks"], link["human_clicks"], link["machine_clicks"])
        for link in found["links"]
    }
    assert links == LINKS

    report = tmp_path / "report.html"
    made = local_stack.cli(
        "report", str(campaign), "--days", "2", "--html", str(report)
    )  # a source: inferred
    assert made.returncode == 0, made.stderr
    assert f"campaign {campaign}: sent 20, unique human opens 8 (40.0%)" in made.stdout
    page = report.read_text(encoding="utf-8")
    assert page.count('id="campaign-') >= 10
    assert "median 0.0 hours" in page  # everyone opened within seconds of the send
    assert ">Apple Mail<" in page and ">Outlook<" in page and ">iPhone<" in page

    binary = chromium()
    shot = tmp_path / "shot.png"
    seen = run_browser(binary, tmp_path, report.as_uri(), f"--screenshot={shot}")
    assert seen.returncode == 0, seen.stderr[-2000:]
    with Image.open(shot) as image:
        assert image.size == WINDOW
        colours = image.convert("RGB").getcolors(maxcolors=WINDOW[0] * WINDOW[1])
    assert colours is not None
    # The bars of the opens and clicks charts (a legend swatch is 144 pixels).
    assert pixels_near(colours, rgb(HUMAN_COLOUR)) >= 2000
    assert pixels_near(colours, rgb(MACHINE_COLOUR)) >= 2000
    assert console_lines(seen.stderr) == []
    dom = run_browser(binary, tmp_path, report.as_uri(), "--dump-dom").stdout
    for chart in ("campaign-opens", "campaign-clicks"):
        assert re.search(rf'<svg[^>]*id="{chart}"[^>]*role="img"', dom), chart
    assert re.search(r'<table id="campaign-links">.*example\.com/news', dom)
