"""Hot path of the track function: one request through the whole handler versus one bare save.

One process, moto's ``mock_aws`` with the tables of template.yaml. Each scenario interleaves
``lambda_handler`` on an API Gateway HTTP API (payload 2.0) event with a bare PynamoDB save of
the equivalent ``Beacon`` (built as ``webbugger.tracking.beacon_from_hit`` builds it), after a
warm-up of both, and compares medians:

- **pixel**: a pixel with no target, entity or source (target: ratio ≤ 1.3);
- **redirect, cached**: a redirect to a stored link whose lookup is in the tracker's cache
  (LOOKUP_CACHE_SECONDS, default 30 s), the state of nearly every hit of a busy link;
- **redirect, routed link cached**: the same for a link with five routing rules (country,
  language, query, two device rules) of which none matches this desktop visitor, and an A/B split
  of two variants: every condition is evaluated, then the split's hash (the worst case);
- **redirect, uncached**: the same with LOOKUP_CACHE_SECONDS=0, so every hit reads the link too
  (GetItem + PutItem against one PutItem: for information).

Then **one routing decision** alone (``Routing.decide`` of that link, for a new visitor each
time: the user agent parsed by the substring rules, Accept-Language parsed, the split hashed),
against a decision on the same link where the first rule matches, and as a share of the routed
redirect's median.

moto does its server-side work in this process, so both sides include it; in Lambda it is a
network wait instead. The ``diff`` column is what the handler adds per request.

Run: ``uv run python bench/hot_path.py [--requests N] [--warmup W]``
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import _support as s
from _support import Side

if TYPE_CHECKING:
    from collections.abc import Callable

PIXEL_ROUTE = "GET /p/{token}"
REDIRECT_ROUTE = "GET /r/{token}"
LINK_URL = "https://www.example.com/spring-sale?utm_source=newsletter&utm_medium=email"
# Five rules that a desktop visitor from nowhere in particular meets none of, then a split.
ROUTED_RULES = [
    {"name": "dach", "url": "https://www.example.de/", "country": ["DE", "AT", "CH"]},
    {"name": "fr", "url": "https://www.example.fr/", "language": ["fr"]},
    {"name": "qr", "url": "https://www.example.com/qr", "query": {"from": "qr"}},
    {"name": "ios", "url": "https://apps.example.com/ios", "device": ["ios"]},
    {"name": "android", "url": "https://apps.example.com/android", "device": ["android"]},
]
ROUTED_SPLIT = {
    "variants": [
        {"name": "a", "url": "https://www.example.com/a", "weight": 1},
        {"name": "b", "url": "https://www.example.com/b", "weight": 1},
    ]
}


def interleave(sides: list[Side], requests: int, warmup: int) -> None:
    """Warm every side up, then time ``requests`` calls of each, rotating which goes first."""
    for _ in range(warmup):
        for side in sides:
            side.once(record=False)
    for i in range(requests):
        k = i % len(sides)
        for side in sides[k:] + sides[:k]:
            side.once()


def summarise(results: list[tuple[str, list[Side], str]]) -> tuple[list[list[str]], list[list[str]]]:
    """The rows of the timing table and of the ratio table."""
    rows = []
    ratios = []
    for name, sides, bar in results:
        for side in sides:
            rows.append(
                [
                    side.label,
                    str(len(side.times)),
                    f"{s.median(side.times):.0f}",
                    f"{s.percentile(side.times, 0.9):.0f}",
                    f"{min(side.times):.0f}",
                ]
            )
        handler, bare, conditional = sides
        for baseline, against, limit in (
            (bare, "bare save", bar),
            (conditional, "conditional save", "(info)"),
        ):
            ratio = s.median(handler.times) / s.median(baseline.times)
            p90_ratio = s.percentile(handler.times, 0.9) / s.percentile(baseline.times, 0.9)
            diff = s.median(handler.times) - s.median(baseline.times)
            verdict = "-" if limit == "(info)" else s.verdict(ratio, 1.3)
            ratios.append(
                [f"{name} / {against}", f"{ratio:.2f}", f"{p90_ratio:.2f}", f"{diff:+.0f}", limit, verdict]
            )
    return rows, ratios


def time_decisions(routing: Any, link_id: str, count: int) -> dict[str, list[float]]:
    """µs per ``routing.decide`` call: no rule matches (every condition, then the split), and the
    first rule matches; each call with a new visitor, so nothing derived is reused."""
    import time
    from datetime import UTC, datetime

    from webbugger.routing import Visitor

    now = datetime.now(UTC)
    cases = {"no rule matches, then the split": None, "the first rule matches": "DE"}
    times: dict[str, list[float]] = {name: [] for name in cases}
    for n in range(count):
        for name, country in cases.items():
            visitor = Visitor(
                s.TYPICAL_USER_AGENT, country, s.TYPICAL_LANGUAGE, {}, lambda n=n: f"198.51.100.0\x00{n}"
            )
            started = time.perf_counter()
            decision = routing.decide(link_id, visitor, now)
            times[name].append((time.perf_counter() - started) * 1e6)
            if decision is None:
                raise RuntimeError("the routed link decided nothing")
    return times


def print_decisions(times: dict[str, list[float]], handler_median_us: float) -> None:
    """The routing decision's table: its cost alone, and its share of a routed redirect."""
    rows = [
        [
            name,
            str(len(values)),
            f"{s.median(values):.1f}",
            f"{s.percentile(values, 0.9):.1f}",
            f"{100 * s.median(values) / handler_median_us:.2f}%",
        ]
        for name, values in times.items()
    ]
    print("One routing decision (Routing.decide, a new visitor each call; 5 rules and a 2-variant split)")
    print(s.table(["decision", "n", "median µs", "p90 µs", "of a routed redirect"], rows))


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print its tables."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=600, help="timed requests per side and scenario")
    parser.add_argument("--warmup", type=int, default=50, help="untimed requests per side first")
    opts = parser.parse_args(argv)

    print(s.compile_bytecode())
    key_ring_json = s.new_key_ring_json()
    s.apply_environment(s.core_environment(key_ring_json))

    import boto3
    from moto import mock_aws
    from webbugger.ids import new_beacon_id
    from webbugger.minting import tracking_url
    from webbugger.models import Beacon, beacon_partition, expiry, utcnow
    from webbugger.modes import Mode
    from webbugger.refs import Ref
    from webbugger.routing import Routing
    from webbugger.runtime import default_tracker
    from webbugger.settings import get_settings
    from webbugger.tokens import KeyRing, TokenClaims
    from webbugger_cli.template import load_handler
    from webbugger_plugins.link import create_link, load, update_link

    ring = KeyRing.from_json(key_ring_json)
    context = s.FakeLambdaContext()
    real_stdout = sys.stdout
    results: list[tuple[str, list[Side], str]] = []
    with mock_aws(), Path(os.devnull).open("w") as devnull:
        client = boto3.client("dynamodb", region_name=s.REGION)
        s.create_tables(client, s.table_specs())
        # Powertools prints each request's EMF metrics line (CloudWatch's, in Lambda): to /dev/null.
        sys.stdout = devnull
        try:
            lambda_handler = load_handler(s.ROOT / "functions" / "track", "app.lambda_handler")
            default_tracker()  # binds the models to the tables
            link = create_link(LINK_URL)
            pixel_path = tracking_url(s.BASE_URL, TokenClaims(mode=Mode.PIXEL), ring).removeprefix(s.BASE_URL)
            target = Ref("link", link.id)
            redirect_path = tracking_url(
                s.BASE_URL, TokenClaims(mode=Mode.REDIRECT, target=target), ring
            ).removeprefix(s.BASE_URL)
            routed = create_link(LINK_URL)
            update_link(routed.id, {"rules": ROUTED_RULES, "split": ROUTED_SPLIT})
            routed_target = Ref("link", routed.id)
            routed_path = tracking_url(
                s.BASE_URL, TokenClaims(mode=Mode.REDIRECT, target=routed_target), ring
            ).removeprefix(s.BASE_URL)
            retention = get_settings().retention_days

            def handle(expected: int) -> Callable[[dict[str, Any]], Any]:
                def call(event: dict[str, Any]) -> None:
                    status = lambda_handler(event, context)["statusCode"]
                    if status != expected:
                        raise RuntimeError(f"handler answered {status}, expected {expected}")

                return call

            def bare_beacon(mode: Mode, target_ref: Ref | None) -> Callable[[], Beacon]:
                def build() -> Beacon:
                    now = utcnow()
                    beacon_id = new_beacon_id(int(now.timestamp() * 1000))
                    return Beacon(
                        pk=beacon_partition(beacon_id),
                        id=beacon_id,
                        created_at=now,
                        mode=str(mode),
                        method="GET",
                        target=None if target_ref is None else str(target_ref),
                        ip="203.0.113.0",
                        user_agent=s.TYPICAL_USER_AGENT,
                        referer=s.TYPICAL_REFERER,
                        language=s.TYPICAL_LANGUAGE,
                        expires=expiry(now, retention),
                    )

                return build

            def save(build: Callable[[], Beacon]) -> Callable[[object], None]:
                return lambda _: build().save()

            def save_conditional(build: Callable[[], Beacon]) -> Callable[[object], None]:
                return lambda _: build().save(condition=Beacon.id.does_not_exist())

            scenarios = [
                ("pixel", pixel_path, PIXEL_ROUTE, 200, None, "<= 1.3"),
                ("redirect, link cached", redirect_path, REDIRECT_ROUTE, 302, target, "<= 1.3"),
                ("redirect, routed link cached", routed_path, REDIRECT_ROUTE, 302, routed_target, "<= 1.3"),
                ("redirect, uncached", redirect_path, REDIRECT_ROUTE, 302, target, "(info)"),
            ]
            for name, path, route, status, ref, bar in scenarios:
                if name == "redirect, uncached":
                    s.apply_environment({**s.core_environment(key_ring_json), "LOOKUP_CACHE_SECONDS": "0"})
                mode = Mode.PIXEL if ref is None else Mode.REDIRECT
                build = bare_beacon(mode, ref)
                # The baselines build their Beacon inside the timed call, as the handler does.
                sides = [
                    Side(
                        f"{name}: lambda_handler",
                        lambda path=path, route=route: s.http_api_event(path, route),
                        handle(status),
                    ),
                    Side(f"{name}: bare Beacon.save()", lambda: None, save(build)),
                    Side(f"{name}: Beacon.save(condition)", lambda: None, save_conditional(build)),
                ]
                interleave(sides, opts.requests, opts.warmup)
                results.append((name, sides, bar))
            stored_link = load(routed.id)
            routing = stored_link.routing if stored_link is not None else None
            if not isinstance(routing, Routing):
                raise RuntimeError("the routed link has no routing")
            decisions = time_decisions(routing, routed.id, opts.requests * 10)
        finally:
            sys.stdout = real_stdout
        stored = s.count_items(client, s.BEACONS_TABLE)
    expected = sum(len(sides) for _, sides, _ in results) * (opts.requests + opts.warmup)

    rows, ratios = summarise(results)
    print()
    print(
        f"Hot path: one process, moto in-process, {opts.warmup} warm-up + {opts.requests} timed requests "
        f"per side,\nthe sides of each scenario interleaved ({os.cpu_count()} CPUs, noisy)"
    )
    print(s.table(["measured (per request)", "n", "median µs", "p90 µs", "min µs"], rows))
    print()
    print(
        s.table(["ratio: lambda_handler / baseline", "median", "p90", "diff µs", "target", "verdict"], ratios)
    )
    print(f"  beacons stored: {stored} of {expected} expected")
    print("  'redirect, link cached': the link was read once, then served from the tracker's cache;")
    print("  'redirect, uncached': LOOKUP_CACHE_SECONDS=0, a GetItem of the link on every request.")
    print("  Every side includes moto's server-side work, done in this process. The conditional save")
    print("  (attribute_not_exists(id), as the core writes) isolates moto's condition parsing from the")
    print("  handler's own overhead; in DynamoDB a condition costs no extra write unit.")
    print()
    routed_handler = next(sides[0] for name, sides, _ in results if name == "redirect, routed link cached")
    print_decisions(decisions, s.median(routed_handler.times))
    print("  'redirect, routed link cached': the same five rules and split; the rules and split are")
    print("  parsed once, when the link is loaded, and cached with it: a hit reads nothing more.")
    print()
    print(f"rerun: {s.rerun_command(argv)}")


if __name__ == "__main__":
    main()
