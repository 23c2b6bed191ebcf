"""The ``url`` target: the destination travels inside the signed token, so a mail sender can wrap
thousands of unique links without storing each. Only hosts in the deployment's allowed list
(``ALLOWED_REDIRECT_HOSTS``: ``example.com`` or ``*.example.com``, comma-separated) are followed,
and minting a URL for any other host is refused (:func:`check_minted`).
"""

from __future__ import annotations

import os
from functools import cache
from typing import TYPE_CHECKING, NamedTuple
from urllib.parse import urlsplit

from webbugger.destinations import idna_host, normalise_destination
from webbugger.errors import UnsafeDestinationError

if TYPE_CHECKING:
    from webbugger.plugins import PluginTypes

ALLOWED_HOSTS_VARIABLE = "ALLOWED_REDIRECT_HOSTS"


class UrlTarget(NamedTuple):
    """A destination URL that passed the allowed-hosts check (a NamedTuple: cheap to define)."""

    url: str

    def get_beacon_url(self) -> str:
        """Where to send the visitor."""
        return self.url


@cache
def allowed_hosts() -> tuple[str, ...]:
    """The allowed host patterns, lower case, punycode (read once)."""
    raw = os.environ.get(ALLOWED_HOSTS_VARIABLE, "")
    patterns = []
    for item in raw.split(","):
        host = item.strip().lower().rstrip(".")
        if host:
            wildcard = host.startswith("*.")
            name = host[2:] if wildcard else host
            name = name if name.isascii() else idna_host(name)
            patterns.append(f"*.{name}" if wildcard else name)
    return tuple(patterns)


def host_allowed(host: str, patterns: tuple[str, ...]) -> bool:
    """Exact match, or ``*.example.com`` matching any subdomain of example.com (not itself)."""
    host = host.lower().rstrip(".")
    for pattern in patterns:
        if pattern.startswith("*."):
            if host.endswith(pattern[1:]):
                return True
        elif host == pattern:
            return True
    return False


def check_url(url: str, patterns: tuple[str, ...] | None = None) -> str:
    """The normalised URL if its host is allowed; :class:`UnsafeDestinationError` otherwise."""
    normalised = normalise_destination(url)
    host = urlsplit(normalised).hostname or ""
    if not host_allowed(host, allowed_hosts() if patterns is None else patterns):
        raise UnsafeDestinationError(f"host {host!r} is not in {ALLOWED_HOSTS_VARIABLE}")
    return normalised


def check_minted(url: str) -> str:
    """The URL to sign into a token, normalised; :class:`UnsafeDestinationError` saying what to
    change when the track function would not follow it (no allowed hosts, or not this host)."""
    patterns = allowed_hosts()
    if not patterns:
        raise UnsafeDestinationError(
            f"{ALLOWED_HOSTS_VARIABLE} is empty or not set: set it to the hosts the stack may redirect "
            "to, comma-separated, as in the stack's AllowedRedirectHosts parameter"
        )
    normalised = normalise_destination(url)
    host = urlsplit(normalised).hostname or ""
    if not host_allowed(host, patterns):
        raise UnsafeDestinationError(
            f"host {host!r} is not allowed: {ALLOWED_HOSTS_VARIABLE} allows only {', '.join(patterns)}"
        )
    return check_url(normalised, patterns)  # the very check the track function makes


def load(url: str) -> UrlTarget | None:
    """The target for a signed URL, or None (404) when its host is not allowed."""
    try:
        return UrlTarget(check_url(url))
    except UnsafeDestinationError:
        return None


def register(types: PluginTypes) -> None:
    """Plugin entry point."""
    types.target("url", load=load, check=check_minted)
