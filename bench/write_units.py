"""Write units per beacon, as DynamoDB Local's consumed capacity reports them.

DynamoDB Local runs in memory on 127.0.0.1 (stopped at the end, whatever happens), with the
tables of template.yaml. Beacons are written through the core, ``Tracker.track``, exactly as the
track function writes them (the conditional PutItem included); a botocore hook on PynamoDB's
client adds ``ReturnConsumedCapacity=INDEXES`` to that PutItem and keeps the item and the answer.

Cases: (a) a pixel with no target, entity or source and a typical browser; (a') the same pixel
with a link target; (b) a pixel with the longest headers the core keeps (user agent and referer
at the core's maxima, language 64, an IPv6 address, a country); (c) a redirect with target,
entity and source. The beacons table has no index, so a reference costs no index entry (the
"index WCU" column shows any DynamoDB Local reports). Target: (a) ≤ 1 write unit.

Run: ``uv run python bench/write_units.py [--beacons N]``
"""

from __future__ import annotations

import argparse
import math
import types
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import _support as s

LINK_URL = "https://www.example.com/spring-sale?utm_source=newsletter&utm_medium=email"
# Longer than the core keeps, so the stored values are the truncated maximum.
LONG_USER_AGENT = (s.TYPICAL_USER_AGENT + " ") * 8
LONG_REFERER = "https://www.example.com/" + "a-rather-long-path-segment/" * 30
LONG_LANGUAGE = "en-GB,en;q=0.9,fr-FR;q=0.8,fr;q=0.7,de-DE;q=0.6,de;q=0.5,es;q=0.4,it;q=0.3"
IPV6_SOURCE = "2001:db8:85a3:1234:5678:8a2e:370:7334"
GSI_OVERHEAD_BYTES = 100  # DynamoDB adds this to every index entry


def attribute_size(value: dict[str, Any]) -> int:
    """Size in bytes of one attribute value as DynamoDB counts it (the types a beacon uses)."""
    (kind, raw), *_ = value.items()
    if kind == "S":
        return len(str(raw).encode())
    if kind == "N":
        digits = Decimal(str(raw)).normalize().as_tuple().digits
        return math.ceil(len(digits) / 2) + 1
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "SS":  # a string set: the sum of its strings
        return sum(len(str(item).encode()) for item in raw)
    raise ValueError(f"attribute type {kind} is not sized here")


def item_size(item: dict[str, dict[str, Any]]) -> int:
    """Size in bytes of an item: every attribute's name plus its value."""
    return sum(len(name.encode()) + attribute_size(value) for name, value in item.items())


@dataclass
class Case:
    """One kind of beacon and how it is triggered."""

    label: str
    path: str
    mode: str
    headers: dict[str, str]
    source_ip: str


@dataclass
class Measured:
    """The PutItem of one beacon: the item and the capacity DynamoDB Local reported."""

    item: dict[str, dict[str, Any]]
    capacity: dict[str, Any]


class CapacityProbe:
    """Adds ReturnConsumedCapacity=INDEXES to PynamoDB's PutItem calls and keeps what comes back."""

    def __init__(self, client: Any) -> None:
        self.calls: list[Measured] = []
        self._item: dict[str, Any] = {}
        client.meta.events.register("before-parameter-build.dynamodb.PutItem", self._before)
        client.meta.events.register("after-call.dynamodb.PutItem", self._after)

    def _before(self, params: dict[str, Any], **_: Any) -> None:
        params["ReturnConsumedCapacity"] = "INDEXES"
        self._item = params["Item"]

    def _after(self, parsed: dict[str, Any], **_: Any) -> None:
        self.calls.append(Measured(self._item, parsed.get("ConsumedCapacity", {})))


def build_cases(key_ring_json: str, link_id: str) -> list[Case]:
    """The four cases, with tokens minted by the core."""
    from webbugger.minting import tracking_url
    from webbugger.modes import Mode
    from webbugger.refs import Ref
    from webbugger.tokens import KeyRing, Purpose, TokenClaims

    ring = KeyRing.from_json(key_ring_json)
    typical = {
        "user-agent": s.TYPICAL_USER_AGENT,
        "referer": s.TYPICAL_REFERER,
        "accept-language": s.TYPICAL_LANGUAGE,
        "sec-fetch-mode": "no-cors",
    }
    # No Sec-Fetch-Mode and a prefetch header, on an email URL: every hint the track function stores.
    longest = {
        "user-agent": LONG_USER_AGENT,
        "referer": LONG_REFERER,
        "accept-language": LONG_LANGUAGE,
        "cloudfront-viewer-country": "GB",
        "sec-purpose": "prefetch",
    }
    link = Ref("link", link_id)

    def path(claims: TokenClaims) -> str:
        return tracking_url(s.BASE_URL, claims, ring).removeprefix(s.BASE_URL)

    return [
        Case("(a) pixel, no refs, typical browser", path(TokenClaims(Mode.PIXEL)), "p", typical, s.SOURCE_IP),
        Case(
            "(a') pixel, link target only",
            path(TokenClaims(Mode.PIXEL, target=link)),
            "p",
            typical,
            s.SOURCE_IP,
        ),
        Case(
            "(b) pixel, no refs, longest headers",
            path(TokenClaims(Mode.PIXEL, purpose=Purpose.EMAIL)),
            "p",
            longest,
            IPV6_SOURCE,
        ),
        Case(
            "(c) redirect: target + entity + source",
            path(
                TokenClaims(
                    Mode.REDIRECT,
                    target=link,
                    entity=Ref("subscriber", "sub-0042917"),
                    source=Ref("campaign", "spring-newsletter-2024"),
                )
            ),
            "r",
            typical,
            s.SOURCE_IP,
        ),
    ]


def bench_registry() -> Any:
    """The built-in types plus a benchmark entity type and source type (what a plugin would add)."""
    from webbugger.plugins import load_plugins
    from webbugger.registry import Registry

    registry = Registry()
    load_plugins(registry, ["webbugger_plugins.link"])
    registry.register_entity(
        "subscriber", lambda ident: types.SimpleNamespace(id=ident or "sub-new"), origin="bench"
    )
    registry.register_source("campaign", lambda ident: types.SimpleNamespace(id=ident), origin="bench")
    return registry


def run_cases(endpoint: str, key_ring_json: str, beacons: int) -> list[tuple[Case, list[Measured]]]:
    """Write ``beacons`` beacons of every case through the core; the measured PutItems."""
    s.apply_environment(s.core_environment(key_ring_json, dynamodb_endpoint=endpoint))
    from webbugger.models import Beacon
    from webbugger.modes import Mode
    from webbugger.request import IncomingRequest
    from webbugger.runtime import bind_tables
    from webbugger.settings import get_settings
    from webbugger.tokens import KeyRing
    from webbugger.tracking import Tracker
    from webbugger_plugins.link import create_link

    settings = get_settings()
    registry = bench_registry()
    bind_tables(registry, settings)
    ring = KeyRing.from_json(key_ring_json)
    tracker = Tracker(settings, registry, key_ring=lambda: ring)
    link = create_link(LINK_URL)
    probe = CapacityProbe(Beacon._get_connection().connection.client)

    results = []
    for case in build_cases(key_ring_json, link.id):
        probe.calls.clear()
        mode = Mode.PIXEL if case.mode == "p" else Mode.REDIRECT
        token = case.path.rsplit("/", 1)[1].removesuffix(".gif")
        for _ in range(beacons):
            incoming = IncomingRequest(method="GET", headers=case.headers, source_ip=case.source_ip)
            result = tracker.track(token, mode, incoming)
            if not result.stored:
                raise RuntimeError(f"{case.label}: the beacon was not stored (see the log above)")
        if len(probe.calls) != beacons:
            raise RuntimeError(f"{case.label}: expected {beacons} PutItem calls, saw {len(probe.calls)}")
        results.append((case, list(probe.calls)))
    return results


def units(capacity: dict[str, Any]) -> tuple[float, float, dict[str, float]]:
    """(total, table, per index) capacity units of one ConsumedCapacity answer."""
    table = float((capacity.get("Table") or {}).get("CapacityUnits", 0.0))
    indexes = {
        name: float(value.get("CapacityUnits", 0.0))
        for name, value in (capacity.get("GlobalSecondaryIndexes") or {}).items()
    }
    return float(capacity.get("CapacityUnits", 0.0)), table, indexes


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print its table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--beacons", type=int, default=20, help="beacons written per case")
    opts = parser.parse_args(argv)

    print(s.compile_bytecode())
    key_ring_json = s.new_key_ring_json()
    specs = s.table_specs()
    with s.dynamodb_local() as (endpoint, launcher):
        print(f"DynamoDB Local in memory at {endpoint} ({launcher})")
        s.create_tables(s.local_client(endpoint), specs)
        results = run_cases(endpoint, key_ring_json, opts.beacons)

    rows = []
    verdicts = []
    for case, calls in results:
        sizes = [item_size(call.item) for call in calls]
        per_call = [units(call.capacity) for call in calls]
        totals = sorted({total for total, _, _ in per_call})
        tables = sorted({table for _, table, _ in per_call})
        index_names = sorted({name for _, _, idx in per_call for name in idx})
        index_text = ", ".join(
            f"{name} {'/'.join(f'{v:g}' for v in sorted({idx.get(name, 0.0) for _, _, idx in per_call}))}"
            for name in index_names
        )
        rows.append(
            [
                case.label,
                f"{min(sizes)}-{max(sizes)}" if min(sizes) != max(sizes) else str(sizes[0]),
                "/".join(f"{t:g}" for t in tables),
                index_text or "none",
                "/".join(f"{t:g}" for t in totals),
            ]
        )
        if case.label.startswith("(a) "):
            verdicts.append(
                ["(a) write units", "/".join(f"{t:g}" for t in totals), "<= 1", s.verdict(totals[-1], 1)]
            )

    print()
    print(
        f"Write units per beacon: {opts.beacons} beacons per case through Tracker.track, "
        "ConsumedCapacity (INDEXES)\nfrom DynamoDB Local; several values = different beacons of the case"
    )
    print(s.table(["case", "item bytes", "table WCU", "index WCU", "total WCU"], rows))
    print()
    print(s.table(["target", "measured", "limit", "verdict"], verdicts))
    print("  item bytes: attribute names + values, by DynamoDB's sizing rules (numbers: 1 byte per 2")
    print(f"  digits + 1); a write unit per started 1 KB; an index entry adds {GSI_OVERHEAD_BYTES} bytes.")
    for case, calls in results:
        if case.label.startswith("(b)"):
            kept = {name: len(calls[0].item[name]["S"].encode()) for name in ("ua", "referer", "lang", "ip")}
            print(f"  (b) stored bytes: {', '.join(f'{k} {v}' for k, v in kept.items())}")
    print()
    print(f"rerun: {s.rerun_command(argv)}")


if __name__ == "__main__":
    main()
