"""The example plugin in `make run`'s stack, untouched core: on the path and named in
WEBBUGGER_PLUGINS (as a layer is on /opt/python in Lambda), its tables are made locally, a
product link redirects to the URL built from the product's fields, and the affiliate's deferred
hook counts the hit once.
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

EXAMPLE = Path(__file__).resolve().parents[1]
ROOT = EXAMPLE.parents[1]
pytestmark = pytest.mark.ddblocal


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait(what: str, check: Callable[[], Any], timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.2)
    pytest.fail(f"not within {timeout:.0f}s: {what}")


@pytest.fixture
def stack_with_example(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """`webbugger local` with the example on the path, as `make run` would start it."""
    port = _free_port()
    env = {
        **os.environ,
        "WEBBUGGER_STATE_DIR": str(tmp_path),
        "PYTHONPATH": str(EXAMPLE),
        "WEBBUGGER_PLUGINS": "webbugger_affiliate",
    }
    script = shutil.which("webbugger", path=str(Path(sys.executable).parent)) or "webbugger"
    process = subprocess.Popen(
        [script, "local", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        state_file = tmp_path / "stack.json"

        def started() -> bool:
            if process.poll() is not None:  # it stopped: say why now, not after the timeout
                output = process.stdout.read().decode(errors="replace") if process.stdout else ""
                pytest.fail(f"`webbugger local` exited with {process.returncode}:\n{output}")
            return state_file.exists()

        _wait("the local stack", started, timeout=90)
        yield {"state": json.loads(state_file.read_text()), "state_dir": tmp_path}
    finally:
        os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


def test_example_plugin_works_in_the_local_stack(
    stack_with_example: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    state = stack_with_example["state"]
    monkeypatch.setenv("WEBBUGGER_STATE_DIR", str(stack_with_example["state_dir"]))
    monkeypatch.setenv("WEBBUGGER_PLUGINS", "webbugger_affiliate")
    monkeypatch.syspath_prepend(str(EXAMPLE))
    from webbugger import runtime
    from webbugger.minting import tracking_url
    from webbugger.modes import Mode
    from webbugger.refs import Ref
    from webbugger.tokens import TokenClaims
    from webbugger_affiliate.affiliates import Affiliate, create_affiliate
    from webbugger_affiliate.products import create_product
    from webbugger_cli.stack import resolve_stack

    runtime.reset()
    stack = resolve_stack(None)  # binds every model, the plugin's included, to the local tables
    create_product("p1", slug="blue-kettle", category="kitchen")
    create_affiliate("aff1", name="Kettle blog")

    claims = TokenClaims(
        mode=Mode.REDIRECT,
        target=Ref("product", "p1"),
        entity=Ref("affiliate", "aff1"),
        source=Ref("affiliate", "aff1"),
    )
    url = urlsplit(tracking_url(state["api_url"], claims, stack.key_ring()))
    connection = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port, timeout=10)
    connection.request("GET", url.path, headers={"User-Agent": "example-test"})
    response = connection.getresponse()
    response.read()
    connection.close()

    assert response.status == 302
    assert response.getheader("Location", "").endswith("/kitchen/blue-kettle?ref=webbugger")
    # The deferred hook runs from the local stream feed: exactly one hit.
    _wait("the affiliate's hit", lambda: int(Affiliate.get("aff1").hits or 0) == 1, timeout=20)
    time.sleep(1.0)
    assert int(Affiliate.get("aff1").hits or 0) == 1
    runtime.reset()
