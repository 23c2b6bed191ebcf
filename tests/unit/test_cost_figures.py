"""The cost model's measured log figure is what the track function really writes per hit.

The track function's handler runs in-process against moto (template.yaml's tables and the
signing secret, as tests/integration/moto_stack.py sets them up); what it prints per pixel is
what CloudWatch Logs ingests from it (besides Lambda's own START/END/REPORT lines).
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import pytest
from moto import mock_aws
from webbugger import runtime
from webbugger.minting import tracking_url
from webbugger.modes import Mode
from webbugger.refs import Ref
from webbugger.tokens import KeyRing, TokenClaims
from webbugger_cli.commands import cost

if TYPE_CHECKING:
    from collections.abc import Iterator
    from types import ModuleType

ROOT = Path(__file__).resolve().parents[2]
RING_JSON = json.dumps({"current": "k1", "k1": "k1-secret-" + "a" * 38})
BROWSER = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"
)


def _moto_stack() -> ModuleType:
    name = "moto_stack"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, ROOT / "tests" / "integration" / "moto_stack.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def track(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    stack = _moto_stack()
    stack.fake_aws_environment(monkeypatch)
    stack.reset_caches()
    with mock_aws():
        names = stack.template_table_names("cost-")
        stack.create_template_tables(boto3.client("dynamodb", region_name=stack.REGION), names)
        stack.set_function_environment(monkeypatch, names, "TrackFunction")
        stack.create_signing_secret(monkeypatch, RING_JSON)
        runtime.default_settings()
        yield stack
        stack.reset_caches()


def _printed_per_hit(stack: Any, claims: TokenClaims) -> list[int]:
    handler = stack.load_track_handler()
    path = tracking_url("https://t.example", claims, KeyRing.from_json(RING_JSON)).removeprefix(
        "https://t.example"
    )
    event = stack.http_event(
        path,
        headers={"user-agent": BROWSER, "accept-language": "en-GB"},
        source_ip="203.0.113.9",
        request_id="r",
    )
    sizes = []
    for _ in range(3):
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            answer = handler(event, stack.FakeContext())
        assert answer["statusCode"] == 200
        sizes.append(len(printed.getvalue().encode()))
    return sizes


def test_track_log_bytes_per_pixel_is_measured(track: Any) -> None:
    recorded = cost.load_hit_figures()["track_log_bytes"]
    assert recorded["kind"] == "measured"
    plain = _printed_per_hit(track, TokenClaims(mode=Mode.PIXEL))
    with_source = _printed_per_hit(
        track, TokenClaims(mode=Mode.PIXEL, source=Ref("campaign", "spring"), ignore_errors=True)
    )
    # Every hit prints the same (one EMF record); the recorded figure is within 10 % of it.
    assert len({*plain, *with_source}) == 1, (plain, with_source)
    assert recorded["value"] == pytest.approx(plain[0], rel=0.1)
