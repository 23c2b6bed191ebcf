"""``webbugger local`` (what ``make run`` starts): DynamoDB Local plus the HTTP API, until Ctrl-C.

Besides the HTTP API, the stack feeds template.yaml's DynamoDB stream event sources to their
functions (:mod:`webbugger_cli.local.streams`), and makes the tables plugins declare that the
template does not define (:func:`webbugger_cli.local.tables.ensure_plugin_tables`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import logging
import os
import signal
import sys
import threading
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError
from pynamodb.exceptions import PynamoDBException
from webbugger.errors import LinkExistsError, WebbuggerError
from webbugger.minting import tracking_url
from webbugger.modes import Mode
from webbugger.refs import Ref
from webbugger.runtime import bind_tables, default_registry
from webbugger.service.links import create_link
from webbugger.settings import load_settings
from webbugger.tokens import KeyRing, TokenClaims

from webbugger_cli.commands.types import type_entries
from webbugger_cli.local import state
from webbugger_cli.local.apis import local_apis
from webbugger_cli.local.ddblocal import DynamoDBLocal, DynamoDBLocalError, free_port
from webbugger_cli.local.server import LocalApi
from webbugger_cli.local.stream_sources import StreamConfigError
from webbugger_cli.local.streams import StreamFeed
from webbugger_cli.local.tables import ensure_plugin_tables, ensure_tables, local_client, table_outputs
from webbugger_cli.local.wire import HOST
from webbugger_cli.template import FRONT_DOORS, TemplateError, load_template
from webbugger_cli.terminal import TerminalFormatter

if TYPE_CHECKING:
    from types import FrameType

    from webbugger_cli.template import Template

DEMO_LINK_ID = "demo"
DEMO_LINK_URL = "https://example.com/"
EXIT_INTERRUPTED = 130


def local_outputs(template: Template, api_url: str, front_door: str = FRONT_DOORS[0]) -> dict[str, str]:
    """The Outputs a deployed stack has, with the local stack's values (the admin API's is added
    once its server is bound). ``TrackingUrl`` is what a deployment fronts with CloudFront or its
    own domain: locally, the API's (or the function URL's) URL itself."""
    return {
        "ApiUrl": api_url,
        "TrackingUrl": api_url,
        "FrontDoor": front_door,
        **table_outputs(template),
        "SigningSecretArn": "local",
    }


def create_demo_link() -> None:
    """The demo link, once (it survives restarts with the rest of the data); the environment must be set."""
    # A person is waiting, not a visitor: the hot path's sub-second bounds are too tight for a
    # database that has just started.
    settings = load_settings()._replace(ddb_connect_timeout=3.0, ddb_read_timeout=10.0)
    bind_tables(default_registry(), settings)
    with contextlib.suppress(LinkExistsError):  # made by an earlier run
        create_link(default_registry(), DEMO_LINK_URL, DEMO_LINK_ID)


def banner(
    api_url: str,
    ring: KeyRing,
    feed: StreamFeed | None = None,
    admin_url: str | None = None,
    front_door: str = FRONT_DOORS[0],
) -> str:
    """What to tell the user once the stack is up: URLs to try and commands to run."""
    pixel = tracking_url(api_url, TokenClaims(mode=Mode.PIXEL), ring)
    redirect = tracking_url(api_url, TokenClaims(mode=Mode.REDIRECT, target=Ref("link", DEMO_LINK_ID)), ring)
    door = (
        "the track function's URL: every path reaches it" if front_door == "function-url" else "the HTTP API"
    )
    return "\n".join(
        [
            f"webbugger local stack on {api_url}, as {door} (Ctrl-C stops it)",
            f"  pixel:    {pixel}",
            f"  redirect: {redirect}  -> {DEMO_LINK_URL}",
            "try:",
            f"  curl -s -o /dev/null -w '%{{http_code}} %{{content_type}}\\n' '{pixel}'",
            f"  curl -s -o /dev/null -w '%{{http_code}} %{{redirect_url}}\\n' '{redirect}'",
            "  uv run webbugger beacons list",
            *(_admin_lines(admin_url) if admin_url is not None else []),
            *(_stream_lines(feed) if feed is not None else []),
        ]
    )


def _admin_lines(admin_url: str) -> list[str]:
    return [
        f"admin API on {admin_url} (locally without SigV4: deployed, every request needs IAM auth)",
        f"  curl -s {admin_url}/links   (OpenAPI: {admin_url}/openapi.json)",
    ]


def _stream_lines(feed: StreamFeed) -> list[str]:
    return [
        f"stream: {source.table} -> {source.label} (dead letters: {feed.dead_letters_path})"
        for source in feed.sources
    ]


class _Stop:
    """Ctrl-C and SIGTERM both end the run: set an event the main thread waits on."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.event.set()

    def __enter__(self) -> _Stop:
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def run(port: int, front_door: str = FRONT_DOORS[0]) -> int:
    """Run the local stack on 127.0.0.1:``port`` until Ctrl-C or SIGTERM; the exit status. The
    tracking port is the HTTP API, or with ``front_door`` ``function-url`` the track function's URL."""
    # Every message escaped: function and request logs echo what visitors sent.
    handler = logging.StreamHandler()
    handler.setFormatter(TerminalFormatter("%(message)s"))
    logging.basicConfig(level=logging.INFO, handlers=[handler])
    # Their INFO lines (credentials found, settings files) say nothing useful here.
    for name in ("botocore", "pynamodb"):
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        template = load_template()
    except TemplateError as exc:
        print(f"webbugger local: {exc}", file=sys.stderr)
        return 1
    directory = state.state_dir()
    running = state.read_running(directory)
    if running is not None and running.pid != os.getpid():
        where = f"{running.api_url} (pid {running.pid})"
        print(f"webbugger local: a local stack already runs at {where}", file=sys.stderr)
        return 1
    api_url = f"http://{HOST}:{port}"
    ddb_port = free_port()
    ddb = DynamoDBLocal(directory / "ddb", ddb_port)
    stack = state.LocalStack(
        api_url=api_url,
        dynamodb_endpoint=f"http://{HOST}:{ddb_port}",
        pid=os.getpid(),
        outputs=local_outputs(template, api_url, front_door),
        state_dir=str(directory),
    )
    keys = state.load_or_create_signing_keys(directory)
    try:
        # Bind the ports before anything starts, so a taken port costs nothing to report.
        api = LocalApi(template, stack, keys, port, front_door=front_door)
    except OSError as exc:
        reason = "is already in use" if exc.errno == errno.EADDRINUSE else f"cannot be used ({exc.strerror})"
        ports = f"port {port} or {port + 1}" if len(local_apis(template)) > 1 else f"port {port}"
        # `make run` (the README's way in) takes no --port: say how it picks one too.
        hint = "choose another with --port N (`PORT=N make run`)"
        print(f"webbugger local: {ports} on {HOST} {reason}; {hint}", file=sys.stderr)
        return 1
    except WebbuggerError as exc:  # a plugin that does not load, say
        print(f"webbugger local: {exc}", file=sys.stderr)
        return 1
    feed: StreamFeed | None = None
    try:
        feed = StreamFeed.from_template(template, stack.dynamodb_endpoint, api.invoke, directory)
        with _Stop() as stop:
            try:
                ddb.start()
                client = local_client(stack)
                ensure_tables(template, client)
                ensure_plugin_tables(api.plugin_tables, client)
                create_demo_link()
            except (DynamoDBLocalError, BotoCoreError, ClientError, PynamoDBException) as exc:
                if stop.event.is_set():
                    return EXIT_INTERRUPTED  # Ctrl-C while starting: DynamoDB Local got it too
                print(f"webbugger local: {exc}", file=sys.stderr)
                return 1
            if api.admin_url is not None:
                stack = dataclasses.replace(stack, outputs={**stack.outputs, "AdminApiUrl": api.admin_url})
            # What the CLI reads to check as this stack does, and to load only the plugins it needs.
            stack = dataclasses.replace(
                stack, parameters=api.parameters, types=type_entries(default_registry())
            )
            state.write_running(stack, directory)
            api.start_in_thread()
            feed.start()
            print(banner(api_url, KeyRing.from_json(keys), feed, api.admin_url, front_door), flush=True)
            stop.event.wait()
            print("\nstopping", file=sys.stderr)
    except StreamConfigError as exc:
        print(f"webbugger local: {exc}", file=sys.stderr)
        return 1
    finally:
        if feed is not None:
            feed.stop()
        api.shutdown()
        ddb.stop()
        state.clear_running(directory)
    return 0
