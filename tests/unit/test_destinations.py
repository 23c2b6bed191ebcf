"""Where a redirect may send a visitor: only absolute http(s) URLs a browser cannot misread."""

from __future__ import annotations

import pytest
from webbugger.destinations import MAX_URL_LENGTH, normalise_destination, safe_location
from webbugger.errors import NotFoundError, UnsafeDestinationError


@pytest.mark.parametrize(
    "url",
    [
        "https://example.com",
        "https://example.com/",
        "http://example.com/path?q=1&r=2#frag",
        "HTTPS://Example.com/Path",
        "https://sub.example.co.uk:8443/a/b;c?d=e",
        "https://xn--bcher-kva.example/stra%C3%9Fe",
        "https://192.0.2.1/",
        "https://example.com/" + "a" * (MAX_URL_LENGTH - len("https://example.com/")),
    ],
)
def test_safe_location_accepts_absolute_http_urls(url: str) -> None:
    assert safe_location(url) == url


UNSAFE = [
    "javascript:alert(1)",
    "JavaScript:alert(1)",
    "data:text/html,<script>alert(1)</script>",
    "vbscript:msgbox(1)",
    "ftp://example.com/",
    "file:///etc/passwd",
    "//evil.example",
    "//evil.example/path",
    "/relative/path",
    "\\/\\/evil.example",
    "/\\evil.example",
    "https:\\\\evil.example",
    "https:evil.example",
    "https:/evil.example",
    "https:///evil.example",
    "https://",
    "https://good@evil.example",
    "https://good.example:pw@evil.example/",
    "https://@evil.example",
    "https://evil.example\r\nSet-Cookie: x=1",
    "https://evil.example/\n",
    "https://evil.example/\r",
    "https://evil.example/\ta",
    "https://evil.example/ a",
    " https://evil.example/",
    "https://evil.example/\x00",
    "https://evil.example/\x7f",
    "https://bücher.example/",
    "https://example.com/straße",
    "https://evil_host.example/",
    "https://-evil.example/",
    "https://example.com:99999/",
    "https://example.com:port/",
    "https://example.com/" + "a" * (MAX_URL_LENGTH - len("https://example.com/") + 1),
    "",
]


@pytest.mark.parametrize("url", UNSAFE)
def test_safe_location_refuses(url: str) -> None:
    with pytest.raises(UnsafeDestinationError):
        safe_location(url)


@pytest.mark.parametrize("value", [None, 42, b"https://example.com/"])
def test_safe_location_refuses_non_strings(value: object) -> None:
    with pytest.raises(UnsafeDestinationError):
        safe_location(value)


def test_unsafe_destination_is_a_not_found() -> None:
    # Handlers answer 404 to an unusable destination, never a redirect.
    with pytest.raises(NotFoundError):
        safe_location("javascript:alert(1)")


def test_safe_location_accepts_an_ipv6_literal() -> None:
    assert safe_location("https://[2001:db8::1]:8443/x") == "https://[2001:db8::1]:8443/x"


@pytest.mark.parametrize(
    ("typed", "stored"),
    [
        ("https://bücher.example/", "https://xn--bcher-kva.example/"),
        ("https://BÜCHER.example/", "https://xn--bcher-kva.example/"),
        ("https://example.com/straße?q=ü#ä", "https://example.com/stra%C3%9Fe?q=%C3%BC#%C3%A4"),
        ("https://münchen.example:8080/ü", "https://xn--mnchen-3ya.example:8080/%C3%BC"),
        ("HTTPS://Example.COM/Path", "https://example.com/Path"),
        ("Http://example.com", "http://example.com/"),
        ("  https://example.com/a  ", "https://example.com/a"),
        ("https://example.com/already%20encoded", "https://example.com/already%20encoded"),
        ("https://example.com/a?x=1&y=%C3%BC", "https://example.com/a?x=1&y=%C3%BC"),
    ],
)
def test_normalise_destination(typed: str, stored: str) -> None:
    assert normalise_destination(typed) == stored
    assert safe_location(stored) == stored
    assert normalise_destination(stored) == stored  # idempotent


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "data:text/html,hi",
        "//evil.example",
        "\\/\\/evil.example",
        "https:evil.example",
        "https://good@evil.example",
        "https://evil.example/a b",
        "https://evil.example/\r\nSet-Cookie: x=1",
        "https://evil.example/\x00",
        "https://",
        "ftp://example.com/",
        "https://example.com:99999/",
        "https://" + "a" * 64 + ".example/",
        "https://example.com/" + "a" * MAX_URL_LENGTH,
        "https://example.com/" + "ü" * (MAX_URL_LENGTH // 6 + 1),  # fits typed, too long encoded
        "",
    ],
)
def test_normalise_destination_refuses(url: str) -> None:
    with pytest.raises(UnsafeDestinationError):
        normalise_destination(url)


def test_normalise_destination_keeps_deviation_characters_as_browsers_do() -> None:
    assert normalise_destination("https://faß.de/") == "https://xn--fa-hia.de/"
