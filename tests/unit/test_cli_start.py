"""What the command line imports and adopts when it starts, without a database.

Structural guards of its speed (bench/cli.py has the timings): minting a URL imports neither
botocore nor PynamoDB (~0.3 s of imports), nor does building the parser. And the running local
stack's parameters and plugins, published in its stack.json, are what the CLI checks against.
The "running stack" is this test process announced in a state dir (nothing listens at its
DynamoDB endpoint: a command that reached the database would fail here).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest
from webbugger.runtime import default_registry
from webbugger_cli.commands.types import type_entries

if TYPE_CHECKING:
    from pathlib import Path

RING = {"current": "t1", "t1": "k" * 40}
API_URL = "http://127.0.0.1:45678"
HEAVY = ("botocore", "boto3", "pynamodb")
# Runs the CLI in this child, then says which heavy packages it imported (on stderr's last line).
PROBE = """
import json, sys
from webbugger_cli.main import main
try:
    status = main(sys.argv[1:])
except SystemExit as exc:  # --help, --version
    status = exc.code
heavy = sorted({name.split(".")[0] for name in sys.modules} & set(HEAVY))
print(json.dumps(heavy), file=sys.stderr)
sys.exit(status)
"""


def announce(directory: Path, *, parameters: dict[str, str] | None, published_types: bool = True) -> Path:
    """A state dir naming this live process as the local stack, as `webbugger local` writes it."""
    (directory / "signing-keys.json").write_text(json.dumps(RING))
    stack = {
        "api_url": API_URL,
        "dynamodb_endpoint": "http://127.0.0.1:9",
        "pid": os.getpid(),
        "outputs": {"ApiUrl": API_URL, "BeaconsTableName": "beacons", "LinksTableName": "links"},
        "parameters": parameters,
        "types": type_entries(default_registry()) if published_types else None,
    }
    (directory / "stack.json").write_text(json.dumps(stack))
    return directory


def run(
    *args: str, state_dir: Path, env: dict[str, str] | None = None
) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """The CLI in a child process: its result (stderr without the probe's line) and the heavy
    packages it imported."""
    base = {k: v for k, v in os.environ.items() if k not in ("ALLOWED_REDIRECT_HOSTS", "WEBBUGGER_PLUGINS")}
    result = subprocess.run(
        [sys.executable, "-c", f"HEAVY = {HEAVY!r}\n{PROBE}", *args],
        capture_output=True,
        text=True,
        env={**base, "WEBBUGGER_STATE_DIR": str(state_dir), **(env or {})},
        timeout=60,
        check=False,
    )
    *lines, probe = result.stderr.splitlines()
    result.stderr = "".join(f"{line}\n" for line in lines)
    return result, json.loads(probe)


ALLOWED = {"ALLOWED_REDIRECT_HOSTS": "example.com", "WEBBUGGER_PLUGINS": ""}


@pytest.mark.parametrize(
    "args",
    [
        ("url", "pixel"),
        ("url", "pixel", "--for", "email", "--json"),
        ("url", "redirect", "--target", "url:https://example.com/x"),
        ("--help",),
        ("source", "--help"),
    ],
)
def test_minting_and_help_import_no_botocore(tmp_path: Path, args: tuple[str, ...]) -> None:
    result, heavy = run(*args, state_dir=announce(tmp_path, parameters=ALLOWED))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    assert heavy == []


def test_without_published_types_every_plugin_loads(tmp_path: Path) -> None:
    # A stack that did not publish its types (one a test starts in-process): all plugins load,
    # PynamoDB with them. Also shows the probe above sees botocore when it is there.
    state_dir = announce(tmp_path, parameters=ALLOWED, published_types=False)
    result, heavy = run("url", "pixel", state_dir=state_dir)
    assert result.returncode == 0, result.stderr
    assert heavy == ["botocore", "pynamodb"]


def test_an_unknown_type_is_refused_from_the_published_types(tmp_path: Path) -> None:
    result, _ = run("url", "pixel", "--source", "nosuch:x", state_dir=announce(tmp_path, parameters=ALLOWED))
    assert result.returncode == 1
    assert result.stderr == "webbugger: error: no source type named 'nosuch' is registered\n"


def test_url_json_carries_the_url_and_its_claims(tmp_path: Path) -> None:
    state_dir = announce(tmp_path, parameters=ALLOWED)
    result, _ = run("url", "redirect", "--target", "url:https://example.com/a", "--json", state_dir=state_dir)
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["url"].startswith(f"{API_URL}/r/")
    assert answer | {"url": ""} == {
        "url": "",
        "mode": "redirect",
        "target": "url:https://example.com/a",
        "purpose": "web",
    }


def test_the_stacks_allowed_hosts_are_used(tmp_path: Path) -> None:
    # The shell has none: the stack's list applies, as the track function would apply it.
    state_dir = announce(tmp_path, parameters=ALLOWED)
    result, _ = run("url", "redirect", "--target", "url:https://example.com/", state_dir=state_dir)
    assert result.returncode == 0, result.stderr
    refused, _ = run("url", "redirect", "--target", "url:https://other.example/", state_dir=state_dir)
    assert refused.returncode == 1
    assert refused.stderr.startswith("webbugger: error: host 'other.example' is not allowed")


def test_the_stack_wins_over_the_shell_and_says_so(tmp_path: Path) -> None:
    state_dir = announce(tmp_path, parameters=ALLOWED)
    shell = {"ALLOWED_REDIRECT_HOSTS": "other.example"}
    result, _ = run("url", "redirect", "--target", "url:https://example.com/", state_dir=state_dir, env=shell)
    assert result.returncode == 0, result.stderr
    assert result.stderr == (
        "webbugger: note: ALLOWED_REDIRECT_HOSTS='example.com' from the running local stack, not "
        "'other.example': restart `make run` with it to change it\n"
    )


def test_the_stacks_plugins_are_loaded(tmp_path: Path) -> None:
    # The stack was started with WEBBUGGER_PLUGINS naming a plugin; the CLI's shell names none.
    plugins = tmp_path / "plugins"
    plugins.mkdir()
    (plugins / "wb_start_extra.py").write_text(
        "def register(types):\n    types.source('partner', load=lambda partner_id: None)\n"
    )
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    announce(state_dir, parameters={**ALLOWED, "WEBBUGGER_PLUGINS": "wb_start_extra"}, published_types=False)
    path = os.pathsep.join(filter(None, [str(plugins), os.environ.get("PYTHONPATH")]))
    result, _ = run("types", "--json", state_dir=state_dir, env={"PYTHONPATH": path})
    assert result.returncode == 0, result.stderr
    names = {(entry["kind"], entry["name"]) for entry in map(json.loads, result.stdout.splitlines())}
    assert ("source", "partner") in names


def test_a_stack_that_published_nothing_leaves_the_shell_alone(tmp_path: Path) -> None:
    state_dir = announce(tmp_path, parameters=None)
    result, _ = run(
        "url",
        "redirect",
        "--target",
        "url:https://example.com/",
        state_dir=state_dir,
        env={"ALLOWED_REDIRECT_HOSTS": "example.com"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
