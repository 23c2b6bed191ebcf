"""A short atheris run of fuzz/fuzz_track.py (token decoder and track function) as part of the suite.

``make fuzz FUZZ_SECONDS=600`` runs the same harness longer, keeping its corpus under .local/fuzz.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pytest

HARNESS = Path(__file__).resolve().parents[2] / "fuzz" / "fuzz_track.py"
FUZZ_SECONDS = 5


def test_a_short_fuzz_run_finds_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    corpus = tmp_path / "corpus"
    monkeypatch.chdir(tmp_path)  # libFuzzer writes crash files to the working directory too
    done = subprocess.run(
        [
            sys.executable,
            str(HARNESS),
            f"-max_total_time={FUZZ_SECONDS}",
            "-timeout=10",
            "-rss_limit_mb=2048",
            f"-artifact_prefix={tmp_path}/",
            "-print_final_stats=1",
            str(corpus),
        ],
        capture_output=True,
        text=True,
        timeout=FUZZ_SECONDS + 60,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-4000:]
    assert not list(tmp_path.glob("crash-*")), output[-4000:]
    # It really ran: every seed (valid paths on every route, and the inputs that once crashed the
    # handler) went through the checks, then some mutations of them.
    seeded = len(list(corpus.glob("seed-*")))
    assert seeded >= 20
    runs = re.search(r"Done (\d+) runs", output)
    assert runs is not None, output[-4000:]
    assert int(runs.group(1)) > seeded, output[-4000:]
