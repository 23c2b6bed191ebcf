"""Routing rules and A/B splits (webbugger.routing, webbugger.routing_fields): the hot path's
substring device rules checked against ua-parser, language and query matching, the checks on
stored rules, and the split's shares and stability (pure functions: no database)."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from webbugger.classify import parse_device
from webbugger.destinations import normalise_destination
from webbugger.errors import InvalidRoutingError, UnsafeDestinationError
from webbugger.routing import Routing, Visitor, device_family, operating_system, preferred_language
from webbugger.routing_fields import check_rules, check_split, parse_rules, parse_split

CORPUS = json.loads((Path(__file__).parent / "corpus" / "requests.json").read_text())
# ua-parser's OS families (what the stream function stores) → our OS names.
UA_PARSER_OS = {
    "iOS": "ios",
    "Android": "android",
    "Windows": "windows",
    "Mac OS X": "macos",
    "Linux": "linux",
    "Ubuntu": "linux",
    "Chrome OS": "chromeos",
}
# Beyond the corpus (each user agent's source in its fixture): ChromeOS's and Ubuntu's Firefox,
# in the reduced form of https://www.chromium.org/updates/ua-reduction/, and an iPod touch.
MORE_USER_AGENTS = [
    "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 "
    "Safari/537.36",
    "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0",
    "Mozilla/5.0 (iPod touch; CPU iPhone OS 15_8 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/15.6.6 Mobile/15E148 Safari/604.1",
]
IPHONE = next(f["user_agent"] for f in CORPUS["fixtures"] if "iPhone OS 18_1" in (f["user_agent"] or ""))
ANDROID = next(f["user_agent"] for f in CORPUS["fixtures"] if "SM-S918B" in (f["user_agent"] or ""))
DESKTOP = next(f["user_agent"] for f in CORPUS["fixtures"] if "Firefox/133.0" in (f["user_agent"] or ""))
NOW = datetime(2026, 12, 1, tzinfo=UTC)


def visitor(
    user_agent: str | None = DESKTOP,
    country: str | None = None,
    language: str | None = None,
    query: dict[str, str] | None = None,
    identity: str = "203.0.113.0",
) -> Visitor:
    return Visitor(user_agent, country, language, query or {}, lambda: identity)


def test_the_substring_os_rules_agree_with_ua_parser_on_every_corpus_user_agent() -> None:
    agents = {f["user_agent"] for f in CORPUS["fixtures"] if f["user_agent"]} | set(MORE_USER_AGENTS)
    seen = Counter()
    for agent in sorted(agents):
        expected = UA_PARSER_OS.get(parse_device(agent).os or "")
        assert operating_system(agent) == expected, agent
        seen[expected] += 1
    # Every system is in the sample, and so are agents that name none (crawlers, HTTP clients).
    assert set(seen) == {"ios", "android", "windows", "macos", "linux", "chromeos", None}
    assert [device_family(operating_system(ua)) for ua in (IPHONE, ANDROID, DESKTOP, "curl/8.5.0")] == [
        "ios",
        "android",
        "desktop",
        None,
    ]


def test_outlook_is_windows_not_chromeos() -> None:
    """ "Microsoft" holds "cros": ChromeOS is told by "; CrOS ", and Windows is tested first."""
    assert operating_system("Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17928; Pro)") == (
        "windows"
    )


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("de-CH,de;q=0.9,en;q=0.8", "de-ch"),
        ("en;q=0.5, fr;q=0.9", "fr"),
        ("*;q=1, it", "it"),
        ("es;q=0, pt", "pt"),
        ("nl;q=abc, sv;q=0.3", "sv"),
        ("", None),
        (None, None),
    ],
)
def test_the_preferred_language_is_the_highest_quality_tag(header: str | None, expected: str | None) -> None:
    assert preferred_language(header) == expected


def test_each_condition_and_the_first_matching_rule_wins() -> None:
    rules = parse_rules(
        [
            {
                "name": "app",
                "url": "https://example.com/app",
                "device": ["ios", "android"],
                "query": {"c": "qr"},
            },
            {"name": "ch", "url": "https://example.com/ch", "country": ["CH", "li"], "language": "de"},
            {"name": "de", "url": "https://example.com/de", "language": ["de"]},
            {"name": "mac", "url": "https://example.com/mac", "os": "macos"},
        ],
        normalise_destination,
    )
    routing = Routing(rules)

    def rule_of(**kwargs: object) -> str | None:
        decision = routing.decide("L", visitor(**kwargs), NOW)  # type: ignore[arg-type]
        return None if decision is None else decision.rule

    assert rule_of(user_agent=IPHONE, query={"c": "qr"}) == "app"
    assert rule_of(user_agent=IPHONE, query={"c": "mail"}) is None
    assert rule_of(user_agent=DESKTOP, query={"c": "qr"}) is None
    assert rule_of(country="LI", language="de-LI,en") == "ch"
    assert rule_of(country="CH", language="fr-CH, de;q=0.9") is None  # French is preferred
    assert rule_of(country=None, language="de-AT") == "de"  # no trusted country: the next rule
    assert rule_of(language="deu") is None  # "de" is a language range, not a prefix
    assert rule_of(user_agent="Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7)") == "mac"


def test_stored_rules_are_checked_normalised_and_named() -> None:
    stored = check_rules(
        [
            {"url": "HTTPS://example.com/ä", "device": "IOS"},
            {"name": "r1", "url": "https://example.com/b", "country": ["de"]},
            {"url": "https://bücher.example/", "language": ["DE-ch"]},
        ],
        normalise_destination,
    )
    assert stored == [
        {"name": "r2", "url": "https://example.com/%C3%A4", "device": ["ios"]},
        {"name": "r1", "url": "https://example.com/b", "country": ["DE"]},
        {"name": "r3", "url": "https://xn--bcher-kva.example/", "language": ["de-ch"]},
    ]


@pytest.mark.parametrize(
    ("rules", "message"),
    [
        ([{"url": "https://example.com/"}], "needs a condition"),
        ([{"url": "https://example.com/", "device": ["phone"]}], "not a valid value"),
        ([{"url": "https://example.com/", "country": ["DEU"]}], "not a valid value"),
        ([{"url": "https://example.com/", "query": {"a": 1}}], "must be text"),
        ([{"url": "https://example.com/", "os": "ios", "weight": 2}], "unknown field(s) weight"),
        ([{"name": "x", "url": "https://a.example/", "os": "ios"}] * 2, "unique"),
        ([{"name": "no spaces", "url": "https://a.example/", "os": "ios"}], "a name is"),
        ([{"url": "https://a.example/", "os": "ios"}] * 21, "at most 20"),
        ({"url": "https://a.example/"}, "must be a list"),
    ],
)
def test_a_rule_that_makes_no_sense_is_refused_saying_why(rules: object, message: str) -> None:
    with pytest.raises(InvalidRoutingError, match=message.replace("(", r"\(").replace(")", r"\)")):
        check_rules(rules, normalise_destination)


def test_a_rule_or_variant_destination_gets_the_links_destination_checks() -> None:
    for bad in ("javascript:alert(1)", "https://user@evil.example/", "//evil.example/"):
        with pytest.raises(UnsafeDestinationError):
            check_rules([{"url": bad, "os": "ios"}], normalise_destination)
        with pytest.raises(UnsafeDestinationError):
            check_split(
                {"variants": [{"name": "a", "url": bad}, {"name": "b", "url": bad}]}, normalise_destination
            )


def split_of(*weights: int, **fields: object) -> dict[str, object]:
    variants = [
        {"name": name, "url": f"https://example.com/{name}", "weight": weight}
        for name, weight in zip("abcdefghijkl", weights, strict=False)
    ]
    return {"variants": variants, **fields}


def test_a_visitor_keeps_their_variant_and_links_split_independently() -> None:
    split = parse_split(split_of(50, 30, 20), normalise_destination)
    assert split is not None
    identities = [f"198.51.{n // 256}.0\x00{DESKTOP} #{n}" for n in range(1000)]
    first = [split.decide("spring", visitor(identity=who), NOW) for who in identities]
    again = [split.decide("spring", visitor(identity=who), NOW) for who in identities]
    assert first == again
    assert {decision.variant for decision in first if decision is not None} == {"a", "b", "c"}
    # Another link splits the same visitors independently of this one (about 62% differ).
    differ = sum(split.pick("spring", who) != split.pick("autumn", who) for who in identities)
    assert 550 <= differ <= 690, differ


def test_the_split_is_fair_over_many_links() -> None:
    """A split is a hash of the link id and the visitor: whether 1,000 given visitors land within 3
    points of the weights depends on the link, as with a fair die (binomial spread: about 90% of
    links for weights 50/30/20). Over 200 links the shares average out to the weights, and the
    share of links within 3 points is what a fair die gives."""
    split = parse_split(split_of(50, 30, 20), normalise_destination)
    assert split is not None
    identities = [f"198.51.{n // 256}.0\x00{DESKTOP} #{n}" for n in range(1000)]
    within, totals = 0, Counter[str]()
    for link in range(200):
        shares = Counter(split.pick(f"link-{link}", who).name for who in identities)
        totals += shares
        within += all(
            abs(shares[name] / 10 - weight) <= 3 for name, weight in zip("abc", (50, 30, 20), strict=True)
        )
    assert [round(totals[name] / 2000, 1) for name in "abc"] == pytest.approx([50, 30, 20], abs=0.5)
    assert 0.85 <= within / 200 <= 0.97, within


def test_after_its_end_a_split_serves_its_winner_and_names_no_variant() -> None:
    ends = NOW - timedelta(seconds=1)
    ended = parse_split(split_of(1, 1, ends_at=ends.isoformat(), winner="b"), normalise_destination)
    unfinished = parse_split(split_of(1, 1, ends_at=ends.isoformat()), normalise_destination)
    running = parse_split(
        split_of(1, 1, ends_at=(NOW + timedelta(days=1)).isoformat()), normalise_destination
    )
    assert ended is not None and unfinished is not None and running is not None
    decisions = {ended.decide("L", visitor(identity=str(n)), NOW) for n in range(50)}
    assert {(d.url, d.variant) for d in decisions if d} == {("https://example.com/b", None)}
    assert unfinished.decide("L", visitor(), NOW) is None  # no winner: the link's own url
    assert {running.decide("L", visitor(identity=str(n)), NOW).variant for n in range(50)} == {"a", "b"}  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("split", "message"),
    [
        (split_of(1), "2 to 10 variants"),
        (split_of(*[1] * 11), "2 to 10 variants"),
        (split_of(0, 1), "whole number from 1"),
        (split_of(True, 1), "whole number from 1"),
        (split_of(1, 1, winner="z"), "not one of the variants"),
        (split_of(1, 1, ends_at="soon"), "ISO 8601"),
        ({"variants": [{"name": "a", "url": "https://a.example/"}] * 2}, "unique"),
        (split_of(1, 1, start="now"), "unknown field"),
    ],
)
def test_a_split_that_makes_no_sense_is_refused_saying_why(split: object, message: str) -> None:
    with pytest.raises(InvalidRoutingError, match=message):
        check_split(split, normalise_destination)


def test_a_split_reads_back_as_stored() -> None:
    stored = check_split(split_of(3, 1, ends_at="2027-01-01T00:00:00", winner="a"), normalise_destination)
    assert stored == {
        "variants": [
            {"name": "a", "url": "https://example.com/a", "weight": 3},
            {"name": "b", "url": "https://example.com/b", "weight": 1},
        ],
        "ends_at": "2027-01-01T00:00:00+00:00",
        "winner": "a",
    }
    assert check_split(stored, normalise_destination) == stored


def test_a_cold_start_imports_no_routing_until_a_routed_link_is_hit() -> None:
    """The track function loads the plugins at start; routing is parsed (and imported) only when a
    routed link is loaded, so links without rules cost no import (bench/cold_start.py)."""
    code = (
        "import sys, webbugger.tracking, webbugger.runtime; webbugger.runtime.default_registry(); "
        "print('webbugger.routing' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False"]
