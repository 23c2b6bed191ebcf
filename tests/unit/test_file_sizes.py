"""No source file of the functions, the layers or the CLI grows past what a newcomer can hold.

The project keeps files under ~400 lines and splits a file rather than grow it (issue 12 set the
limit for functions/ and layers/; the CLI is held to it too). Tests and benchmarks are not
counted: a test file reads as a list of cases.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable

ROOT = Path(__file__).resolve().parents[2]
MAX_LINES = 400
# Where the limit holds.
LIMITED = (ROOT / "functions", ROOT / "layers", ROOT / "cli")


def long_files(directories: Iterable[Path], max_lines: int = MAX_LINES) -> list[str]:
    """``path: N lines`` of every Python file under ``directories`` longer than ``max_lines``."""
    found = []
    for directory in directories:
        for file in sorted(directory.rglob("*.py")):
            if "__pycache__" in file.parts:
                continue
            lines = len(file.read_text(encoding="utf-8").splitlines())
            if lines > max_lines:
                found.append(f"{file.relative_to(directory.parent)}: {lines} lines")
    return found


def test_no_source_file_is_over_the_limit() -> None:
    assert all(directory.is_dir() for directory in LIMITED)
    assert long_files(LIMITED) == [], f"split these files (at most {MAX_LINES} lines each)"


def test_the_check_finds_a_file_over_the_limit(tmp_path: Path) -> None:
    package = tmp_path / "cli" / "pkg"
    package.mkdir(parents=True)
    (package / "short.py").write_text("x = 1\n" * MAX_LINES)
    assert long_files([tmp_path / "cli"]) == []
    (package / "long.py").write_text("x = 1\n" * (MAX_LINES + 1))
    (package / "__pycache__").mkdir()
    (package / "__pycache__" / "cached.py").write_text("x = 1\n" * (MAX_LINES + 1))
    assert long_files([tmp_path / "cli"]) == [f"cli/pkg/long.py: {MAX_LINES + 1} lines"]
