"""Cold start before and after a change: the track handler of a git ref against this tree's.

Three sides, interleaved, a fresh interpreter per run: the handler import with the ref's
``layers/`` and ``functions/track`` (exported with ``git archive`` into a temporary directory and
put first on ``PYTHONPATH``), the handler import of this tree, and ``import pynamodb.models``.
Each child measures wall clock and process CPU time. The two handler sides share one run, so a
change of a few milliseconds shows above the load's drift, which moves one run of
bench/cold_start.py's median ratio by about 0.03.

Run: ``uv run python bench/cold_start_ab.py [--ref main] [--runs N]``
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import _support as s
from cold_start import IMPORT_HANDLER, IMPORT_PYNAMODB


def _with_cpu_time(code: str) -> str:
    """The child ``code`` reporting its process CPU time too."""
    code = code.replace("t0 = time.perf_counter()", "t0 = time.perf_counter(); c0 = time.process_time()")
    code = code.replace("t1 = time.perf_counter()", "t1 = time.perf_counter(); c1 = time.process_time()")
    return code.replace('{"ms": (t1 - t0) * 1000}', '{"ms": (t1 - t0) * 1000, "cpu": (c1 - c0) * 1000}')


def main(argv: list[str] | None = None) -> None:
    """Run the comparison and print its table."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--ref", default="main", help="the git ref of the 'before' side")
    parser.add_argument("--runs", type=int, default=60, help="fresh interpreters per side")
    opts = parser.parse_args(argv)

    print(s.compile_bytecode())
    env = s.child_environment(s.core_environment(s.new_key_ring_json()))
    with tempfile.TemporaryDirectory() as temporary:
        before = Path(temporary)
        archive = subprocess.run(
            ["git", "archive", opts.ref, "layers", "functions/track"],
            cwd=s.ROOT,
            capture_output=True,
            check=True,
        )
        subprocess.run(["tar", "-x", "-C", str(before)], input=archive.stdout, check=True)
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(before)], check=True)
        before_env = {**env, "PYTHONPATH": f"{before / 'layers' / 'core'}:{before / 'layers' / 'plugins'}"}
        handler = _with_cpu_time(IMPORT_HANDLER)
        sides = [
            (
                f"handler import, {opts.ref}",
                handler,
                [str(before / "functions" / "track" / "app.py")],
                before_env,
            ),
            ("handler import, this tree", handler, [str(s.HANDLER_FILE)], env),
            ("import pynamodb.models", _with_cpu_time(IMPORT_PYNAMODB), [], env),
        ]
        times: dict[str, dict[str, list[float]]] = {label: {"ms": [], "cpu": []} for label, *_ in sides}
        for i in range(opts.runs + 1):  # run 0: an unrecorded warm-up of each side
            for label, code, args, side_env in sides[i % 3 :] + sides[: i % 3]:
                done = subprocess.run(
                    [sys.executable, "-c", code, *args],
                    env=side_env,
                    capture_output=True,
                    text=True,
                    check=True,
                )
                result = json.loads(done.stdout.strip().splitlines()[-1])
                if i:
                    times[label]["ms"].append(result["ms"])
                    times[label]["cpu"].append(result["cpu"])

    baseline = times["import pynamodb.models"]
    rows = []
    for label, measured in times.items():
        rows.append(
            [
                label,
                f"{s.median(measured['ms']):.1f}",
                f"{s.median(measured['ms']) / s.median(baseline['ms']):.3f}",
                f"{s.median(measured['cpu']):.1f}",
                f"{s.median(measured['cpu']) / s.median(baseline['cpu']):.3f}",
            ]
        )
    print()
    print(f"Cold start, {opts.runs} interleaved runs a side; ratios of medians to `import pynamodb.models`")
    print(s.table(["side", "wall ms", "wall ratio", "CPU ms", "CPU ratio"], rows))
    print()
    print(f"rerun: {s.rerun_command(argv)}")


if __name__ == "__main__":
    main()
