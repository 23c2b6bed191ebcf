"""How fast the command line answers: ``webbugger url pixel`` / ``url redirect`` against ``python -c pass``.

Each run is a fresh process (the console script ``webbugger`` of the virtual environment, as
``uv run webbugger`` starts it, without uv's own start-up), the commands interleaved, medians of
the wall-clock times compared with ``python -c pass`` measured in the same run. The local stack
is played by a state directory announcing this process as the running stack, with the types the
built-in plugins register and ``ALLOWED_REDIRECT_HOSTS`` (what ``make run`` publishes): minting
signs with the local key ring and reads no table, so no database is needed.

Twice: with .pyc files (compiled first, as a second run on a usual machine finds them), and as a
user of this machine meets it: it sets ``PYTHONDONTWRITEBYTECODE=1`` and ``uv sync`` compiles
nothing, so every run compiles the project's and site-packages' modules again (played by
``PYTHONPYCACHEPREFIX`` pointing at a directory holding only the standard library's .pyc).

Target: ``url pixel`` and ``url redirect`` (a ``url:`` target) under 0.4 s. The ``--entity ip``
row is for information: it loads the ``ip`` plugin, whose PynamoDB model costs botocore.

Run: ``uv run python bench/cli.py [--runs N]``
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import sysconfig
import tempfile
import time
from pathlib import Path

import _support as s

TARGET_SECONDS = 0.4
WEBBUGGER = Path(sys.executable).with_name("webbugger")
COMMANDS: dict[str, list[str]] = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "webbugger url pixel": [str(WEBBUGGER), "url", "pixel"],
    "webbugger url redirect --target url:https://example.com/": [
        str(WEBBUGGER),
        "url",
        "redirect",
        "--target",
        "url:https://example.com/",
    ],
    "webbugger url pixel --entity ip --for email (info)": [
        str(WEBBUGGER),
        "url",
        "pixel",
        "--entity",
        "ip",
        "--for",
        "email",
    ],
}
TARGETED = ("webbugger url pixel", "webbugger url redirect --target url:https://example.com/")


def announce_stack(directory: Path) -> None:
    """A state directory whose stack.json names this (live) process as the running local stack."""
    from webbugger.runtime import default_registry
    from webbugger_cli.commands.types import type_entries

    (directory / "signing-keys.json").write_text(s.new_key_ring_json())
    api_url = "http://127.0.0.1:3000"
    stack = {
        "api_url": api_url,
        "dynamodb_endpoint": "http://127.0.0.1:9",  # never reached: minting reads no table
        "pid": os.getpid(),
        "outputs": {"ApiUrl": api_url, "BeaconsTableName": "b", "LinksTableName": "l"},
        "state_dir": str(directory),
        "parameters": {"ALLOWED_REDIRECT_HOSTS": "example.com", "WEBBUGGER_PLUGINS": ""},
        "types": type_entries(default_registry()),
    }
    (directory / "stack.json").write_text(json.dumps(stack))


def time_once(argv: list[str], env: dict[str, str]) -> float:
    """Seconds from start to exit of one process; it must succeed."""
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed: {done.stderr.strip()}")
    return elapsed


def measure(runs: int, env: dict[str, str]) -> dict[str, float]:
    """Median seconds of each command, the commands interleaved, one untimed warm-up round."""
    times: dict[str, list[float]] = {label: [] for label in COMMANDS}
    for round_number in range(runs + 1):
        for label, argv in COMMANDS.items():
            elapsed = time_once(argv, env)
            if round_number:
                times[label].append(elapsed)
    return {label: s.median(values) for label, values in times.items()}


def report(title: str, medians: dict[str, float]) -> str:
    baseline = medians["python -c pass"]
    rows = []
    for label, value in medians.items():
        target = (
            f"< {TARGET_SECONDS} s: {'met' if value < TARGET_SECONDS else 'NOT met'}"
            if label in TARGETED
            else ""
        )
        rows.append([label, f"{value * 1000:.1f}", f"{value / baseline:.1f}x", target])
    return f"{title}\n" + s.table(["command", "median ms", "/ python -c pass", "target"], rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--runs", type=int, default=15, help="timed runs of each command (default: 15)")
    args = parser.parse_args()
    print(s.compile_bytecode())
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(s.ROOT / "cli")], check=True)
    with tempfile.TemporaryDirectory() as state_dir, tempfile.TemporaryDirectory() as no_pyc:
        announce_stack(Path(state_dir))
        stdlib = sysconfig.get_paths()["stdlib"]
        skipped = r"[/\\](test|tests|idlelib|tkinter|lib2to3|site-packages)[/\\]"
        compile_stdlib = [sys.executable, "-m", "compileall", "-q", "-j", "2", "-x", skipped, stdlib]
        subprocess.run(compile_stdlib, env={**os.environ, "PYTHONPYCACHEPREFIX": no_pyc}, check=False)
        env = {
            **{
                k: v
                for k, v in os.environ.items()
                if k not in ("ALLOWED_REDIRECT_HOSTS", "WEBBUGGER_PLUGINS")
            },
            "WEBBUGGER_STATE_DIR": state_dir,
        }
        print(f"{args.runs} runs a command, interleaved; load average {os.getloadavg()[0]:.1f}")
        print(report("with .pyc (cli/ compiled too)", measure(args.runs, env)))
        print(
            report(
                "without .pyc but the standard library's (this machine's default)",
                measure(args.runs, {**env, "PYTHONPYCACHEPREFIX": no_pyc}),
            )
        )
    print(f"rerun: {s.rerun_command()}")


if __name__ == "__main__":
    main()
