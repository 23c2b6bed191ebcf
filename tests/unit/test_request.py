"""What the core keeps of a visitor's request: anonymised address, bounded headers, country."""

from __future__ import annotations

import pytest
from webbugger.request import (
    IncomingRequest,
    anonymise_ip,
    client_ip,
    country,
    truncate_utf8,
)


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("203.0.113.77", "203.0.113.0"),
        ("203.0.113.0", "203.0.113.0"),
        ("255.255.255.255", "255.255.255.0"),
        (" 198.51.100.9 ", "198.51.100.0"),
        ("2001:db8:abcd:1234:5678:9abc:def0:1234", "2001:db8:abcd::"),
        ("2001:DB8:ABCD:ffff::1", "2001:db8:abcd::"),
        ("::1", "::"),
        ("fe80::1%eth0", "fe80::"),
        ("::ffff:203.0.113.77", "203.0.113.0"),  # IPv4-mapped: anonymised as the IPv4 it is
        ("::ffff:cb00:714d", "203.0.113.0"),
    ],
)
def test_anonymise_ip(address: str, expected: str) -> None:
    assert anonymise_ip(address) == expected


@pytest.mark.parametrize(
    "address",
    [
        None,
        "",
        "garbage",
        "203.0.113",
        "203.0.113.256",
        "203.0.113.77/32",
        "2001:db8::g",
        "unknown",
        "::ffff:",
    ],
)
def test_anonymise_ip_of_garbage_is_none(address: str | None) -> None:
    assert anonymise_ip(address) is None


def test_client_ip_anonymises_by_default_setting() -> None:
    assert client_ip("203.0.113.77", "anonymised") == "203.0.113.0"
    assert client_ip("2001:db8:abcd:1234::1", "anonymised") == "2001:db8:abcd::"


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("203.0.113.77", "203.0.113.77"),
        (" 203.0.113.77\n", "203.0.113.77"),
        ("2001:DB8:abcd:1234::1", "2001:db8:abcd:1234::1"),
        ("garbage", None),
        ("", None),
        (None, None),
    ],
)
def test_client_ip_without_anonymising_keeps_the_full_address(
    address: str | None, expected: str | None
) -> None:
    assert client_ip(address, "full") == expected


@pytest.mark.parametrize(
    "text",
    [
        "plain ascii user agent",
        "é" * 300,
        "€" * 300,
        "😀" * 300,
        "a" + "😀" * 200,
        "ab" + "€" * 200,
        "Mozilla/5.0 (X11; Linux) ünïcödé 中文 " * 30,
    ],
)
@pytest.mark.parametrize("bound", [0, 1, 2, 3, 4, 5, 63, 64, 511, 512])
def test_truncate_utf8_respects_the_byte_bound_and_never_splits_a_character(text: str, bound: int) -> None:
    cut = truncate_utf8(text, bound)
    assert cut is not None
    raw = cut.encode("utf-8")  # would raise on a split character
    assert len(raw) <= bound
    assert text.startswith(cut)
    # Nothing more is dropped than the one character that did not fit.
    if len(text.encode()) > bound:
        assert len(text[: len(cut) + 1].encode()) > bound
    else:
        assert cut == text


def test_truncate_utf8_of_none_is_none() -> None:
    assert truncate_utf8(None, 10) is None


def test_truncate_utf8_result_is_always_encodable() -> None:
    cut = truncate_utf8("agent \ud800 x", 512)
    assert cut is not None
    cut.encode("utf-8")


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("US", "US"),
        ("gb", "GB"),
        ("De", "DE"),
        ("", None),
        ("U", None),
        ("USA", None),
        ("U1", None),
        ("--", None),
        ("ÜS", None),
        ("ＵＳ", None),  # full-width letters are letters, but not ASCII
        (" U", None),
    ],
)
def test_country_accepts_only_two_ascii_letters(header: str, expected: str | None) -> None:
    incoming = IncomingRequest(method="GET", headers={"cloudfront-viewer-country": header})
    assert country(incoming) == expected


def test_country_absent() -> None:
    assert country(IncomingRequest(method="GET", headers={})) is None


def test_header_treats_empty_as_absent() -> None:
    incoming = IncomingRequest(method="GET", headers={"referer": "", "user-agent": "UA"})
    assert incoming.header("referer") is None
    assert incoming.header("user-agent") == "UA"
    assert incoming.header("accept-language") is None
    assert dict(incoming.query) == {}
