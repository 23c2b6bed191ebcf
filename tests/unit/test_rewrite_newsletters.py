"""Real newsletters through the rewrite (tests/newsletters, sources in its README): every
trackable link wrapped, one pixel, and nothing else changed, byte for byte.

The comparison (:func:`rewrite_checks.rewritten_parts`) aligns the original and the rewritten
document itself: outside the rewritten ``href`` values and the inserted pixel, both must be equal.
"""

from __future__ import annotations

import html
import re
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from rewrite_checks import BASE, claims_of, rewritten_parts
from webbugger.destinations import normalise_destination
from webbugger.minting import tracking_url
from webbugger.modes import Mode
from webbugger.refs import Ref
from webbugger.rewrite import SkipReason, plan_message, render, resolve_links

if TYPE_CHECKING:
    from webbugger.tokens import KeyRing

NEWSLETTERS = Path(__file__).resolve().parents[1] / "newsletters"
# Per document: links that must be wrapped, distinct destinations, links left alone and why.
EXPECTED = {
    # MJML's output: 17 links (buttons, images, text), all to one destination.
    "mjml-racoon.html": (17, 1, {}),
    # The footer's "Unsubscribe" link stays as it is; the button and "Powered by" are wrapped.
    "leemunroe-email-inlined.html": (2, 1, {SkipReason.UNSUBSCRIBE: 1}),
    # Foundation's templates link only to "#" placeholders and a mailto: address.
    "foundation-sidebar-hero.html": (0, 0, {SkipReason.ANCHOR: 14, SkipReason.MAILTO: 1}),
}
_HTTP_LINKS = re.compile(r"<a\b[^>]*?\bhref=\"(https?://[^\"]*)\"", re.IGNORECASE)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_real_newsletter_keeps_every_byte_but_its_links_and_gains_one_pixel(
    name: str, ring: KeyRing
) -> None:
    source = (NEWSLETTERS / name).read_text(encoding="utf-8")
    wrapped, distinct, skipped = EXPECTED[name]
    # The expectations agree with a plain count of the document's absolute links.
    assert len(_HTTP_LINKS.findall(source)) == wrapped + skipped.get(SkipReason.UNSUBSCRIBE, 0)
    stored: dict[str, str] = {}
    plan = plan_message(source)
    links = resolve_links(plan, lambda url: stored.setdefault(url, f"n{len(stored)}"))
    assert len(stored) == distinct
    for who in ("ada@example.com", "bob@example.com"):
        recipient, campaign = Ref("recipient", who), Ref("campaign", "launch")
        result = render(
            plan,
            links,
            lambda claims: tracking_url(BASE, claims, ring),
            recipient=recipient,
            campaign=campaign,
        )
        parts = rewritten_parts(source, result.html)
        assert len(parts.link_tokens) == wrapped
        assert len(parts.pixel_tokens) == 1
        for value, claims in zip(parts.original_values, claims_of(parts.link_tokens, ring), strict=True):
            destination = normalise_destination(html.unescape(value.strip("\"'")))
            assert claims.target == Ref("link", stored[destination])
            assert (claims.mode, claims.entity, claims.source) == (Mode.REDIRECT, recipient, campaign)
        [pixel] = claims_of(parts.pixel_tokens, ring)
        assert (pixel.mode, pixel.entity, pixel.source) == (Mode.PIXEL, recipient, campaign)
    reasons: dict[SkipReason, int] = {}
    for skip in plan.skipped:
        reasons[skip.reason] = reasons.get(skip.reason, 0) + 1
    assert reasons == skipped
