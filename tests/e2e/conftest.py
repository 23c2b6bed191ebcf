"""End-to-end tests: HTTP against a stack, found by its Outputs, exactly as a user reaches it.

With ``AWS_SAM_STACK_NAME`` set, the stack is that deployed stack (its Outputs from
CloudFormation; the admin API signed with your AWS credentials). Otherwise it is a local stack:
``webbugger local`` run as its own process (what ``make run`` starts) with a throwaway state
directory, whose ``stack.json`` holds the same Outputs names. The tests do not know which. A local
stack runs twice, once per front door (template parameter FrontDoor): its tracking port is the HTTP
API, then the track function's URL.

The integration tests' in-process stack (tests/integration/conftest.py) is not reused: its
fixtures are visible only under tests/integration, and it builds its Outputs itself, while these
tests must see what ``webbugger local`` publishes.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from webbugger_cli.admin_client import ADMIN_OUTPUT, AdminClient, region_of
from webbugger_cli.local.ddblocal import HOST, free_port
from webbugger_cli.template import FRONT_DOORS

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(__file__).resolve().parents[2]
STACK_VARIABLE = "AWS_SAM_STACK_NAME"
START_SECONDS = 90.0
STOP_SECONDS = 20.0
# Variables that could point a local run at a real AWS identity.
_REAL_AWS = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "AWS_SAM_STACK_NAME")
# What the local stack is started with (a deployed stack has its own AllowedRedirectHosts).
ALLOWED_HOSTS_VARIABLE = "ALLOWED_REDIRECT_HOSTS"
LOCAL_ALLOWED_HOSTS = "example.com"
# A deployed stack is tested as it was deployed; a local one through each front door.
FRONT_DOORS_UNDER_TEST = ["deployed"] if os.environ.get(STACK_VARIABLE) else list(FRONT_DOORS)


@dataclass(frozen=True)
class E2EStack:
    """A stack under test: its Outputs, an admin API client, and how to point the CLI at it."""

    outputs: dict[str, str]
    admin: AdminClient
    # Options before the command (``--stack NAME``) and the environment the CLI needs.
    cli_options: tuple[str, ...]
    cli_env: dict[str, str]

    @property
    def tracking_url(self) -> str:
        """Where visitors go."""
        return self.outputs["TrackingUrl"]


def _deployed(name: str) -> E2EStack:
    import boto3
    from webbugger_cli.stack import describe_stack, stack_outputs

    session = boto3.session.Session()
    outputs = stack_outputs(describe_stack(session, name))
    credentials = session.get_credentials()
    assert credentials is not None, "no AWS credentials for the deployed stack"
    url = outputs[ADMIN_OUTPUT]
    admin = AdminClient(url, region_of(url) or session.region_name or "", credentials)
    region = {"AWS_REGION": session.region_name} if session.region_name else {}
    return E2EStack(outputs, admin, ("--stack", name), region)


def _two_free_ports() -> int:
    """A port P such that P and P + 1 (the admin API's) are free on 127.0.0.1 right now."""
    for _ in range(20):  # bounded: two free neighbours are common
        port = free_port()
        if port >= 65535:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind((HOST, port + 1))
            except OSError:
                continue
        return port
    raise RuntimeError("no two neighbouring free ports on 127.0.0.1")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(STOP_SECONDS)


@pytest.fixture(scope="session", params=FRONT_DOORS_UNDER_TEST)
def e2e_stack(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[E2EStack]:
    """The deployed stack named by AWS_SAM_STACK_NAME, else a ``webbugger local`` process serving
    the tracking routes through the front door of this parameter."""
    name = os.environ.get(STACK_VARIABLE)
    if name:
        yield _deployed(name)
        return
    from botocore.credentials import Credentials

    front_door = str(request.param)
    state_dir = tmp_path_factory.mktemp(f"e2e-local-{front_door}")
    env = {key: value for key, value in os.environ.items() if key not in _REAL_AWS}
    env["WEBBUGGER_STATE_DIR"] = str(state_dir)
    # As `ALLOWED_REDIRECT_HOSTS=example.com make run` would: the CLI, started without it, must
    # pick it up from the stack (tests/e2e/test_e2e_cli_local.py).
    env[ALLOWED_HOSTS_VARIABLE] = LOCAL_ALLOWED_HOSTS
    log = (state_dir / "local.log").open("wb")
    port = str(_two_free_ports())
    process = subprocess.Popen(
        [sys.executable, "-m", "webbugger_cli.main", "local", "--port", port, "--front-door", front_door],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        announced = state_dir / "stack.json"
        deadline = time.monotonic() + START_SECONDS
        while not announced.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                log.flush()
                pytest.fail(f"webbugger local did not start: {(state_dir / 'local.log').read_text()[-2000:]}")
            time.sleep(0.1)
        outputs = json.loads(announced.read_text())["outputs"]
        admin = AdminClient(outputs[ADMIN_OUTPUT], "us-east-1", Credentials("local", "local"))
        yield E2EStack(outputs, admin, (), {"WEBBUGGER_STATE_DIR": str(state_dir)})
    finally:
        _stop(process)
        log.close()
