"""Broken plugins fail loudly and early; misbehaving hooks never cost the visitor an answer.

- a plugin that does not load stops the track function's cold start (one critical log line), the
  CLI (one stderr line, exit 1) and ``webbugger local`` (one line, no DynamoDB Local left behind);
- an inline hook that raises or overruns its budget is logged and counted, and the visitor still
  gets the GIF or the redirect.

The test plugins are ``tests.plugins_for_tests.<module>``: the repository root goes on
``sys.path`` in-process and on ``PYTHONPATH`` for subprocesses.
"""

from __future__ import annotations

import base64
import json
import logging
import os
import subprocess
import sys
import time
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import moto_stack
import pytest
from moto import mock_aws
from moto_stack import Handler
from webbugger import runtime
from webbugger.gif import TRANSPARENT_GIF
from webbugger.minting import tracking_url
from webbugger.models import Beacon
from webbugger.modes import Mode
from webbugger.observability import logger
from webbugger.plugins import PLUGINS_VARIABLE, PluginLoadError
from webbugger.refs import Ref
from webbugger.tokens import KeyRing, TokenClaims
from webbugger_cli.local.ddblocal import free_port
from webbugger_cli.template import load_handler
from webbugger_plugins.link import create_link

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "tests.plugins_for_tests"
BROKEN = {
    "import": f"{PACKAGE}.broken_import",
    "no register": f"{PACKAGE}.no_register",
    "raising register": f"{PACKAGE}.raising_register",
    "clashing name": f"{PACKAGE}.clashing",
}
REASONS = {
    "import": "failed to import",
    "no register": "has no register(types) function",
    "raising register": "failed in register()",
    "clashing name": "target type 'link'",
}
RAISING_HOOK = f"{PACKAGE}.raising_hook"
SLOW_HOOK = f"{PACKAGE}.slow_hook"
TRACK_CODE_URI = ROOT / "functions" / "track"
# The name load_handler gives the track function's module (it caches it in sys.modules).
TRACK_MODULE = f"webbugger_function_{TRACK_CODE_URI.name}_app"
RING_JSON = json.dumps({"current": "k1", "k1": "B" * 48})
RING = KeyRing.from_json(RING_JSON)
UA = "Mozilla/5.0 (X11) BrokenPlugins/1.0"
WEBBUGGER = Path(sys.executable).parent / "webbugger"  # the console script `uv run webbugger` runs
LOCAL_EXIT_WITHIN_S = 60

FakeContext = partial(moto_stack.FakeContext, aws_request_id="c0ffee00-0000-4000-8000-000000000003")


def subprocess_env(**extra: str) -> dict[str, str]:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("AWS_PROFILE", "SIGNING_SECRET_ARN", "DYNAMODB_ENDPOINT", PLUGINS_VARIABLE)
    }
    pythonpath = [str(ROOT), *filter(None, [env.get("PYTHONPATH")])]
    return {**env, "PYTHONPATH": os.pathsep.join(pythonpath), "AWS_EC2_METADATA_DISABLED": "true", **extra}


def assert_one_line_naming(stderr: str, plugin: str, reason: str) -> None:
    assert "Traceback" not in stderr, stderr
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert plugin in lines[0]
    assert reason in lines[0]


# --- (a) the track function's cold start -------------------------------------------------------


@pytest.fixture
def fresh_track_module(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The next load_handler imports functions/track/app.py anew (a cold start), test plugins importable."""
    monkeypatch.syspath_prepend(str(ROOT))
    sys.modules.pop(TRACK_MODULE, None)
    runtime.reset()
    yield
    sys.modules.pop(TRACK_MODULE, None)  # later tests get a module loaded under their own environment
    runtime.reset()


def load_track_handler() -> Handler:
    handler: Handler = load_handler(TRACK_CODE_URI, "app.lambda_handler")
    return handler


@pytest.mark.parametrize("case", list(BROKEN))
def test_cold_start_with_a_broken_plugin_fails_with_one_critical_line(
    case: str,
    fresh_track_module: None,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    plugin = BROKEN[case]
    monkeypatch.setenv(PLUGINS_VARIABLE, plugin)
    caplog.set_level(logging.DEBUG)
    with pytest.raises(PluginLoadError) as caught:
        load_track_handler()
    assert plugin in str(caught.value)
    assert REASONS[case] in str(caught.value)
    critical = [record for record in caplog.records if record.levelno >= logging.CRITICAL]
    assert len(critical) == 1
    [line] = critical
    assert line.name == logger.name
    assert line.getMessage() == str(caught.value)
    formatted = json.loads(logger.registered_formatter.format(line))
    assert formatted["level"] == "CRITICAL"
    assert plugin in formatted["message"]


def test_cold_start_with_good_plugins_loads_them(
    fresh_track_module: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PLUGINS_VARIABLE, f"{PACKAGE}.good")
    assert callable(load_track_handler())
    assert runtime.default_registry().target("shelf").origin == f"{PACKAGE}.good"


def test_a_failed_cold_start_leaves_no_half_loaded_function_behind(
    fresh_track_module: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(PLUGINS_VARIABLE, BROKEN["import"])
    with pytest.raises(PluginLoadError):
        load_track_handler()
    monkeypatch.delenv(PLUGINS_VARIABLE)  # the plugin is fixed; the next cold start works
    runtime.reset()
    assert callable(load_track_handler())


# --- (b) the command line ------------------------------------------------------------------------


@pytest.fixture
def fake_stack(tmp_path: Path) -> Path:
    """A state dir announcing a local stack run by this (live) process (nothing listens)."""
    api_url = "http://127.0.0.1:45679"
    (tmp_path / "signing-keys.json").write_text(json.dumps({"current": "t1", "t1": "k" * 40}))
    stack = {
        "api_url": api_url,
        "dynamodb_endpoint": "http://127.0.0.1:9",
        "pid": os.getpid(),
        "outputs": {"ApiUrl": api_url, "BeaconsTableName": "beacons", "LinksTableName": "links"},
    }
    (tmp_path / "stack.json").write_text(json.dumps(stack))
    return tmp_path


def run_cli(*args: str, env: dict[str, str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(WEBBUGGER), *args], capture_output=True, text=True, env=env, timeout=timeout, check=False
    )


@pytest.mark.parametrize("case", list(BROKEN))
def test_cli_with_a_broken_plugin_says_so_in_one_line(case: str, fake_stack: Path) -> None:
    plugin = BROKEN[case]
    env = subprocess_env(WEBBUGGER_STATE_DIR=str(fake_stack), **{PLUGINS_VARIABLE: plugin})
    result = run_cli("url", "pixel", env=env)
    assert result.returncode == 1, result.stderr
    assert result.stdout == ""
    assert_one_line_naming(result.stderr, plugin, REASONS[case])
    assert result.stderr.startswith("webbugger: error: plugin ")


def test_cli_with_a_good_extra_plugin_works(fake_stack: Path) -> None:
    env = subprocess_env(WEBBUGGER_STATE_DIR=str(fake_stack), **{PLUGINS_VARIABLE: f"{PACKAGE}.good"})
    result = run_cli("url", "pixel", "--source", "fair:leipzig", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("http://127.0.0.1:45679/p/")


# --- (c) webbugger local -------------------------------------------------------------------------


def processes_mentioning(text: str) -> list[int]:
    """Ids of processes whose command line contains ``text``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline:
            found.append(int(entry.name))
    return found


@pytest.mark.parametrize("case", ["import", "clashing name"])
def test_local_stack_with_a_broken_plugin_stops_at_once(case: str, tmp_path: Path) -> None:
    plugin = BROKEN[case]
    state_dir = tmp_path / "state"
    env = subprocess_env(WEBBUGGER_STATE_DIR=str(state_dir), **{PLUGINS_VARIABLE: plugin})
    started = time.monotonic()
    try:
        result = run_cli("local", "--port", str(free_port()), env=env, timeout=LOCAL_EXIT_WITHIN_S)
    finally:
        # Whatever happened, end any DynamoDB Local this run started (its data lives in state_dir).
        leftovers = processes_mentioning(str(state_dir))
        for pid in leftovers:
            os.kill(pid, 9)
    assert leftovers == [], "webbugger local left DynamoDB Local running"
    assert result.returncode != 0
    assert time.monotonic() - started < LOCAL_EXIT_WITHIN_S
    assert_one_line_naming(result.stderr, plugin, REASONS[case])
    assert not (state_dir / "stack.json").exists()


# --- (d) inline hooks that raise or overrun ------------------------------------------------------


@pytest.fixture
def aws_with_bad_hooks(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fake AWS with the template's tables and secret; the function's environment plus the two
    misbehaving hook plugins and a 50 ms hook budget (first calls included)."""
    monkeypatch.syspath_prepend(str(ROOT))  # before the import: the test plugins live under tests/
    from tests.plugins_for_tests import slow_hook

    moto_stack.fake_aws_environment(monkeypatch)
    moto_stack.reset_caches()
    slow_hook.RELEASE.clear()
    with mock_aws():
        dynamodb = boto3.client("dynamodb", region_name="us-east-1")
        names = moto_stack.template_table_names("bh-")
        moto_stack.create_template_tables(dynamodb, names)
        moto_stack.set_function_environment(monkeypatch, names, "TrackFunction")
        monkeypatch.setenv(PLUGINS_VARIABLE, f"{RAISING_HOOK},{SLOW_HOOK}")
        monkeypatch.setenv("HOOK_BUDGET_MS", "50")
        monkeypatch.setenv("HOOK_COLD_BUDGET_MS", "50")  # these hooks are slow on every call
        moto_stack.create_signing_secret(monkeypatch, RING_JSON)
        runtime.default_settings()
        try:
            yield
        finally:
            slow_hook.RELEASE.set()  # the abandoned hook thread ends now
            moto_stack.reset_caches()


@pytest.fixture
def hook_handler(aws_with_bad_hooks: None) -> Handler:
    return load_track_handler()


def event(path: str) -> dict[str, Any]:
    return moto_stack.http_event(
        path,
        headers={"user-agent": UA, "host": "t.example"},
        source_ip="203.0.113.5",
        request_id="req-bh",
    )


def path_of(claims: TokenClaims) -> str:
    return tracking_url("https://t.example", claims, RING).removeprefix("https://t.example")


def emitted_metrics(out: str) -> dict[str, float]:
    """Metric name -> value, summed over the EMF lines the handler printed."""
    totals: dict[str, float] = {}
    for line in out.splitlines():
        if not line.startswith("{"):
            continue
        record = json.loads(line)
        for directive in record.get("_aws", {}).get("CloudWatchMetrics", []):
            for metric in directive["Metrics"]:
                value = record[metric["Name"]]
                totals[metric["Name"]] = totals.get(metric["Name"], 0) + sum(
                    value if isinstance(value, list) else [value]
                )
    return totals


def hook_log(caplog: pytest.LogCaptureFixture, message: str) -> list[dict[str, Any]]:
    return [
        json.loads(logger.registered_formatter.format(record))
        for record in caplog.records
        if record.getMessage() == message
    ]


def stored() -> list[Beacon]:
    return list(Beacon.scan(consistent_read=True))


def test_a_raising_hook_leaves_the_gif_and_the_redirect_intact(
    hook_handler: Handler, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.plugins_for_tests import raising_hook

    raising_hook.CALLS.clear()
    link = create_link("https://example.com/after-boom")
    capsys.readouterr()
    caplog.clear()

    pixel = hook_handler(
        event(path_of(TokenClaims(mode=Mode.PIXEL, entity=Ref("boom", "b-1")))), FakeContext()
    )
    assert pixel["statusCode"] == 200
    assert base64.b64decode(pixel["body"]) == TRANSPARENT_GIF
    claims = TokenClaims(mode=Mode.REDIRECT, target=Ref("link", link.id), entity=Ref("boom", "b-2"))
    redirect = hook_handler(event(path_of(claims)), FakeContext())
    assert redirect["statusCode"] == 302
    assert redirect["headers"]["Location"] == "https://example.com/after-boom"

    assert len(raising_hook.CALLS) == 2  # the hook did run, and raised
    assert sorted(beacon.entity for beacon in stored()) == ["boom:b-1", "boom:b-2"]
    failures = hook_log(caplog, "hook raised")
    assert [(line["hook"], line["type"]) for line in failures] == [("beacon_update", "boom")] * 2
    assert all("BoomHookError" in line["error"] for line in failures)
    assert all(line["level"] == "ERROR" for line in failures)
    metrics = emitted_metrics(capsys.readouterr().out)
    assert metrics.get("HookErrors") == 2


def test_a_hook_past_its_budget_leaves_the_gif_and_the_redirect_intact(
    hook_handler: Handler, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    from tests.plugins_for_tests import slow_hook

    link = create_link("https://example.com/after-nap")
    capsys.readouterr()
    caplog.clear()

    started = time.monotonic()
    pixel = hook_handler(
        event(path_of(TokenClaims(mode=Mode.PIXEL, entity=Ref("sleepy", "s-1")))), FakeContext()
    )
    claims = TokenClaims(mode=Mode.REDIRECT, target=Ref("link", link.id), entity=Ref("sleepy", "s-2"))
    redirect = hook_handler(event(path_of(claims)), FakeContext())
    elapsed = time.monotonic() - started

    assert pixel["statusCode"] == 200
    assert base64.b64decode(pixel["body"]) == TRANSPARENT_GIF
    assert redirect["statusCode"] == 302
    assert redirect["headers"]["Location"] == "https://example.com/after-nap"
    # Neither visitor waited for the hook (it waits up to MAX_WAIT_S each).
    assert elapsed < slow_hook.MAX_WAIT_S
    assert slow_hook.FINISHED == []
    assert sorted(beacon.entity for beacon in stored()) == ["sleepy:s-1", "sleepy:s-2"]
    overruns = hook_log(caplog, "hook overran its budget")
    assert [(line["hook"], line["type"], line["budget_ms"]) for line in overruns] == [
        ("beacon_update", "sleepy", 50)
    ] * 2
    assert emitted_metrics(capsys.readouterr().out).get("HookTimeouts") == 2
