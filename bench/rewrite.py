"""Email rewriting: what a batch costs per recipient, parsed once versus parsed per recipient.

For each newsletter of tests/newsletters, interleaved after a warm-up:

- **(a) per recipient, parsed each time**: ``rewrite_message`` for one recipient (the baseline:
  parse, find the pixel's spot, sign, splice);
- **(b) per recipient, parsed once**: ``render`` of a plan made once (what ``webbugger email
  rewrite --recipients`` does): sign and splice only;
- **(c) the plan**: ``plan_message`` alone, once per message and batch.

In memory, no database (the link store is a dict): the figures are the core's own work.

Run: ``uv run python bench/rewrite.py [--rounds N] [--warmup W]``
"""

from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING

import _support as s
from webbugger.minting import tracking_url
from webbugger.refs import Ref
from webbugger.rewrite import plan_message, render, resolve_links, rewrite_message
from webbugger.tokens import KeyRing

if TYPE_CHECKING:
    from pathlib import Path

NEWSLETTERS = s.ROOT / "tests" / "newsletters"
BASE = "https://t.example.com"
RING = KeyRing("k1", {"k1": b"bench-key-" + b"x" * 32})
CAMPAIGN = Ref("campaign", "bench")


def _mint(claims: object) -> str:
    return tracking_url(BASE, claims, RING)  # type: ignore[arg-type]


def _time_ms(call: object, samples: list[float]) -> None:
    started = time.perf_counter()
    call()  # type: ignore[operator]
    samples.append((time.perf_counter() - started) * 1000)


def measure(path: Path, rounds: int, warmup: int) -> list[str]:
    """One row: the message's size and links, the three sides' medians and the ratio (a)/(b)."""
    source = path.read_text(encoding="utf-8")
    stored: dict[str, str] = {}

    def link_id_for(url: str) -> str:
        return stored.setdefault(url, f"l{len(stored)}")

    plan = plan_message(source)
    links = resolve_links(plan, link_id_for)
    who = Ref("recipient", "ada@example.com")

    def each() -> None:
        rewrite_message(source, recipient=who, campaign=CAMPAIGN, link_id_for=link_id_for, mint=_mint)

    def once() -> None:
        render(plan, links, _mint, recipient=who, campaign=CAMPAIGN)

    def planning() -> None:
        plan_message(source)

    sides: dict[str, list[float]] = {"each": [], "once": [], "plan": []}
    for index in range(warmup + rounds):
        for name, call in (("each", each), ("once", once), ("plan", planning)):
            samples = sides[name] if index >= warmup else []
            _time_ms(call, samples)
    each_ms, once_ms, plan_ms = (s.median(sides[name]) for name in ("each", "once", "plan"))
    return [
        path.name,
        f"{len(source) / 1024:.1f}",
        str(len(plan.html_links)),
        f"{each_ms:.2f}",
        f"{once_ms:.3f}",
        f"{plan_ms:.2f}",
        f"{each_ms / once_ms:.0f}x",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=5)
    args = parser.parse_args()
    rows = [measure(path, args.rounds, args.warmup) for path in sorted(NEWSLETTERS.glob("*.html"))]
    headers = ["message", "KiB", "links", "(a) parsed each time, ms", "(b) parsed once, ms", "(c) plan, ms"]
    print(s.table([*headers, "(a)/(b)"], rows))
    print(f"\nmedians of {args.rounds} rounds after {args.warmup} warm-up; rerun: {s.rerun_command()}")


if __name__ == "__main__":
    main()
