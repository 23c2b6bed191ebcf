"""What a hit looks like to the core: a plain HTTP request in, a :class:`HitRequest` out.

Handlers build :class:`IncomingRequest` from whatever their platform hands them (an API Gateway
event, a local HTTP request); the core derives everything else here.
"""

# No ``from __future__ import annotations`` here: typing.NamedTuple compiles every annotation
# given as a string (a ForwardRef), 23 compiles for the two below at the track function's cold
# start. So the names the annotations use are imported (all loaded by then anyway).
import ipaddress
from collections.abc import Mapping
from datetime import datetime
from types import MappingProxyType
from typing import NamedTuple

from webbugger.modes import Mode
from webbugger.refs import Ref

# Bounds on what we keep from the visitor's headers, in UTF-8 bytes: a pixel beacon without
# references stays within one DynamoDB write unit (1 KB) even at these maxima (bench/write_units.py),
# and no beacon can approach the 400 KB item limit. Real user agents are rarely over 300 bytes.
MAX_USER_AGENT = 384
MAX_REFERER = 256
MAX_LANGUAGE = 64
EMPTY_QUERY: Mapping[str, str] = MappingProxyType({})
# The header CloudFront adds to every request it forwards to us, carrying the deployment's origin
# secret. Only a request that has it may tell us the viewer's address and country: anyone can
# send CloudFront's header names straight to the API.
ORIGIN_SECRET_HEADER = "x-webbugger-origin-secret"  # noqa: S105 - a header name, not a secret
# Headers by which browsers and proxies announce a speculative fetch (nobody looked yet).
_PREFETCH_HEADERS = ("purpose", "sec-purpose", "x-purpose", "x-moz")


class IncomingRequest(NamedTuple):
    """An HTTP request as the platform saw it. ``headers`` keys are lower case.

    A NamedTuple rather than a frozen dataclass: as immutable, and cheaper to define at the track
    function's cold start (bench/cold_start.py)."""

    method: str
    headers: Mapping[str, str]
    source_ip: str | None = None
    query: Mapping[str, str] = EMPTY_QUERY

    def header(self, name: str) -> str | None:
        """One header's value, or None when absent or empty."""
        return self.headers.get(name) or None

    def __repr__(self) -> str:
        # Header names only, no address: the values hold the origin secret CloudFront adds and
        # the visitor's own data, which a repr in a log or a traceback would print.
        return f"IncomingRequest(method={self.method!r}, headers={sorted(self.headers)!r}, ...)"


class HitRequest(NamedTuple):
    """The request as entity hooks see it: stable, documented, and already anonymised (immutable:
    a NamedTuple, cheaper than a frozen dataclass to define at a cold start)."""

    beacon_id: str
    time: datetime
    mode: Mode
    method: str
    ip: str | None
    user_agent: str | None
    referer: str | None
    language: str | None
    country: str | None
    query: Mapping[str, str]
    target: Ref | None
    entity: Ref | None
    source: Ref | None
    # When the URL was minted (epoch seconds), what the request said of itself ("prefetch",
    # "nofetch", "honeypot", "email"), and the opt-out signal honoured ("dnt", "gpc"; then ip
    # and user_agent are None).
    minted: int | None = None
    hints: frozenset[str] = frozenset()
    opted_out: str | None = None
    # The stored link's routing rule or A/B variant that chose the destination (webbugger.routing).
    rule: str | None = None
    variant: str | None = None


def truncate_utf8(text: str | None, max_bytes: int) -> str | None:
    """Cut ``text`` to at most ``max_bytes`` of UTF-8 without splitting a character."""
    if text is None:
        return None
    # "replace" turns lone surrogates (possible in JSON-escaped headers) into "?".
    raw = text.encode("utf-8", "replace")
    return raw[:max_bytes].decode("utf-8", "ignore")


def referer_page(referer: str | None) -> str | None:
    """The Referer as kept: without its query and fragment (another site's query carries its
    tokens and its users' addresses; classification reads the host only), cut to MAX_REFERER."""
    if referer is None:
        return None
    return truncate_utf8(referer.split("#", 1)[0].split("?", 1)[0], MAX_REFERER)


def anonymise_ip(address: str | None) -> str | None:
    """Zero the host part: IPv4 keeps its /24, IPv6 its /48. Unparseable input gives None."""
    if not address:
        return None
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return None
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    prefix = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{prefix}", strict=False).network_address)


def client_ip(address: str | None, mode: str) -> str | None:
    """The address to store under the deployment's choice: "anonymised", "full" or "none"."""
    if mode == "none":
        return None
    if mode == "full":
        try:
            return str(ipaddress.ip_address((address or "").strip()))
        except ValueError:
            return None
    return anonymise_ip(address)


def viewer_address(value: str | None) -> str | None:
    """The address in CloudFront's ``CloudFront-Viewer-Address`` (``IP:port``; IPv6 unbracketed or
    bracketed), or None when it is not one."""
    if not value:
        return None
    text = value.strip()
    for candidate in (text.rsplit(":", 1)[0].strip("[]"), text.strip("[]")):
        try:
            return str(ipaddress.ip_address(candidate))
        except ValueError:
            continue
    return None


def country(incoming: IncomingRequest) -> str | None:
    """The viewer's country as CloudFront says it (two letters). Callers trust it only from CloudFront."""
    value = incoming.header("cloudfront-viewer-country")
    if value and len(value) == 2 and value.isascii() and value.isalpha():
        return value.upper()
    return None


def opt_out(incoming: IncomingRequest) -> str | None:
    """The visitor's opt-out signal, if any: "gpc" (``Sec-GPC: 1``) or "dnt" (``DNT: 1``)."""
    if (incoming.header("sec-gpc") or "").strip() == "1":
        return "gpc"
    if (incoming.header("dnt") or "").strip() == "1":
        return "dnt"
    return None


def request_hints(incoming: IncomingRequest) -> frozenset[str]:
    """What the request says about itself that classification needs later: "prefetch" (a
    speculative fetch), "nofetch" (no ``Sec-Fetch-Mode``, which every current browser sends)."""
    hints = set()
    for name in _PREFETCH_HEADERS:
        value = (incoming.header(name) or "").lower()
        if "prefetch" in value or "preview" in value:
            hints.add("prefetch")
            break
    if not incoming.header("sec-fetch-mode"):
        hints.add("nofetch")
    return frozenset(hints)
