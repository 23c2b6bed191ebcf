"""Our own table of machines (``data/machines.json``), for what the maintained lists lack: mail
proxies and privacy prefetchers (which fetch in a reader's place), email security gateways' user
agents, network ranges and Referer hosts, link-preview bots, and the mail clients and browsers
that a maintained list mistakes for bots. Every entry names its public source and the day it was checked.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from webbugger.modes import Mode

if TYPE_CHECKING:
    from webbugger.networks import Network

DATA_FILE = Path(__file__).resolve().parent / "data" / "machines.json"
MACHINE_CLASSES = (
    "mail-proxy",
    "privacy-prefetch",
    "security-scanner",
    "link-preview",
    "crawler",
    "unknown-machine",
)


@dataclass(frozen=True, slots=True)
class UserAgentRule:
    """One user-agent entry of the data file."""

    id: str
    classification: str | None  # None for a known mail client (a person's)
    exact: bool
    pattern: str
    modes: frozenset[str] = frozenset({Mode.PIXEL, Mode.REDIRECT})

    def matches(self, user_agent: str, mode: str | None = None) -> bool:
        """Whether ``user_agent`` (on a hit of ``mode``, if given) is this entry's."""
        if mode is not None and mode not in self.modes:
            return False
        if self.exact:
            return user_agent.strip() == self.pattern
        return self.pattern.lower() in user_agent.lower()


@dataclass(frozen=True, slots=True)
class NetworkRule:
    """One provider's published ranges."""

    id: str
    classification: str
    ranges: tuple[Network, ...]


@dataclass(frozen=True, slots=True)
class RefererRule:
    """The hosts (and their subdomains) a gateway's rewritten links live on."""

    id: str
    classification: str
    hosts: tuple[str, ...]

    def matches(self, host: str) -> bool:
        """Whether ``host`` (lower case) is one of these hosts or below one."""
        return any(host == suffix or host.endswith(f".{suffix}") for suffix in self.hosts)


@dataclass(frozen=True, slots=True)
class Machines:
    """The data file, parsed."""

    user_agents: tuple[UserAgentRule, ...]
    networks: tuple[NetworkRule, ...]
    mail_clients: tuple[UserAgentRule, ...]
    referers: tuple[RefererRule, ...] = ()
    browsers: tuple[UserAgentRule, ...] = ()

    @property
    def people(self) -> tuple[UserAgentRule, ...]:
        """People's software (mail clients, browsers) that a maintained list mistakes for a machine."""
        return (*self.mail_clients, *self.browsers)


def _ua_rule(entry: dict[str, Any], classification: str | None) -> UserAgentRule:
    match = entry.get("match", "contains")
    if match not in ("exact", "contains"):
        raise ValueError(f"{entry['id']}: match must be 'exact' or 'contains', got {match!r}")
    modes = frozenset(Mode(mode) for mode in entry.get("modes", list(Mode)))
    return UserAgentRule(entry["id"], classification, match == "exact", entry["pattern"], modes)


def parse_machines(data: dict[str, Any]) -> Machines:
    """Check and parse the data file's content (a wrong class or range is an error here)."""
    referers, browsers = data.get("referers", []), data.get("browsers", [])
    for entry in [*data["user_agents"], *data["networks"], *data["mail_clients"], *referers, *browsers]:
        if not entry.get("source", "").startswith("https://") or not entry.get("checked"):
            raise ValueError(f"{entry.get('id')}: every entry needs a https source and a checked date")
    for entry in [*data["user_agents"], *data["networks"], *referers]:
        if entry["class"] not in MACHINE_CLASSES:
            raise ValueError(f"{entry['id']}: unknown class {entry['class']!r}")
    return Machines(
        user_agents=tuple(_ua_rule(entry, entry["class"]) for entry in data["user_agents"]),
        networks=tuple(
            NetworkRule(entry["id"], entry["class"], tuple(ipaddress.ip_network(r) for r in entry["ranges"]))
            for entry in data["networks"]
        ),
        mail_clients=tuple(_ua_rule(entry, None) for entry in data["mail_clients"]),
        referers=tuple(
            RefererRule(entry["id"], entry["class"], tuple(host.lower() for host in entry["hosts"]))
            for entry in referers
        ),
        browsers=tuple(_ua_rule(entry, None) for entry in browsers),
    )


@cache
def machines() -> Machines:
    """The packaged data file (read once per container)."""
    return parse_machines(json.loads(DATA_FILE.read_text(encoding="utf-8")))
