"""What a hit looks like to the core: a plain HTTP request in, a :class:`HitRequest` out.

Handlers build :class:`IncomingRequest` from whatever their platform hands them (an API Gateway
event, a local HTTP request); the core derives everything else here.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import datetime

    from webbugger.modes import Mode
    from webbugger.refs import Ref

# Bounds on what we keep from the visitor's headers, in UTF-8 bytes: a pixel beacon without
# references stays within one DynamoDB write unit (1 KB) even at these maxima (bench/write_units.py),
# and no beacon can approach the 400 KB item limit. Real user agents are rarely over 300 bytes.
MAX_USER_AGENT = 384
MAX_REFERER = 256
MAX_LANGUAGE = 64
EMPTY_QUERY: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class IncomingRequest:
    """An HTTP request as the platform saw it. ``headers`` keys are lower case."""

    method: str
    headers: Mapping[str, str]
    source_ip: str | None = None
    query: Mapping[str, str] = field(default_factory=lambda: EMPTY_QUERY)

    def header(self, name: str) -> str | None:
        """One header's value, or None when absent or empty."""
        return self.headers.get(name) or None


@dataclass(frozen=True, slots=True)
class HitRequest:
    """The request as entity hooks see it: stable, documented, and already anonymised."""

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


def truncate_utf8(text: str | None, max_bytes: int) -> str | None:
    """Cut ``text`` to at most ``max_bytes`` of UTF-8 without splitting a character."""
    if text is None:
        return None
    # "replace" turns lone surrogates (possible in JSON-escaped headers) into "?".
    raw = text.encode("utf-8", "replace")
    return raw[:max_bytes].decode("utf-8", "ignore")


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


def client_ip(address: str | None, *, anonymise: bool) -> str | None:
    """The address to store: anonymised unless the deployment asked for full addresses."""
    if not anonymise:
        try:
            return str(ipaddress.ip_address((address or "").strip()))
        except ValueError:
            return None
    return anonymise_ip(address)


def country(incoming: IncomingRequest) -> str | None:
    """The viewer's country, when CloudFront says it (two upper-case letters)."""
    value = incoming.header("cloudfront-viewer-country")
    if value and len(value) == 2 and value.isascii() and value.isalpha():
        return value.upper()
    return None
