"""Classification in the stream function: accuracy on public user agents, and what it costs.

1. **Accuracy**, the issue's figures: every user agent of the public sets
   (tests/unit/corpus/public_user_agents.py cites each) through ``webbugger classify --jsonl``,
   run as a user runs it; the share of machines given a machine class and of browsers ``human``,
   per set and per class.
2. **Which list knows what**, the measurement behind the choice of lists: each list alone
   (crawlerdetect, crawler-user-agents, device-detector's bot parser, ua-parser's "Spider")
   against every set. A list knows its own set by construction; the other columns say how it does
   on user agents it was not written for.
3. **Cost**: the stream function's cold start for classification (a fresh interpreter: import +
   ``warm_up()``) and the per-record cost of ``classify_hit`` + ``parse_device`` (every user agent
   new, and the same ones again from the per-user-agent cache), against the **baseline** of the
   previous classifier's libraries in the same run (crawlerdetect + ua-parser only, what
   ``webbugger.classify`` used before the maintained lists came in). Also: the first load of the
   cloud ranges, paid by the first fast hit on an email URL only.

Run: ``uv run python bench/classify.py [--runs N] [--records N] [--out DIR]``
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import _support as s

sys.path.insert(0, str(s.ROOT / "tests" / "unit"))
from corpus.public_user_agents import SETS, every_nth

if TYPE_CHECKING:
    from collections.abc import Callable

WEBBUGGER = Path(sys.executable).parent / "webbugger"

# The timed children: import and warm up, the new classifier or the baseline's libraries.
_COLD_NEW = """
import time
started = time.perf_counter()
from webbugger.classify import warm_up
warm_up()
print(time.perf_counter() - started)
"""
_CLOUD = """
import time
from webbugger import networks
started = time.perf_counter()
networks.cloud_ranges()
print(time.perf_counter() - started)
"""
_COLD_BASELINE = """
import time
started = time.perf_counter()
from crawlerdetect import CrawlerDetect
from ua_parser import parse
CrawlerDetect().isCrawler("Mozilla/5.0 (X11; Linux x86_64) warm-up")
parse("Mozilla/5.0 (X11; Linux x86_64) warm-up")
print(time.perf_counter() - started)
"""


def accuracy(out: Path) -> list[str]:
    """Write each set as JSON lines, run ``webbugger classify --jsonl`` on it, tabulate."""
    lines = ["1. accuracy: `webbugger classify --jsonl FILE` on every user agent of every set"]
    rows, totals = [], {"machine": Counter[str](), "browser": Counter[str]()}
    for (kind, source), load in SETS.items():
        agents = load()
        path = out / f"{kind}s-{source}.jsonl"
        path.write_text(
            "".join(json.dumps({"user_agent": agent}) + "\n" for agent in agents), encoding="utf-8"
        )
        done = subprocess.run(
            [str(WEBBUGGER), "classify", "--jsonl", str(path)], capture_output=True, text=True, check=True
        )
        given = Counter(json.loads(line)["classification"] for line in done.stdout.splitlines())
        assert sum(given.values()) == len(agents), (source, len(agents))
        totals[kind] += given
        right = len(agents) - given["human"] if kind == "machine" else given["human"]
        classes = ", ".join(f"{cls} {n}" for cls, n in given.most_common())
        rows.append([f"{kind}s: {source}", str(len(agents)), f"{right / len(agents):.2%}", classes])
        lines.append(f"  uv run webbugger classify --jsonl {path}")
    for kind, given in totals.items():
        total = sum(given.values())
        right = total - given["human"] if kind == "machine" else given["human"]
        target = "97%" if kind == "machine" else "99.5%"
        label = "labelled a machine class" if kind == "machine" else "labelled human"
        rows.append([f"ALL {kind}s ({label}, target >= {target})", str(total), f"{right / total:.2%}", ""])
    lines.append(s.table(["set", "user agents", "right", "classes given"], rows))
    return lines


def _detectors() -> dict[str, Callable[[str], bool]]:
    from webbugger import agents

    return {
        "crawlerdetect": agents.is_crawler,
        "crawler-user-agents": lambda ua: agents._crawler_user_agents_class(ua) is not None,
        "device-detector": lambda ua: agents._device_detector(ua) is not None,
        "ua-parser Spider": lambda ua: agents.parse_device(ua).device == "Spider",
    }


def lists(per_set: int) -> list[str]:
    """Each list alone against every set (machines: share caught; browsers: share flagged)."""
    sets = {key: every_nth(load(), per_set) for key, load in SETS.items()}
    rows = []
    for name, flags in _detectors().items():
        row = [name]
        for agents in sets.values():
            row.append(f"{sum(1 for ua in agents if flags(ua)) / len(agents):.1%}")
        rows.append(row)
    headers = ["list alone", *(f"{kind}s: {source}" for kind, source in sets)]
    return [
        f"2. which list knows what (each set sampled evenly to at most {per_set}; machines: caught, "
        "browsers: wrongly flagged)",
        s.table(headers, rows),
    ]


def _children(code: str, runs: int) -> list[float]:
    env = s.child_environment({})
    return [
        float(
            subprocess.run(
                [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
            ).stdout
        )
        for _ in range(runs)
    ]


def _per_record(classify: Callable[[str], object], agents: list[str]) -> float:
    started = time.perf_counter()
    for agent in agents:
        classify(agent)
    return (time.perf_counter() - started) / len(agents) * 1e6


# User agents per turn of the per-record comparison. The sides take turns (the same load) on
# alternate user agents of the same mix (ua-parser caches what it parsed: no side may see the
# other's user agents).
CHUNK = 100


def cost(runs: int, records: int) -> list[str]:
    """Cold start and per-record cost, the new classifier against the baseline's libraries."""
    new, base = [], []
    for _ in range(runs):  # interleaved
        new += _children(_COLD_NEW, 1)
        base += _children(_COLD_BASELINE, 1)
    from crawlerdetect import CrawlerDetect  # type: ignore[import-untyped]
    from ua_parser import parse
    from webbugger import agents, classify

    mixed = [*every_nth(SETS[("browser", "device-detector")](), records // 2)]
    mixed += every_nth(SETS[("machine", "crawlerdetect")](), records - len(mixed))
    detector = CrawlerDetect()
    classify.warm_up()

    def baseline(ua: str) -> object:
        return detector.isCrawler(ua), parse(ua)

    def current(ua: str) -> object:
        return classify.classify_hit(classify.Hit(user_agent=ua)), classify.parse_device(ua)

    def clear() -> None:
        for cached in (agents.listed_machine, agents.parse_device, agents.is_crawler):
            cached.cache_clear()

    clear()
    base_turns, new_turns = [], []
    for start in range(0, len(mixed) // 2, CHUNK):
        base_turns.append(_per_record(baseline, mixed[0::2][start : start + CHUNK]))
        new_turns.append(_per_record(current, mixed[1::2][start : start + CHUNK]))
    base_us, new_us = s.median(base_turns), s.median(new_turns)
    cached_us = _per_record(current, mixed[1::2])
    cloud_s = s.median(_children(_CLOUD, runs))
    rows = [
        [
            "cold start: import + warm_up, ms (median)",
            f"{s.median(new) * 1000:.0f}",
            f"{s.median(base) * 1000:.0f}",
            f"{s.median(new) / s.median(base):.2f}",
        ],
        [
            f"per record, new user agents, µs (median of {len(new_turns)} turns of {CHUNK})",
            f"{new_us:.0f}",
            f"{base_us:.0f}",
            f"{new_us / base_us:.2f}",
        ],
        ["per record, cached user agents, µs", f"{cached_us:.1f}", "-", "-"],
        ["cloud ranges, first load (first fast email hit), ms (median)", f"{cloud_s * 1000:.0f}", "-", "-"],
    ]
    return [
        f"3. cost ({runs} fresh interpreters per side for the cold start; 2 CPUs, noisy)",
        s.table(["measured", "classifier", "baseline", "ratio"], rows),
        "  baseline: crawlerdetect + ua-parser only (the previous classifier's libraries), same packages",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5, help="fresh interpreters per side (cold start)")
    parser.add_argument("--records", type=int, default=4000, help="user agents for the per-record cost")
    parser.add_argument("--per-set", type=int, default=3000, help="user agents per set for the list table")
    parser.add_argument(
        "--out", type=Path, default=None, help="where the JSON-lines files go (default: temp)"
    )
    args = parser.parse_args()
    print(s.compile_bytecode())
    out = args.out or Path(tempfile.mkdtemp(prefix="webbugger-classify-"))
    out.mkdir(parents=True, exist_ok=True)
    for block in (accuracy(out), lists(args.per_set), cost(args.runs, args.records)):
        print("\n" + "\n".join(block))
    print(f"\nrerun: {s.rerun_command()}")


if __name__ == "__main__":
    main()
