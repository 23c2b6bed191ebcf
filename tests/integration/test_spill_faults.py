"""Lose nothing when the database fails: real traffic through the track handler while the beacons
table fails, then the drain (or ``webbugger replay``) — and exactly one beacon per GET request.

The spill queue is moto's SQS, in-process. Two faults:

- an outage, on a DynamoDB Local of this test's own (the session's shared one is never stopped):
  it is stopped mid-run and started again on the same data; the beacons of the outage go to the
  spill queue and the drain function (its handler, fed the queue's messages as Lambda's SQS event
  source would, each message twice) stores them;
- throttling with the queue gone as well, on the session's local stack: every PutItem of the
  beacons table answers ProvisionedThroughputExceededException (a botocore hook on the track
  function's own client, so botocore's retry logic runs as in AWS), and the spill queue is
  deleted; the beacons are logged, and ``webbugger replay FILE`` against the local stack stores them.

Both check that every request got its GIF or redirect and that stored == GET requests sent
(HEAD requests are sent too, and store nothing). They print ``sent=N stored=N`` (see with -s).
"""

from __future__ import annotations

import base64
import json
import os
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import moto_stack
import pytest
from botocore.awsrequest import AWSResponse
from moto import mock_aws
from webbugger import runtime, spill
from webbugger.gif import TRANSPARENT_GIF
from webbugger.minting import tracking_url
from webbugger.models import Beacon
from webbugger.modes import Mode
from webbugger.observability import logger
from webbugger.refs import Ref
from webbugger.tokens import KeyRing, TokenClaims
from webbugger_cli.local import state
from webbugger_cli.local.ddblocal import DynamoDBLocal, DynamoDBLocalError
from webbugger_cli.local.environment import local_environment
from webbugger_cli.local.tables import ensure_tables, local_client, table_outputs, warm_up
from webbugger_cli.main import main
from webbugger_cli.template import load_handler, load_template

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from conftest import RunningStack
    from mypy_boto3_dynamodb import DynamoDBClient

pytestmark = pytest.mark.ddblocal
ROOT = Path(__file__).resolve().parents[2]
ALLOWED_HOST = "example.com"
UA = "Mozilla/5.0 (X11; Linux x86_64) SpillFaults/1.0"
# Bounded traffic: requests per phase (before, during, after the fault); every 4th is a HEAD.
PHASE = 8


@dataclass
class Faults:
    """This module's DynamoDB Local, its tables, and the local-stack state that points at it."""

    ddb: DynamoDBLocal
    data_dir: Path
    state_dir: Path
    client: DynamoDBClient
    stack: state.LocalStack
    keys: str
    port: int

    @property
    def ring(self) -> KeyRing:
        return KeyRing.from_json(self.keys)

    def stored(self) -> int:
        """Beacons in the table (consistent scan)."""
        table = self.stack.outputs["BeaconsTableName"]
        kwargs: dict[str, Any] = {"TableName": table, "ConsistentRead": True, "Select": "COUNT"}
        count = 0
        for _ in range(100):  # bounded: a few hundred items at most
            page = self.client.scan(**kwargs)
            count += page["Count"]
            if "LastEvaluatedKey" not in page:
                return count
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        raise AssertionError("scan did not end")

    def stop(self) -> None:
        """The outage: DynamoDB Local's process ends."""
        self.ddb.stop()

    def restart(self) -> None:
        """Start DynamoDB Local again on the same port and data, as after an outage."""
        self.ddb.stop()
        self.ddb = DynamoDBLocal(self.data_dir, self.port).start()
        warm_up(load_template(ROOT), self.client)


@pytest.fixture
def faults(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Faults]:
    tmp = tmp_path_factory.mktemp("spill-faults")
    data_dir, state_dir = tmp / "ddb", tmp / "state"
    try:
        ddb = DynamoDBLocal(data_dir).start()
    except DynamoDBLocalError as exc:
        pytest.fail(f"cannot start DynamoDB Local: {exc}")
    template = load_template(ROOT)
    try:
        stack = state.LocalStack(
            api_url="http://127.0.0.1:9",  # no HTTP server: requests go to the handler in-process
            dynamodb_endpoint=ddb.endpoint,
            pid=os.getpid(),
            outputs=table_outputs(template),
            state_dir=str(state_dir),
        )
        client = local_client(stack)
        ensure_tables(template, client)
        warm_up(template, client)
        keys = state.load_or_create_signing_keys(state_dir)
        state.write_running(stack, state_dir)
        made = Faults(ddb, data_dir, state_dir, client, stack, keys, int(ddb.port or 0))
        yield made
    finally:
        made.ddb.stop() if "made" in locals() else ddb.stop()


@dataclass
class Traffic:
    """Requests sent through the track handler and what they got."""

    handler: Callable[[dict[str, Any], Any], dict[str, Any]]
    paths: list[tuple[str, str]]
    user_agent: str
    sent_get: int = 0
    sent_head: int = 0
    answers: list[str] = field(default_factory=list)

    def send(self, count: int) -> None:
        """``count`` requests, cycling through the paths; every 4th one a HEAD."""
        for _ in range(count):
            number = self.sent_get + self.sent_head
            kind, path = self.paths[number % len(self.paths)]
            method = "HEAD" if number % 4 == 3 else "GET"
            event = moto_stack.http_event(
                path,
                method=method,
                headers={"user-agent": self.user_agent},
                source_ip="198.51.100.23",
                request_id=f"fault-{number}",
            )
            response = self.handler(event, moto_stack.FakeContext())
            self.answers.append(_check_answer(kind, method, response))
            if method == "GET":
                self.sent_get += 1
            else:
                self.sent_head += 1


def _check_answer(kind: str, method: str, response: dict[str, Any]) -> str:
    """Every request gets its GIF or its redirect, whatever the database does."""
    if kind == "pixel":
        assert response["statusCode"] == 200, response
        assert response["headers"]["Content-Type"] == "image/gif"
        if method == "GET":
            assert base64.b64decode(response["body"]) == TRANSPARENT_GIF
        return "gif"
    assert response["statusCode"] == 302, response
    assert response["headers"]["Location"].startswith(f"https://{ALLOWED_HOST}/"), response
    return "redirect"


@pytest.fixture
def environment(faults: Faults, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """The local functions' environment for this DynamoDB Local; restored whole afterwards."""
    before = dict(os.environ)
    env = local_environment(load_template(ROOT), faults.stack, faults.keys)
    for name in ("SIGNING_SECRET_ARN", "AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    for name, value in {**env, "ALLOWED_REDIRECT_HOSTS": ALLOWED_HOST}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("WEBBUGGER_STATE_DIR", str(faults.state_dir))
    from webbugger_plugins import url as url_target

    url_target.allowed_hosts.cache_clear()
    yield env
    url_target.allowed_hosts.cache_clear()
    os.environ.clear()
    os.environ.update(before)


@pytest.fixture
def sqs() -> Iterator[Any]:
    """moto's SQS (requests to DynamoDB Local pass through it untouched)."""
    spill.forget_clients()
    with mock_aws():
        yield boto3.client("sqs", region_name=state.LOCAL_REGION)
    spill.forget_clients()
    runtime.reset()


def _spill_queue(sqs: Any, monkeypatch: pytest.MonkeyPatch) -> str:
    """Create the spill queue and point the track function at it (after the stack's environment)."""
    url: str = sqs.create_queue(QueueName="spill")["QueueUrl"]
    monkeypatch.setenv("SPILL_QUEUE_URL", url)
    runtime.reset()
    return url


def _traffic(ring: KeyRing) -> Traffic:
    """Pixels and redirects: to a stored link (cached before any fault) and to signed URLs, with a
    user agent of this test's own."""
    from webbugger_plugins.link import create_link

    runtime.default_settings()  # bind the tables as the track function will
    run = uuid.uuid4().hex[:10]
    link_id = f"fault-{run}"
    create_link(f"https://{ALLOWED_HOST}/stored", link_id)

    def path(claims: TokenClaims) -> str:
        return tracking_url("https://t.example", claims, ring).removeprefix("https://t.example")

    paths = [
        ("pixel", path(TokenClaims(mode=Mode.PIXEL))),
        ("redirect", path(TokenClaims(mode=Mode.REDIRECT, target=Ref("link", link_id)))),
        ("pixel", path(TokenClaims(mode=Mode.PIXEL, target=Ref("link", link_id)))),
        (
            "redirect",
            path(TokenClaims(mode=Mode.REDIRECT, target=Ref("url", f"https://{ALLOWED_HOST}/signed"))),
        ),
    ]
    return Traffic(moto_stack.load_track_handler(), paths, f"{UA} run/{run}")


def _drain_module() -> Any:
    """The drain function's module, loaded from its CodeUri as Lambda loads it."""
    load_handler(ROOT / "functions" / "drain", "app.lambda_handler")
    return sys.modules["webbugger_function_drain_app"]


def drain(sqs: Any, queue_url: str, *, twice: bool = True) -> int:
    """Feed every message to the drain handler as Lambda's event source would: batches of up to
    10, failed messages left on the queue, the others deleted. With ``twice``, every batch is
    delivered a second time (SQS delivers at least once). Bounded; returns messages drained."""
    module = _drain_module()
    module.bind_beacons.cache_clear()
    drained = 0
    for _ in range(50):
        messages = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return drained
        event = {
            "Records": [
                {
                    "messageId": message["MessageId"],
                    "receiptHandle": message["ReceiptHandle"],
                    "body": message["Body"],
                    "attributes": {"ApproximateReceiveCount": "1"},
                    "messageAttributes": {},
                    "md5OfBody": message["MD5OfBody"],
                    "eventSource": "aws:sqs",
                    "eventSourceARN": f"arn:aws:sqs:{state.LOCAL_REGION}:123456789012:spill",
                    "awsRegion": state.LOCAL_REGION,
                }
                for message in messages
            ]
        }
        context = moto_stack.FakeContext(function_name="DrainFunction")
        for _delivery in range(2 if twice else 1):
            result = module.lambda_handler(event, context)
            assert result == {"batchItemFailures": []}, result
        for message in messages:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        drained += len(messages)
    raise AssertionError("the spill queue did not empty in 50 batches")


def _report(fault: str, traffic: Traffic, stored: int) -> str:
    line = f"{fault}: sent={traffic.sent_get} stored={stored} (GET; plus {traffic.sent_head} HEAD)"
    print(line)
    return line


@pytest.mark.usefixtures("environment")
def test_outage_spills_to_the_queue_and_the_drain_stores_each_beacon_once(
    faults: Faults, sqs: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue = sqs
    queue_url = _spill_queue(sqs, monkeypatch)
    traffic = _traffic(faults.ring)

    traffic.send(PHASE)
    faults.stop()  # the outage, mid-run
    traffic.send(PHASE)
    spilled = int(
        queue.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["All"])["Attributes"][
            "ApproximateNumberOfMessages"
        ]
    )
    faults.restart()
    traffic.send(PHASE)
    drained = drain(queue, queue_url)

    stored = faults.stored()
    line = _report("outage (DynamoDB Local stopped)", traffic, stored)
    assert len(traffic.answers) == 3 * PHASE
    # Each GET of the outage went to the queue (and was drained); HEADs record nothing.
    assert spilled >= PHASE * 3 // 4, f"{line}; only {spilled} messages spilled during the outage"
    assert drained >= spilled, line
    assert stored == traffic.sent_get, line


def _throttle(request: Any, **kwargs: Any) -> AWSResponse:
    """What DynamoDB answers a table over its throughput."""
    body = json.dumps(
        {
            "__type": "com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException",
            "message": "The level of configured provisioned throughput for the table was exceeded.",
        }
    ).encode()

    class Raw:
        def stream(self, **_: Any) -> Iterator[bytes]:
            yield body

    headers = {"Content-Type": "application/x-amz-json-1.0", "x-amzn-RequestId": "throttled"}
    return AWSResponse(request.url, 400, headers, Raw())


def test_throttling_with_the_queue_gone_logs_beacons_that_replay_restores(
    local_stack: RunningStack,
    sqs: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from webbugger_plugins import url as url_target

    # The session stack's allowed hosts, for this test only (the plugin caches the variable).
    monkeypatch.setattr(url_target, "allowed_hosts", lambda: (ALLOWED_HOST,))
    queue = sqs
    queue_url = _spill_queue(sqs, monkeypatch)
    traffic = _traffic(local_stack.ring)

    traffic.send(PHASE)
    drain(queue, queue_url, twice=False)  # whatever a cold table spilled so far
    queue.delete_queue(QueueUrl=queue_url)  # SQS fails from now on
    events = Beacon._get_connection().connection.client.meta.events
    events.register_first("before-send.dynamodb.PutItem", _throttle)
    try:
        traffic.send(PHASE)
    finally:
        events.unregister("before-send.dynamodb.PutItem", _throttle)
    traffic.send(PHASE)

    # The log as Lambda writes it (Powertools' JSON), in the two forms replay reads, with lines
    # that carry no beacon between them and one record twice (it must be stored once).
    formatter = logger.registered_formatter
    spilled = [formatter.format(record) for record in caplog.records if "spilled_beacon" in record.__dict__]
    lines = ["START RequestId: fault Version: $LATEST", '{"level":"INFO","message":"not a beacon"}']
    lines += [
        f"2026-11-23T22:00:{n % 60:02d}.000Z {line}" if n % 2 else line for n, line in enumerate(spilled)
    ]
    lines += spilled[:1]
    log_file = tmp_path / "track.log"
    log_file.write_text("\n".join(lines) + "\n")
    runtime.reset()

    capsys.readouterr()
    exit_code = main(["replay", str(log_file)])
    # The command's one line is the last (the handler's metrics went to stdout before it).
    summary = capsys.readouterr().out.strip().splitlines()[-1]

    stored = len(local_stack.beacons(user_agent=traffic.user_agent))
    with capsys.disabled():
        line = _report("throttling + SQS gone (replay)", traffic, stored)
    assert exit_code == 0, summary
    assert len(spilled) >= PHASE * 3 // 4, f"{line}; only {len(spilled)} beacons were logged"
    assert summary.startswith(f"replay: read {len(spilled) + 1} spilled beacons:"), summary
    assert "1 already present" in summary or not spilled, summary
    assert "0 invalid" in summary, summary
    assert len(traffic.answers) == 3 * PHASE
    assert stored == traffic.sent_get, f"{line}; {summary}"
