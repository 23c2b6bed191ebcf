"""Where a redirect may go: only an absolute http(s) URL, never anything a browser could misread.

Stored URLs are normalised once, when stored (:func:`normalise_destination`); every redirect's
``Location`` is checked again just before it is sent (:func:`safe_location`).
"""

from __future__ import annotations

import ipaddress
import re
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, quote, unquote_plus, urlencode, urlsplit, urlunsplit

from webbugger.errors import UnsafeDestinationError

if TYPE_CHECKING:
    from collections.abc import Mapping

MAX_URL_LENGTH = 2048
# The query parameters of Google's Urchin Tracking Module, which analytics tools read.
UTM_KEYS = ("utm_source", "utm_medium", "utm_campaign", "utm_term", "utm_content")
_ALLOWED_SCHEMES = {"http", "https"}
_UNSAFE = re.compile(r"[\x00-\x20\x7f\\]")
_HOST = re.compile(r"(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\Z")
# Characters left alone when percent-encoding a path or query (RFC 3986 reserved + unreserved + %).
_URL_SAFE = "/?#[]@!$&'()*+,;=:%-._~"


def _check_host(host: str | None) -> str:
    if not host:
        raise UnsafeDestinationError("destination has no host")
    if ":" in host:  # urlsplit's hostname drops an IPv6 literal's brackets
        try:
            ipaddress.IPv6Address(host)
        except ValueError as exc:
            raise UnsafeDestinationError(f"destination host {host!r} is not a valid IPv6 address") from exc
        return host
    if not _HOST.match(host):
        raise UnsafeDestinationError(f"destination host {host!r} is not a valid host name")
    return host


def safe_location(url: object) -> str:
    """Return ``url`` if it may be sent as a ``Location``; raise :class:`UnsafeDestinationError` if not."""
    if not isinstance(url, str) or not url:
        raise UnsafeDestinationError("destination is not a URL")
    if len(url) > MAX_URL_LENGTH or not url.isascii() or _UNSAFE.search(url):
        raise UnsafeDestinationError("destination is too long or has characters a URL may not carry")
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError for a malformed port
    except ValueError as exc:
        raise UnsafeDestinationError("destination is not a well-formed URL") from exc
    if parts.scheme.lower() not in _ALLOWED_SCHEMES or not url.lower().startswith(
        parts.scheme.lower() + "://"
    ):
        raise UnsafeDestinationError("destination must be an absolute http or https URL")
    if "@" in parts.netloc:
        raise UnsafeDestinationError("destination carries user information (user@host)")
    _check_host(parts.hostname)
    del port
    return url


def idna_host(host: str) -> str:
    """Punycode of an internationalised host, by UTS 46 non-transitional processing: what browsers
    open (Python's own 'idna' codec is IDNA 2003, which maps ß to ss: another domain)."""
    import idna  # only for non-ASCII hosts; keeps it off the hot path's imports

    try:
        return str(idna.encode(host, uts46=True, transitional=False).decode("ascii"))
    except idna.IDNAError as exc:
        raise UnsafeDestinationError("URL host is not a valid international domain name") from exc


def normalise_destination(url: str) -> str:
    """Turn a URL a person typed into the ASCII form we store and redirect to, or refuse it.

    Internationalised host names become punycode; other non-ASCII characters are percent-encoded.
    """
    text = url.strip()
    if _UNSAFE.search(text):
        raise UnsafeDestinationError("URL contains spaces, control characters or backslashes")
    try:
        text.encode()
    except UnicodeEncodeError as exc:  # a lone surrogate (from a shell's undecodable bytes)
        raise UnsafeDestinationError("URL is not valid Unicode") from exc
    try:
        parts = urlsplit(text)
        host = parts.hostname
        port = parts.port
    except ValueError as exc:
        raise UnsafeDestinationError("not a well-formed URL") from exc
    if parts.scheme.lower() not in _ALLOWED_SCHEMES:
        raise UnsafeDestinationError("URL must start with http:// or https://")
    if "@" in parts.netloc:
        raise UnsafeDestinationError("URL must not carry user information (user@host)")
    if not host:
        raise UnsafeDestinationError("URL has no host")
    if not host.isascii():
        host = idna_host(host)
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port is None else f"{host}:{port}"
    normalised = urlunsplit(
        (
            parts.scheme.lower(),
            netloc,
            quote(parts.path, safe=_URL_SAFE) or "/",
            quote(parts.query, safe=_URL_SAFE),
            quote(parts.fragment, safe=_URL_SAFE),
        )
    )
    return safe_location(normalised)


def merge_query(url: str, params: Mapping[str, str], *, override: bool = True) -> str:
    """``url`` with ``params`` added to its query string.

    With ``override`` a parameter replaces one of the same name already in the URL; without, the
    URL's own parameters win (used to forward a visitor's parameters without letting them
    overwrite the link's).
    """
    if not params:
        return url
    parts = urlsplit(url)
    present = {key for key, _ in parse_qsl(parts.query, keep_blank_values=True)}
    # The URL's own query stays exactly as stored; only what is added is encoded here.
    if override:
        kept = "&".join(
            pair
            for pair in parts.query.split("&")
            if pair and unquote_plus(pair.split("=", 1)[0]) not in params
        )
        added = urlencode(list(params.items()), quote_via=quote, errors="replace")
    else:
        kept = parts.query
        added = urlencode(
            [(key, value) for key, value in params.items() if key not in present],
            quote_via=quote,
            errors="replace",  # a lone surrogate (JSON-escaped in the event) becomes "?", not a 500
        )
    query = "&".join(part for part in (kept, added) if part)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))
