"""The real local stack for integration tests: DynamoDB Local, template.yaml's tables, the HTTP API.

Started once per session (DynamoDB Local takes seconds to start); the HTTP API runs in this
process on a free port of 127.0.0.1. Its environment is applied only while a test that asks for
:func:`local_stack` runs, so that no other test sees DynamoDB Local or the stack's state dir.

The admin API (template.yaml's AdminApi) is served too, on its own port (:attr:`RunningStack.admin_url`).
The stack also loads the test plugins of ``stream_test_plugins`` (through ``WEBBUGGER_PLUGINS``, as
a deployment's ``ExtraPlugins``) and feeds the beacons table's stream to the stream function.
The feed polls only while a :func:`local_stack` test runs: the stream function runs in this
process, and must not rebind the models while another test uses moto or its own tables.
"""

from __future__ import annotations

import dataclasses
import http.client
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pytest
from stored_labels import with_day_labels
from webbugger import runtime
from webbugger.minting import tracking_url
from webbugger.plugins import PLUGINS_VARIABLE
from webbugger.request import ORIGIN_SECRET_HEADER
from webbugger.settings import load_settings
from webbugger.tokens import KeyRing
from webbugger_cli.local import state
from webbugger_cli.local.ddblocal import DynamoDBLocal, DynamoDBLocalError
from webbugger_cli.local.run import create_demo_link
from webbugger_cli.local.server import LocalApi
from webbugger_cli.local.streams import StreamFeed
from webbugger_cli.local.tables import (
    ensure_plugin_tables,
    ensure_tables,
    local_client,
    table_outputs,
    warm_up,
)
from webbugger_cli.template import load_template

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from mypy_boto3_dynamodb import DynamoDBClient
    from webbugger.tokens import TokenClaims

ROOT = Path(__file__).resolve().parents[2]
# Test plugins, importable because pytest puts this directory on sys.path (rootdir conftest).
TEST_PLUGINS = "stream_test_plugins.probe"
PLUGINS_DIR = Path(__file__).resolve().parent
WEBBUGGER = Path(sys.executable).with_name("webbugger")  # the console script `uv run webbugger` runs
POISON_GIVEN_UP_S = 5.0


@dataclass
class RunningStack:
    """The session's local stack, and helpers to mint URLs and read what was stored."""

    api_url: str
    dynamodb_endpoint: str
    state_dir: Path
    data_dir: Path
    signing_keys: str
    env: dict[str, str]
    api: LocalApi
    ddb: DynamoDBLocal
    client: DynamoDBClient
    beacons_table: str
    # The stream feed (polls only during a local_stack test; see local_stack()).
    streams: StreamFeed
    # The admin API (template.yaml's AdminApi), on its own port; locally it needs no SigV4.
    admin_url: str

    @property
    def ring(self) -> KeyRing:
        """The stack's signing key ring."""
        return KeyRing.from_json(self.signing_keys)

    @property
    def origin_secret(self) -> str:
        """The secret CloudFront would add: send it as ``x-webbugger-origin-secret`` (with
        ``cloudfront-viewer-address``) to play a request that came through the distribution."""
        return state.load_or_create_origin_secret(self.state_dir)

    def mint(self, claims: TokenClaims) -> str:
        """A tracking URL of this stack for ``claims``."""
        return tracking_url(self.api_url, claims, self.ring)

    def get_via_cloudfront(
        self, url: str, user_agent: str, address: str, headers: Mapping[str, str] | None = None
    ) -> int:
        """GET ``url`` as a request CloudFront forwarded from viewer ``address`` (the origin
        secret and the viewer header set); its status. Redirects are not followed."""
        parts = urlsplit(url)
        assert parts.hostname == "127.0.0.1"
        sent = {
            "User-Agent": user_agent,
            "cloudfront-viewer-address": f"{address}:443",
            ORIGIN_SECRET_HEADER: self.origin_secret,
            **(headers or {}),
        }
        conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
        try:
            conn.request("GET", parts.path, headers=sent)
            response = conn.getresponse()
            response.read()
            return response.status
        finally:
            conn.close()

    def beacons(self, user_agent: str | None = None) -> list[dict[str, Any]]:
        """Stored beacon items (raw DynamoDB form) with their labels (an entity's beacon's is
        mostly on its day item: :mod:`stored_labels`), only those of ``user_agent`` when given."""
        kwargs: dict[str, Any] = {"TableName": self.beacons_table, "ConsistentRead": True}
        if user_agent is not None:
            kwargs |= {
                "FilterExpression": "ua = :ua",
                "ExpressionAttributeValues": {":ua": {"S": user_agent}},
            }
        items: list[dict[str, Any]] = []
        for _ in range(1000):  # bounded: a test session stores a few hundred items at most
            page = self.client.scan(**kwargs)
            items += page.get("Items", [])
            if "LastEvaluatedKey" not in page:
                break
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return with_day_labels(self.client, self.env["COUNTERS_TABLE"], items)

    def cli(self, *args: str, env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        """``webbugger ARGS`` against this stack (its state dir; ``env`` on top of this process's
        environment), its output as text; 60 s at most."""
        return subprocess.run(
            [str(WEBBUGGER), *args],
            capture_output=True,
            text=True,
            env={**os.environ, "WEBBUGGER_STATE_DIR": str(self.state_dir), **(env or {})},
            timeout=60,
            check=False,
        )

    def create_link(self, url: str, *, short_url_enabled: bool = True) -> str:
        """Store a link to ``url`` through the core, as the CLI would; its id. Its short URL
        ``/l/ID`` is on unless told otherwise (off is a new link's default; tests hit /l/ID)."""
        from webbugger_plugins.link import create_link

        settings = load_settings()._replace(ddb_connect_timeout=3, ddb_read_timeout=10)
        runtime.bind_tables(runtime.default_registry(), settings)
        link_id = f"t-{uuid.uuid4().hex[:12]}"
        create_link(url, link_id, short_url_enabled=short_url_enabled)
        return link_id

    def restart_dynamodb(self) -> None:
        """Stop DynamoDB Local and start a new one on the same port and data directory."""
        port = self.ddb.port
        self.ddb.stop()
        self.ddb = DynamoDBLocal(self.data_dir, port).start()
        warm_up(load_template(ROOT), self.client)


def _start(tmp: Path) -> RunningStack:
    template = load_template(ROOT)
    state_dir, data_dir = tmp / "state", tmp / "ddb"
    keys = state.load_or_create_signing_keys(state_dir)
    ddb = DynamoDBLocal(data_dir).start()
    stack = state.LocalStack(
        api_url="",
        dynamodb_endpoint=ddb.endpoint,
        pid=os.getpid(),
        outputs=table_outputs(template),
        state_dir=str(state_dir),
    )
    before = dict(os.environ)
    api: LocalApi | None = None
    feed: StreamFeed | None = None
    try:
        os.environ[PLUGINS_VARIABLE] = TEST_PLUGINS
        api = LocalApi(template, stack, keys, port=0)
        outputs = {**stack.outputs, "ApiUrl": api.url, "SigningSecretArn": "local"}
        if api.admin_url is not None:
            outputs["AdminApiUrl"] = api.admin_url
        stack = dataclasses.replace(stack, api_url=api.url, outputs=outputs)
        # Processes started with the stack's environment (the CLI tests) load the test plugins too.
        python_path = os.pathsep.join(p for p in (str(PLUGINS_DIR), before.get("PYTHONPATH", "")) if p)
        env = {**api.environment, "WEBBUGGER_STATE_DIR": str(state_dir), "PYTHONPATH": python_path}
        client = local_client(stack)
        ensure_tables(template, client)
        ensure_plugin_tables(api.plugin_tables, client)
        # Also warms DynamoDB Local up, so that the hot path's sub-second timeouts hold from the start.
        create_demo_link()
        state.write_running(stack, state_dir)
        api.start_in_thread()
        # A poison record is given up after a few seconds (tests wait for its dead letter).
        feed = StreamFeed.from_template(
            template, ddb.endpoint, api.invoke, state_dir, record_age_cap_s=POISON_GIVEN_UP_S
        ).start(paused=True)
    except BaseException:
        if feed is not None:
            feed.stop()
        if api is not None:
            api.shutdown()
        ddb.stop()
        raise
    finally:
        # The stack's variables are applied per test, by local_stack().
        os.environ.clear()
        os.environ.update(before)
    return RunningStack(
        api_url=api.url,
        dynamodb_endpoint=ddb.endpoint,
        state_dir=state_dir,
        data_dir=data_dir,
        signing_keys=keys,
        env=env,
        api=api,
        ddb=ddb,
        client=client,
        beacons_table=stack.outputs["BeaconsTableName"],
        streams=feed,
        admin_url=api.admin_url or "",
    )


@pytest.fixture(scope="session")
def local_stack_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    """The session's local stack; torn down (server, DynamoDB Local, stack.json) at the end."""
    try:
        running = _start(tmp_path_factory.mktemp("local-stack"))
    except DynamoDBLocalError as exc:
        pytest.fail(f"cannot start DynamoDB Local: {exc}")
    try:
        yield running
    finally:
        running.streams.stop()
        running.api.shutdown()
        running.ddb.stop()
        state.clear_running(running.state_dir)


def _forget_settings() -> None:
    # The core reads its settings once per process: make it read this test's environment.
    runtime.reset()


@pytest.fixture
def local_stack(local_stack_session: RunningStack, monkeypatch: pytest.MonkeyPatch) -> Iterator[RunningStack]:
    """The running local stack, with its environment applied for the duration of one test."""
    for name in ("SIGNING_SECRET_ARN", "AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    for name, value in local_stack_session.env.items():
        monkeypatch.setenv(name, value)
    _forget_settings()
    local_stack_session.streams.resume()
    try:
        yield local_stack_session
    finally:
        local_stack_session.streams.pause()
        _forget_settings()
