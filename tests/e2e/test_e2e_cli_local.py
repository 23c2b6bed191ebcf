"""The README's snippets, run as printed against ``webbugger local`` (what ``make run`` starts),
and the CLI seeing that stack's parameters and plugins from its stack.json.

Local only (a deployed stack is not what the README's five minutes use), through the default
front door (the HTTP API: `make run`'s). Commands run as a user's shell runs them: ``uv run
webbugger`` is the environment's console script, in a fresh directory, without
``ALLOWED_REDIRECT_HOSTS`` (the stack was started with it: see conftest.py).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from webbugger.gif import TRANSPARENT_GIF
from webbugger_cli.commands.doctor.fetch import fetch

if TYPE_CHECKING:
    from conftest import E2EStack

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
# What conftest.py starts the local stack with.
ALLOWED_HOSTS_VARIABLE = "ALLOWED_REDIRECT_HOSTS"
LOCAL_ALLOWED_HOSTS = "example.com"
WEBBUGGER = Path(sys.executable).with_name("webbugger")


@pytest.fixture
def local(e2e_stack: E2EStack) -> E2EStack:
    if e2e_stack.cli_options:
        pytest.skip("the README's snippets are for the local stack")
    if e2e_stack.outputs.get("FrontDoor") != "http-api":
        pytest.skip("`make run` serves the HTTP API: once is enough")
    return e2e_stack


def _shell(local: E2EStack, line: str) -> subprocess.CompletedProcess[str]:
    """One line of a snippet, in bash from the clone, with ``uv run webbugger`` the environment's
    console script."""
    env = {k: v for k, v in os.environ.items() if k not in (ALLOWED_HOSTS_VARIABLE, "WEBBUGGER_PLUGINS")}
    command = line.replace("uv run webbugger", shlex.quote(str(WEBBUGGER)))
    return subprocess.run(
        ["bash", "-c", command],
        cwd=ROOT,
        env={**env, **local.cli_env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _block(after: str, language: str) -> str:
    """The first ```language block after the heading ``after``."""
    section = README.split(after, 1)[1]
    found = re.search(rf"```{language}\n(.*?)```", section, flags=re.DOTALL)
    assert found, f"README.md has no ```{language} block after {after!r}"
    return found.group(1)


def test_five_minutes_with_it(local: E2EStack, tmp_path: Path) -> None:
    lines = [line for line in _block("## Five minutes with it", "sh").splitlines() if line.strip()]
    outputs: dict[str, str] = {}
    for line in lines:
        command = re.split(r"\s{2,}#", line, maxsplit=1)[0].strip()  # the line's comment aside
        for name, value in {**outputs, "report.html": str(tmp_path / "report.html")}.items():
            command = command.replace(name, value)
        done = _shell(local, command)
        assert done.returncode == 0, (command, done.stderr)
        assert "Traceback" not in done.stderr
        if "link create" in command:
            outputs["ID"] = done.stdout.strip()
        elif "url redirect" in command:
            outputs["REDIRECT_URL"] = done.stdout.strip()
            assert outputs["REDIRECT_URL"].startswith(f"{local.tracking_url.rstrip('/')}/r/")
        elif command.startswith("curl"):
            # The snippet's own comment says what to expect.
            assert done.stdout.strip() == line.split("#")[-1].strip()
        elif "--json" in command:
            records = [json.loads(row) for row in done.stdout.splitlines()]
            assert {record["target"] for record in records} == {f"link:{outputs['ID']}"}
    assert set(outputs) == {"ID", "REDIRECT_URL"}
    assert "<html" in (tmp_path / "report.html").read_text()[:500].lower()


def test_the_pixel_snippet(local: E2EStack) -> None:
    # The <img> of the README with a pixel minted by the CLI in place of its example URL.
    html = _block("mint one\nper recipient and wrap every link:", "html")
    pixel = _shell(local, "uv run webbugger url pixel --for email")
    assert pixel.returncode == 0, pixel.stderr
    example = re.search(r'src="([^"]+)"', html)
    assert example
    src = re.search(r'src="([^"]+)"', html.replace(example.group(1), pixel.stdout.strip()))
    assert src
    assert fetch(src.group(1)).body == TRANSPARENT_GIF


def test_the_cli_uses_the_stacks_parameters_and_types(local: E2EStack) -> None:
    announced = json.loads((Path(local.cli_env["WEBBUGGER_STATE_DIR"]) / "stack.json").read_text())
    assert announced["parameters"][ALLOWED_HOSTS_VARIABLE] == LOCAL_ALLOWED_HOSTS
    assert {"kind": "target", "name": "url", "hooks": None, "origin": "webbugger_plugins.url"} in (
        announced["types"]
    )
    # The shell has no ALLOWED_REDIRECT_HOSTS: the stack's applies.
    minted = _shell(local, "uv run webbugger url redirect --target url:https://example.com/e2e --json")
    assert minted.returncode == 0, minted.stderr
    answer = json.loads(minted.stdout)
    assert answer["target"] == "url:https://example.com/e2e"
    hit = fetch(answer["url"])
    assert (hit.status, hit.headers.get("location")) == (302, "https://example.com/e2e")


def test_the_email_snippet(local: E2EStack, tmp_path: Path) -> None:
    # The README's Email block as printed, with its files in a fresh directory and a campaign id
    # of this run's (the stack may have seen the README's own).
    campaign = f"spring-{os.urandom(4).hex()}"
    message = ROOT / "tests" / "newsletters" / "leemunroe-email-inlined.html"
    (tmp_path / "message.html").write_bytes(message.read_bytes())
    (tmp_path / "list.txt").write_text("alice@example.com\nbob@example.com\n")
    names = {
        "message.html": str(tmp_path / "message.html"),
        "list.txt": str(tmp_path / "list.txt"),
        "out/": f"{tmp_path / 'out'}/",
        "spring.html": str(tmp_path / "spring.html"),
        "spring-2026": campaign,
    }
    stats: dict[str, object] = {}
    for line in _block("## Email", "sh").splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        command = re.split(r"\s{2,}#", line, maxsplit=1)[0].strip()
        for name, value in names.items():
            command = command.replace(name, value)
        done = _shell(local, command)
        assert done.returncode == 0, (command, done.stderr)
        assert "Traceback" not in done.stderr
        if "stats" in command:
            stats = json.loads(done.stdout)
    assert (
        sorted(path.suffix for path in (tmp_path / "out").iterdir() if path.suffix == ".html")
        == [".html"] * 2
    )
    campaign_figures = stats["campaign"]
    assert isinstance(campaign_figures, dict)
    assert campaign_figures["sent"] == 2  # each recipient's send recorded once
    assert "<html" in (tmp_path / "spring.html").read_text()[:500].lower()
