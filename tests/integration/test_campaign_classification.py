"""A simulated email campaign through the local stack, end to end: real HTTP to the local API,
DynamoDB Local, the stream function fed from the table's stream, then ``webbugger stats --json``.

Eight recipients get a mail (a pixel and a tracked link each, minted per recipient). Machines and
people hit them the way the issue describes; the test knows the truth and checks the human
figures. Client addresses are given the way CloudFront gives them (``cloudfront-viewer-address``
with the deployment's secret origin header), so that Google's and Microsoft's published ranges
are seen.

| recipient | what happens                                                     | human open | human click |
| --------- | ---------------------------------------------------------------- | ---------- | ----------- |
| mpp       | Apple Mail Privacy Protection prefetches the pixel               |            |             |
| mpp-click | Apple's prefetch, then the person clicks an hour later           | yes (*)    | yes         |
| gmail     | Gmail's image proxy fetches the pixel (Google range)             |            |             |
| outlook   | opens in Outlook desktop, clicks in Edge                         | yes        | yes         |
| reader    | opens in Apple Mail on a Mac (its own fetch, not MPP)            | yes        |             |
| safelinks | Microsoft Safe Links follows the link (Exchange Online range)    |            |             |
| trapped   | a gateway clicks seconds after sending, and the honeypot link    |            |             |
| gateway   | a gateway with a browser user agent clicks seconds after sending |            |             |

(*) the click is evidence that the person opened the mail Apple's proxy fetched for them.
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import pytest
from webbugger.counters import daily_stats
from webbugger.modes import Mode
from webbugger.refs import Ref
from webbugger.registry import Kind
from webbugger.tokens import Purpose, TokenClaims
from webbugger_plugins.campaign import create_campaign

if TYPE_CHECKING:
    from conftest import RunningStack

pytestmark = pytest.mark.ddblocal

COUNTERS_TIMEOUT_S = 30.0
MPP = "Mozilla/5.0"
GMAIL_PROXY = "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)"
SAFARI_IOS = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Mobile/15E148 Safari/604.1"
)
OUTLOOK = "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17928; Pro)"
EDGE = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36 Edg/131.0.2903.70"
)
APPLE_MAIL = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)"
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
TRUTH = {
    "unique_human_opens": 3,
    "unique_human_clicks": 2,
    "total": 11,
    "human": 5,
    "machine": 6,
}


class Campaign:
    """One campaign's mails: per recipient, a pixel and a tracked link, minted when "sent"."""

    def __init__(self, stack: RunningStack, link_id: str, campaign_id: str) -> None:
        self.stack = stack
        self.link = Ref("link", link_id)
        self.source = Ref("campaign", campaign_id)
        self.tag = campaign_id

    def recipient(self, name: str) -> Ref:
        return Ref("recipient", f"{name}-{self.tag}")

    def url(self, name: str, mode: Mode, sent: int, *, honeypot: bool = False) -> str:
        claims = TokenClaims(
            mode=mode,
            issued_at=sent,
            target=self.link,
            entity=self.recipient(name),
            source=self.source,
            honeypot=honeypot,
            purpose=Purpose.EMAIL,  # a mail's URLs, as /mint/batch mints them
        )
        return self.stack.mint(claims)

    def hit(self, url: str, user_agent: str, address: str) -> int:
        """GET ``url`` as a request CloudFront forwarded from ``address``."""
        return self.stack.get_via_cloudfront(url, user_agent, address)


def counted(source: Ref) -> dict[str, int]:
    today = datetime.now(UTC).date()
    totals = daily_stats(Kind.SOURCE, source, today - timedelta(days=1), today).as_dict()["totals"]
    figures: dict[str, int] = totals
    return figures


def test_a_campaigns_human_figures_end_to_end(local_stack: RunningStack) -> None:
    link_id = local_stack.create_link("https://example.com/campaign")  # binds every model
    campaign_id = f"classify-{uuid.uuid4().hex[:8]}"
    create_campaign(campaign_id, "Classification end to end")
    mail = Campaign(local_stack, link_id, campaign_id)
    two_hours_ago = int(time.time()) - 7200

    def opened(name: str, user_agent: str, address: str) -> None:
        assert mail.hit(mail.url(name, Mode.PIXEL, two_hours_ago), user_agent, address) == 200

    def clicked(name: str, user_agent: str, address: str, sent: int = two_hours_ago) -> None:
        assert mail.hit(mail.url(name, Mode.REDIRECT, sent), user_agent, address) == 302

    # Sent two hours ago.
    opened("mpp", MPP, "17.58.97.12")
    opened("mpp-click", MPP, "172.225.46.8")
    opened("gmail", GMAIL_PROXY, "66.249.84.17")
    opened("outlook", OUTLOOK, "81.2.69.160")
    opened("reader", APPLE_MAIL, "86.12.34.56")
    clicked("safelinks", EDGE, "40.107.22.99")
    # People act later (hits now, two hours after sending).
    clicked("mpp-click", SAFARI_IOS, "92.184.105.33")
    clicked("outlook", EDGE, "81.2.69.160")
    # Sent just now: gateways click at once; one also follows the honeypot link.
    now = int(time.time())
    clicked("trapped", CHROME, "3.91.174.20", sent=now)
    assert mail.hit(mail.url("trapped", Mode.REDIRECT, now, honeypot=True), CHROME, "3.91.174.20") == 302
    clicked("gateway", CHROME, "35.175.2.7", sent=now)

    deadline = time.monotonic() + COUNTERS_TIMEOUT_S
    figures = counted(mail.source)
    while {key: figures[key] for key in TRUTH} != TRUTH and time.monotonic() < deadline:
        time.sleep(0.5)
        figures = counted(mail.source)

    result = local_stack.cli("stats", str(mail.source), "--json", "--days", "2")
    assert result.returncode == 0, result.stderr
    totals: dict[str, Any] = json.loads(result.stdout)["totals"]
    assert {key: totals[key] for key in TRUTH} == TRUTH, totals

    # Each hit carries its class (the honeypot hit aside, one hit per recipient and mode).
    labels: dict[tuple[str, str], str] = {}
    for item in local_stack.beacons():
        if item.get("source", {}).get("S") != str(mail.source) or "honeypot" in item["hints"]["SS"]:
            continue  # every hit here is hinted "email" (and "nofetch": no browser sent it)
        name = item["entity"]["S"].removeprefix("recipient:").removesuffix(f"-{mail.tag}")
        labels[name, item["mode"]["S"]] = item["class"]["S"]
    assert labels == {
        ("mpp", "pixel"): "privacy-prefetch",
        ("mpp-click", "pixel"): "human",
        ("mpp-click", "redirect"): "human",
        ("gmail", "pixel"): "mail-proxy",
        ("outlook", "pixel"): "human",
        ("outlook", "redirect"): "human",
        ("reader", "pixel"): "human",
        ("safelinks", "redirect"): "security-scanner",
        ("trapped", "redirect"): "security-scanner",
        ("gateway", "redirect"): "security-scanner",
    }
