"""Rewriting an email (webbugger.rewrite): which links are wrapped, how, where the pixel goes.

Every test checks the output against the input with :mod:`rewrite_checks`, which aligns the two
documents without trusting the rewriter, and verifies the minted tokens with the key ring.
"""

from __future__ import annotations

import html
import re
from typing import TYPE_CHECKING

import pytest
from justhtml import JustHTML
from rewrite_checks import BASE, claims_of, rewritten_parts, text_tokens
from webbugger.minting import tracking_url
from webbugger.modes import Mode
from webbugger.refs import Ref
from webbugger.rewrite import (
    RewrittenMessage,
    SkipReason,
    plan_message,
    render,
    resolve_links,
    rewrite_message,
    unsubscribe_targets,
)

if TYPE_CHECKING:
    from webbugger.tokens import KeyRing, TokenClaims

RECIPIENT = Ref("recipient", "ada@example.com")
CAMPAIGN = Ref("campaign", "spring")


class Links:
    """A link store in memory: one id per destination, and every call remembered."""

    def __init__(self) -> None:
        self.ids: dict[str, str] = {}
        self.calls: list[str] = []

    def __call__(self, destination: str) -> str:
        self.calls.append(destination)
        return self.ids.setdefault(destination, f"l{len(self.ids)}")


@pytest.fixture
def links() -> Links:
    return Links()


def rewrite(html_text: str, ring: KeyRing, links: Links, **options: object) -> RewrittenMessage:
    text = options.pop("text", None)
    return rewrite_message(
        html_text,
        text,  # type: ignore[arg-type]
        recipient=RECIPIENT,
        campaign=CAMPAIGN,
        link_id_for=links,
        mint=lambda claims: tracking_url(BASE, claims, ring),
        **options,  # type: ignore[arg-type]
    )


def page(body: str) -> str:
    return f"<!doctype html><html><head><title>t</title></head><body>{body}</body></html>"


def link_claims(original: str, result: RewrittenMessage, ring: KeyRing) -> list[TokenClaims]:
    return claims_of(rewritten_parts(original, result.html).link_tokens, ring)


def test_an_http_link_becomes_a_signed_redirect_to_its_stored_link(ring: KeyRing, links: Links) -> None:
    source = page('<p><a href="https://shop.example/spring" class="button">Shop</a></p>')
    result = rewrite(source, ring, links)
    parts = rewritten_parts(source, result.html)
    assert parts.original_values == ['"https://shop.example/spring"']
    [claims] = claims_of(parts.link_tokens, ring)
    assert claims.mode is Mode.REDIRECT
    assert (claims.target, claims.entity, claims.source) == (Ref("link", "l0"), RECIPIENT, CAMPAIGN)
    assert links.calls == ["https://shop.example/spring"]
    assert result.links == {"https://shop.example/spring": "l0"}
    assert (result.wrapped, result.pixel, result.honeypot) == (1, True, False)


def test_area_links_are_wrapped_and_link_elements_are_not(ring: KeyRing, links: Links) -> None:
    source = page(
        '<map name="m"><area shape="rect" coords="0,0,9,9" href="https://map.example/"></map>'
        '<link rel="stylesheet" href="https://css.example/a.css"><img src="https://img.example/a.png">'
    )
    result = rewrite(source, ring, links)
    assert rewritten_parts(source, result.html).original_values == ['"https://map.example/"']
    assert list(result.links) == ["https://map.example/"]


@pytest.mark.parametrize(
    ("href", "reason"),
    [
        ("mailto:ada@example.com", SkipReason.MAILTO),
        ("MAILTO:ada@example.com", SkipReason.MAILTO),
        ("tel:+441234567890", SkipReason.TEL),
        ("#top", SkipReason.ANCHOR),
        ("", SkipReason.ANCHOR),
        ("/relative/path", SkipReason.RELATIVE),
        ("//cdn.example/protocol-relative", SkipReason.RELATIVE),
        ("page.html?x=1", SkipReason.RELATIVE),
        ("javascript:alert(1)", SkipReason.OTHER_SCHEME),
        ("ftp://files.example/a", SkipReason.OTHER_SCHEME),
        ("https://", SkipReason.INVALID),
        ("https://user@host.example/", SkipReason.INVALID),
    ],
)
def test_links_that_are_not_absolute_http_urls_are_left_alone(
    href: str, reason: SkipReason, ring: KeyRing, links: Links
) -> None:
    source = page(f'<a href="{html.escape(href)}">x</a>')
    result = rewrite(source, ring, links)
    assert rewritten_parts(source, result.html).original_values == []
    assert [(skip.href, skip.reason) for skip in result.skipped] == [(href, reason)]
    assert links.calls == []


def test_a_no_track_link_is_left_alone(ring: KeyRing, links: Links) -> None:
    source = page(
        '<a data-webbugger="no-track" href="https://a.example/">a</a><a href="https://b.example/">b</a>'
    )
    result = rewrite(source, ring, links)
    assert rewritten_parts(source, result.html).original_values == ['"https://b.example/"']
    assert [(skip.href, skip.reason) for skip in result.skipped] == [
        ("https://a.example/", SkipReason.NO_TRACK)
    ]


@pytest.mark.parametrize(
    "anchor",
    [
        '<a href="https://news.example/u?id=1">Unsubscribe</a>',
        '<a href="https://news.example/u?id=1"><span>Click to <b>UNSUBSCRIBE</b></span></a>',
        '<a href="https://news.example/u?id=1">Opt out</a>',
        '<a href="https://news.example/u?id=1" title="Unsubscribe from this list">here</a>',
        '<a href="https://news.example/u?id=1" class="footer-unsubscribe">here</a>',
        '<a href="https://news.example/unsubscribe?id=1">here</a>',
        '<a href="https://news.example/manage?action=opt-out">here</a>',
    ],
)
def test_unsubscribe_links_are_left_alone_unless_asked(anchor: str, ring: KeyRing, links: Links) -> None:
    source = page(anchor)
    result = rewrite(source, ring, links)
    assert rewritten_parts(source, result.html).original_values == []
    assert [skip.reason for skip in result.skipped] == [SkipReason.UNSUBSCRIBE]
    tracked = rewrite(source, ring, links, track_unsubscribe=True)
    assert len(rewritten_parts(source, tracked.html).original_values) == 1


def test_a_list_unsubscribe_target_is_left_alone_whatever_its_text(ring: KeyRing, links: Links) -> None:
    header = "<mailto:leave@news.example?subject=leave>, <https://news.example/l/AbC?x=1&y=2>"
    targets = unsubscribe_targets(header)
    assert targets == ["mailto:leave@news.example?subject=leave", "https://news.example/l/AbC?x=1&y=2"]
    source = page(
        '<a href="https://news.example/l/AbC?x=1&amp;y=2">Your settings</a><a href="https://a.example/">a</a>'
    )
    result = rewrite(source, ring, links, unsubscribe_urls=targets)
    assert rewritten_parts(source, result.html).original_values == ['"https://a.example/"']
    assert unsubscribe_targets("https://only.example/u") == ["https://only.example/u"]


def test_an_entity_encoded_href_is_stored_decoded_as_a_browser_reads_it(ring: KeyRing, links: Links) -> None:
    # "&amp;" is "&"; "&region" (a legacy entity name followed by "=") stays as written in an
    # attribute, as browsers do: Python's html.parser would turn it into "®ion".
    source = page('<a href="https://shop.example/?a=1&amp;b=2&region=eu&#38;c=%C3%A9">x</a>')
    result = rewrite(source, ring, links)
    assert links.calls == ["https://shop.example/?a=1&b=2&region=eu&c=%C3%A9"]
    assert len(rewritten_parts(source, result.html).original_values) == 1


@pytest.mark.parametrize(
    ("written", "quote"),
    [
        ('href="https://a.example/"', '"'),
        ("href='https://a.example/'", "'"),
        ("href=https://a.example/", '"'),
    ],
)
def test_the_written_value_is_escaped_for_its_quotes(written: str, quote: str, links: Links) -> None:
    # A URL the browser must read back exactly, whatever characters the minted one holds.
    odd = "https://t.example/r/a&b\"c'd<e>"
    source = page(f"<a {written} id=x>x</a>")
    plan = plan_message(source)
    result = render(
        plan, resolve_links(plan, links), lambda claims: odd, recipient=RECIPIENT, campaign=CAMPAIGN
    )
    assert f"<a href={quote}{html.escape(odd)}{quote} id=x>" in result.html
    [anchor] = JustHTML(result.html, sanitize=False).root.query("a")
    assert anchor.attrs["href"] == odd


def test_unquoted_values_ending_the_tag_and_odd_attribute_syntax(ring: KeyRing, links: Links) -> None:
    source = page(
        "<A HREF = https://a.example/x>a</A>"
        '<a href="https://b.example/" href="https://ignored.example/">b</a>'  # the first one counts
        '<a\nclass=c\r\nhref="https://c.example/"/>c</a>'
        "<a title='x>y' href='https://d.example/'>d</a>"
    )
    result = rewrite(source, ring, links)
    assert rewritten_parts(source, result.html).original_values == [
        "https://a.example/x",
        '"https://b.example/"',
        '"https://c.example/"',
        "'https://d.example/'",
    ]
    assert "https://ignored.example/" in result.html


def test_markup_a_mail_client_does_not_show_as_a_link_is_left_alone(ring: KeyRing, links: Links) -> None:
    source = page(
        '<!-- <a href="https://comment.example/">c</a> -->'
        '<textarea><a href="https://textarea.example/"></textarea>'
        '<template><a href="https://template.example/">t</a></template>'
        '<svg><a href="https://svg.example/"><text>s</text></a></svg>'
        '<style>a[href="https://style.example/"]{}</style>'
        '<!--[if mso]><a href="https://mso.example/">o</a><![endif]-->'
        '<noscript><a href="https://noscript.example/">n</a></noscript>'  # shown: mail runs no scripts
    )
    result = rewrite(source, ring, links)
    assert rewritten_parts(source, result.html).original_values == ['"https://noscript.example/"']


def test_one_start_tag_is_rewritten_once_even_when_the_parser_clones_it(ring: KeyRing, links: Links) -> None:
    source = page('<b><a href="https://a.example/">one<p>two</a></b><a href="https://a.example/">again</a>')
    result = rewrite(source, ring, links)
    assert len(rewritten_parts(source, result.html).original_values) == 2
    assert links.calls == ["https://a.example/"]  # one stored link per distinct destination


def test_crlf_and_a_byte_order_mark_keep_offsets_right(ring: KeyRing, links: Links) -> None:
    source = '\ufeff<html>\r\n<body>\r\n\r\n<a\r\nhref="https://a.example/">a</a>\r\n</body>\r\n</html>\r\n'
    result = rewrite(source, ring, links)
    parts = rewritten_parts(source, result.html)
    assert parts.original_values == ['"https://a.example/"']
    assert re.search(r'\r\n<img [^>]*border:0">\r?</body>', result.html)


def test_the_pixel_goes_where_the_placeholder_comment_is(ring: KeyRing, links: Links) -> None:
    source = page("<p>before</p><!--  WEBBUGGER:pixel --><p>after</p><!-- webbugger:pixel -->")
    result = rewrite(source, ring, links)
    parts = rewritten_parts(source, result.html)
    assert parts.placeholder_replaced
    assert result.html.index("<img") == source.index("<!--  WEBBUGGER")
    assert "<!-- webbugger:pixel -->" in result.html  # only the first one is used
    [claims] = claims_of(parts.pixel_tokens, ring)
    assert (claims.mode, claims.target, claims.entity, claims.source) == (
        Mode.PIXEL,
        None,
        RECIPIENT,
        CAMPAIGN,
    )


def test_a_placeholder_outside_the_body_is_not_used(ring: KeyRing, links: Links) -> None:
    source = "<html><head><!-- webbugger:pixel --><title>t</title></head><body><p>x</p></body></html>"
    result = rewrite(source, ring, links)
    assert not rewritten_parts(source, result.html).placeholder_replaced
    assert result.html.index("<img") == source.index("</body>")


def test_without_a_placeholder_the_pixel_goes_before_the_real_end_of_the_body(
    ring: KeyRing, links: Links
) -> None:
    source = (
        "<html><body><p>x</p><script>'</body>'</script><textarea></body></textarea></body>"
        "<!-- </body> --></html>"
    )
    result = rewrite(source, ring, links)
    assert len(rewritten_parts(source, result.html).pixel_tokens) == 1
    assert result.html.index("<img") == source.index("</body><!--")


def test_without_a_body_end_tag_the_pixel_goes_at_the_end(ring: KeyRing, links: Links) -> None:
    source = "<p>A fragment, no body tag"
    result = rewrite(source, ring, links)
    assert result.html.startswith(source)
    assert len(rewritten_parts(source, result.html).pixel_tokens) == 1


def test_no_pixel_when_no_spot_would_show_it(ring: KeyRing, links: Links) -> None:
    source = "<p>x</p><!-- a comment that never ends"
    result = rewrite(source, ring, links)
    assert (result.html, result.pixel) == (source, False)


def test_the_honeypot_is_an_invisible_link_minted_as_a_honeypot(ring: KeyRing, links: Links) -> None:
    source = page('<a href="https://a.example/">a</a><a href="https://b.example/">b</a>')
    result = rewrite(source, ring, links, honeypot=True)
    parts = rewritten_parts(source, result.html)
    [honeypot] = claims_of(parts.honeypot_tokens, ring)
    assert honeypot.honeypot
    assert (honeypot.mode, honeypot.target, honeypot.entity, honeypot.source) == (
        Mode.REDIRECT,
        Ref("link", "l0"),
        RECIPIENT,
        CAMPAIGN,
    )
    assert not any(claims.honeypot for claims in claims_of(parts.link_tokens, ring))
    [anchor] = [
        a for a in JustHTML(result.html, sanitize=False).root.query("a") if a.attrs.get("aria-hidden")
    ]
    assert anchor.attrs["aria-hidden"] == "true"
    assert anchor.attrs["tabindex"] == "-1"
    assert "display:none" in (anchor.attrs["style"] or "")
    assert result.honeypot


def test_no_honeypot_without_a_link_to_send_it_to(ring: KeyRing, links: Links) -> None:
    source = page("<p>no links</p>")
    result = rewrite(source, ring, links, honeypot=True)
    assert not result.honeypot
    assert rewritten_parts(source, result.html).honeypot_tokens == []


def test_the_text_part_has_its_urls_wrapped_and_its_unsubscribe_line_kept(
    ring: KeyRing, links: Links
) -> None:
    source = page('<a href="https://shop.example/spring">Shop</a>')
    text = (
        "Spring is here: https://shop.example/spring. Read more (https://blog.example/a_(b)) or\n"
        "<https://blog.example/c?x=1&y=2>, www.bare.example and mailto:ada@example.com stay.\n"
        "-- \nUnsubscribe: https://news.example/u/1\nPreferences https://news.example/prefs\n"
        "List target: https://news.example/one-click\n"
    )
    result = rewrite(source, ring, links, text=text, unsubscribe_urls=["https://news.example/one-click"])
    assert result.text is not None
    originals, tokens = text_tokens(text, result.text)
    assert originals == [
        "https://shop.example/spring",
        "https://blog.example/a_(b)",
        "https://blog.example/c?x=1&y=2",
        "https://news.example/prefs",
    ]
    targets = [claims.target for claims in claims_of(tokens, ring)]
    assert targets[0] == Ref("link", "l0")  # the same stored link as the HTML's
    assert result.text_wrapped == 4
    assert links.calls.count("https://shop.example/spring") == 1


def test_a_batch_parses_once_and_reuses_each_stored_link(ring: KeyRing, links: Links) -> None:
    source = page(
        '<a href="https://a.example/">a</a><a href="https://b.example/">b</a><a href="https://a.example/">'
    )
    plan = plan_message(source)
    stored = resolve_links(plan, links)
    recipients = [Ref("recipient", f"r{n}@example.com") for n in range(3)]
    results = [
        render(
            plan, stored, lambda claims: tracking_url(BASE, claims, ring), recipient=who, campaign=CAMPAIGN
        )
        for who in recipients
    ]
    assert links.calls == ["https://a.example/", "https://b.example/"]
    for who, result in zip(recipients, results, strict=True):
        claims = link_claims(source, result, ring)
        assert [c.target for c in claims] == [Ref("link", "l0"), Ref("link", "l1"), Ref("link", "l0")]
        assert {c.entity for c in claims} == {who}
