"""Peak memory of exporting beacons: 100,000 through ``beacons_between`` against 1,000.

DynamoDB Local runs in memory on 127.0.0.1 (stopped at the end, whatever happens) with the
tables of template.yaml. The script puts ``--beacons`` beacons into the beacons table with
PynamoDB's ``Beacon.batch_write()`` (BatchWriteItem, 25 items a request), spread over the last
``--days`` UTC days, each with a link target (as in real
use). Then a CHILD process exports every one of them, newest first, through
:func:`webbugger.beacon_queries.beacons_between` and ``Beacon.to_record()`` into a CSV writer on
/dev/null, and reports its own peak resident set (``VmHWM`` of /proc/self/status, read at the
end inside the child). A baseline child runs the very same code (same imports, same query) and
stops after ``--baseline`` beacons.

Bounded memory means the big export's peak is close to the baseline's: reads are lazy, a query
page at a time, so the peak should not grow with the number of beacons. The parent also prints each
child's ``ru_maxrss`` as ``os.wait4`` returns it (the rusage of that child alone: with
``getrusage(RUSAGE_CHILDREN)`` any earlier, larger child would show instead) as a cross-check.

Run: ``uv run python bench/export_memory.py [--beacons N] [--baseline N] [--days N]``
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import _support as s

CHILD_TIMEOUT_S = 300.0
LOAD_TIMEOUT_S = 420.0  # DynamoDB Local writes ~450-600 items/s on 2 busy cores
LOAD_WORKERS = max(2, os.cpu_count() or 2)
CHUNK = 500  # beacons per loading task (20 BatchWriteItem requests, ~1 s)
LINKS = 50
AGENTS = (
    s.TYPICAL_USER_AGENT,
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4 Mobile/15E148 Safari/604.1",
    "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17425; Pro)",
)
BOUNDED_RATIO = 1.5  # the big export's peak may be at most this many times the baseline's


def _bind(settings_changes: dict[str, Any]) -> None:
    """Bind the core's models with timeouts fit for a long export (not the hot path's)."""
    from webbugger.runtime import bind_core_models
    from webbugger.settings import get_settings

    bind_core_models(get_settings()._replace(**settings_changes))


_EXPORT_SETTINGS = {"ddb_connect_timeout": 5.0, "ddb_read_timeout": 30.0, "ddb_max_retries": 5}


# --- loading ------------------------------------------------------------------------------------


def _make_beacons(start: int, count: int, now: datetime, days: int, seed: int) -> list[Any]:
    from webbugger.ids import epoch_ms, new_beacon_id
    from webbugger.models import Beacon, beacon_partition, expiry

    rng = random.Random(seed + start)
    span_ms = days * 86_400_000 - 60_000
    beacons = []
    for index in range(start, start + count):
        moment = now - timedelta(milliseconds=rng.randrange(span_ms))
        beacon_id = new_beacon_id(epoch_ms(moment))
        redirect = index % 3 == 0
        beacons.append(
            Beacon(
                pk=beacon_partition(beacon_id),
                id=beacon_id,
                created_at=moment,
                mode="r" if redirect else "p",
                method="GET",
                target=f"link:bench-{index % LINKS:02d}",
                entity=f"recipient:r-{index % 997:04d}" if index % 2 else None,
                source="campaign:spring-newsletter-2024" if redirect else None,
                ip="203.0.113.0",
                user_agent=AGENTS[index % len(AGENTS)],
                referer=s.TYPICAL_REFERER if redirect else None,
                language=s.TYPICAL_LANGUAGE,
                country="GB",
                expires=expiry(moment, 400),
            )
        )
    return beacons


def _load_chunk(start: int, count: int, now: datetime, days: int, seed: int, deadline: float) -> int:
    from webbugger.models import Beacon

    if time.monotonic() > deadline:
        return 0  # out of time: the caller reports the shortfall
    beacons = _make_beacons(start, count, now, days, seed)
    with Beacon.batch_write() as batch:
        for beacon in beacons:
            batch.save(beacon)
    return len(beacons)


def load(total: int, now: datetime, days: int, seed: int) -> float:
    """Write ``total`` beacons (threads share the bound model's client); the seconds it took.

    Bounded: chunks that would start after ``LOAD_TIMEOUT_S`` are skipped, and the shortfall is an
    error (DynamoDB Local is stopped by the caller's ``with`` either way).
    """
    started = time.perf_counter()
    deadline = time.monotonic() + LOAD_TIMEOUT_S
    with ThreadPoolExecutor(max_workers=LOAD_WORKERS) as pool:
        futures = [
            pool.submit(_load_chunk, start, min(CHUNK, total - start), now, days, seed, deadline)
            for start in range(0, total, CHUNK)
        ]
        written = sum(future.result() for future in futures)
    elapsed = time.perf_counter() - started
    if written != total:
        raise RuntimeError(
            f"wrote {written:,} of {total:,} beacons in {elapsed:.0f} s (limit {LOAD_TIMEOUT_S:.0f} s): "
            "try fewer with --beacons"
        )
    return elapsed


# --- the child ----------------------------------------------------------------------------------


def _vm_hwm_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise RuntimeError("no VmHWM in /proc/self/status")


def child(limit: int, since: str, until: str) -> None:
    """Export up to ``limit`` beacons to CSV on /dev/null; print a JSON line of what it took."""
    from webbugger.beacon_queries import beacons_between
    from webbugger.models import BEACON_RECORD_FIELDS as FIELDS

    _bind(_EXPORT_SETTINGS)
    hwm_before = _vm_hwm_kb()
    started = time.perf_counter()
    rows = 0
    with Path(os.devnull).open("w", newline="", encoding="utf-8") as out:
        writer = csv.writer(out)
        writer.writerow(FIELDS)
        found = beacons_between(datetime.fromisoformat(since), datetime.fromisoformat(until))
        hwm_first = hwm_before
        for beacon in itertools.islice(found, limit):
            record = beacon.to_record()
            writer.writerow([record[name] for name in FIELDS])
            rows += 1
            if rows == 1:
                hwm_first = _vm_hwm_kb()  # the first page of every shard of the newest day is in
    elapsed = time.perf_counter() - started
    print(
        json.dumps(
            {
                "rows": rows,
                "seconds": elapsed,
                "vm_hwm_kb": _vm_hwm_kb(),
                "vm_hwm_before_export_kb": hwm_before,
                "vm_hwm_first_row_kb": hwm_first,
                "ru_maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
            }
        )
    )


def run_child(env: dict[str, str], limit: int, since: datetime, until: datetime) -> dict[str, Any]:
    """One export child: its own report, plus its peak RSS as the parent sees it (``wait4``'s
    rusage of that one child; ``getrusage(RUSAGE_CHILDREN)`` would mix in every earlier child)."""
    argv = [
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        "--limit",
        str(limit),
        "--since",
        since.isoformat(),
        "--until",
        until.isoformat(),
    ]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        process = subprocess.Popen(argv, stdout=out, stderr=err, env=s.child_environment(env))
        deadline = time.monotonic() + CHILD_TIMEOUT_S
        while True:
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if time.monotonic() > deadline:
                process.kill()
                os.wait4(process.pid, 0)
                process.returncode = -9
                raise RuntimeError(f"the export child did not finish within {CHILD_TIMEOUT_S:.0f} s")
            time.sleep(0.05)
        process.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if process.returncode != 0:
        raise RuntimeError(f"export child failed ({process.returncode}): {stderr.strip()[-2000:]}")
    found: dict[str, Any] = json.loads(stdout.strip().splitlines()[-1])
    found["wait4_maxrss_kb"] = usage.ru_maxrss
    return found


# --- main ---------------------------------------------------------------------------------------


def _mb(kb: float) -> str:
    return f"{kb / 1024:.1f} MB"


def main(argv: list[str] | None = None) -> None:
    """Run the benchmark (or, with --child, one export)."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--beacons", type=int, default=100_000, help="beacons to load and export")
    parser.add_argument("--baseline", type=int, default=1_000, help="beacons the baseline child exports")
    parser.add_argument("--days", type=int, default=4, help="UTC days the beacons spread over")
    parser.add_argument("--seed", type=int, default=20240520, help="random seed of the beacons' times")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--limit", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--since", help=argparse.SUPPRESS)
    parser.add_argument("--until", help=argparse.SUPPRESS)
    opts = parser.parse_args(argv)
    if opts.child:
        child(opts.limit, opts.since, opts.until)
        return
    if not 1 <= opts.baseline < opts.beacons:
        parser.error("--baseline must be at least 1 and below --beacons")

    key_ring_json = s.new_key_ring_json()
    now = datetime.now(UTC)
    since = (now - timedelta(days=opts.days)).replace(hour=0, minute=0, second=0, microsecond=0)
    until = now + timedelta(seconds=1)
    with s.dynamodb_local() as (endpoint, launcher):
        print(f"DynamoDB Local in memory at {endpoint} ({launcher})")
        s.create_tables(s.local_client(endpoint), s.table_specs())
        env = s.core_environment(key_ring_json, dynamodb_endpoint=endpoint)
        s.apply_environment(env)
        _bind(_EXPORT_SETTINGS)
        loaded_s = load(opts.beacons, now, opts.days, opts.seed)
        print(
            f"loaded {opts.beacons:,} beacons over {opts.days} days with Beacon.batch_write() "
            f"({LOAD_WORKERS} threads) in {loaded_s:.1f} s ({opts.beacons / loaded_s:,.0f} items/s)"
        )
        baseline = run_child(env, opts.baseline, since, until)
        full = run_child(env, opts.beacons, since, until)

    for name, found, expected in (("baseline", baseline, opts.baseline), ("full", full, opts.beacons)):
        if found["rows"] != expected:
            raise RuntimeError(f"the {name} child exported {found['rows']} rows, expected {expected}")
    ratio = full["vm_hwm_kb"] / baseline["vm_hwm_kb"]
    rows = [
        [
            f"{found['rows']:,} beacons",
            _mb(found["vm_hwm_before_export_kb"]),
            _mb(found["vm_hwm_first_row_kb"]),
            _mb(found["vm_hwm_kb"]),
            _mb(found["wait4_maxrss_kb"]),
            f"{found['seconds']:.2f} s",
            f"{found['rows'] / found['seconds']:,.0f}",
        ]
        for found in (baseline, full)
    ]
    print()
    print(
        "Export through beacons_between + to_record + csv.writer to /dev/null, one child process each "
        "(same code; the baseline stops early)"
    )
    print(
        s.table(
            ["export", "after imports", "after 1st row", "peak (VmHWM)", "peak (wait4)", "time", "rows/s"],
            rows,
        )
    )
    print()
    difference = full["vm_hwm_kb"] - baseline["vm_hwm_kb"]
    print(
        f"peak difference: {_mb(difference)} ({ratio:.2f}x the baseline's peak, for "
        f"{opts.beacons / opts.baseline:.0f}x the rows)"
    )
    print(
        s.table(
            ["target", "measured", "limit", "verdict"],
            [
                [
                    f"peak ratio {opts.beacons:,}/{opts.baseline:,}",
                    f"{ratio:.2f}",
                    f"<= {BOUNDED_RATIO}",
                    s.verdict(ratio, BOUNDED_RATIO),
                ]
            ],
        )
    )
    print("  peak (VmHWM): /proc/self/status, read by the child at its end; peak (wait4): the child's")
    print("  ru_maxrss as the parent collected it, which Linux keeps across exec, so it is never below")
    print("  this parent's RSS when it forked; after imports / after 1st row: VmHWM before the")
    print("  first query, and once the first row is out (heapq.merge has read a page of every shard).")
    print()
    print(f"rerun: {s.rerun_command(argv)}")


if __name__ == "__main__":
    main()
