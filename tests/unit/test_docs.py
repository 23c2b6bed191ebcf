"""The README stays a front page and its links reach the reference in docs/; the docs build that
`make test` runs fails on a broken link (mkdocs build --strict, as the Makefile's docs target)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
# A Markdown link's target: [text](target), not an image, not inside backticks.
LINK = re.compile(r"(?<!!)\[[^\]`]*\]\(([^)\s]+)\)")


def _docs_recipe() -> str:
    """The commands of the Makefile's ``docs`` target, as make would run them."""
    done = subprocess.run(
        ["make", "--no-print-directory", "-n", "docs", "UV=uv", "-o", "setup"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def test_readme_is_under_12_kb() -> None:
    assert README.stat().st_size < 12 * 1024, "the reference goes in docs/, not the README"


def test_readme_keeps_the_two_commands() -> None:
    text = README.read_text()
    assert "make run" in text
    assert "make test" in text


def test_readme_links_reach_files_of_this_repository() -> None:
    targets = [t for t in LINK.findall(README.read_text()) if not re.match(r"[a-z]+:", t)]
    assert any(t.startswith("docs/") for t in targets)
    for target in targets:
        path = target.split("#", 1)[0]
        assert (ROOT / path).is_file(), f"README links to {target}, which is not a file"


def test_every_docs_page_is_in_the_nav() -> None:
    config = (ROOT / "mkdocs.yml").read_text()
    for page in sorted((ROOT / "docs").glob("*.md")):
        assert f": {page.name}" in config, f"docs/{page.name} is not in mkdocs.yml's nav"


def test_the_docs_build_fails_on_a_broken_link(tmp_path: Path) -> None:
    recipe = _docs_recipe()
    assert "mkdocs build --strict" in recipe
    # --quiet (or -q) silences the warnings --strict counts: a broken link would then pass.
    assert not re.search(r"mkdocs build.*(--quiet|\s-q\b)", recipe)
    shutil.copytree(ROOT / "docs", tmp_path / "docs")
    shutil.copy(ROOT / "mkdocs.yml", tmp_path / "mkdocs.yml")
    build = [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")]
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    page = tmp_path / "docs" / "layout.md"
    page.write_text(page.read_text() + "\nSee [privacy](privacy.md#no-such-section).\n")
    broken = subprocess.run(build, cwd=tmp_path, capture_output=True, text=True, env=env)
    assert broken.returncode != 0
    assert "no-such-section" in broken.stderr
