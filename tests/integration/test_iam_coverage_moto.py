"""Each function's calls on its main paths are granted by its role in template.yaml.

moto checks no IAM: these tests run the track, stream, admin and drain handlers in-process against
moto (the fixtures of :mod:`test_counters`), record every AWS call their code makes
(:mod:`iam_grants`, at the botocore level) and compare them with the function's ``Policies``.
Secrets are read from (fake) Secrets Manager, as deployed; the hit feed is on.
"""

from __future__ import annotations

import base64
import copy
import gzip
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import boto3
import moto_stack
import pytest
from aws_lambda_powertools.utilities import parameters
from iam_grants import Call, not_granted, only_environment_of, recording, used
from stream_test_plugins import probe
from test_counters import (  # noqa: F401 - aws, stream, track: fixtures
    COUNTERS,
    PROBES,
    RING,
    FakeContext,
    aws,
    insert_event,
    redirect_event,
    store,
    stream,
    track,
)
from webbugger import runtime
from webbugger.feed import sinks
from webbugger.minting import tracking_url
from webbugger.modes import Mode
from webbugger.plugins import PLUGINS_VARIABLE
from webbugger.refs import Ref
from webbugger.runtime import default_registry
from webbugger.tokens import TokenClaims
from webbugger_cli.local.gateway_events import build_event
from webbugger_cli.template import load_template
from webbugger_plugins.campaign import create_campaign
from webbugger_plugins.link import create_link, update_link

if TYPE_CHECKING:
    from collections.abc import Iterator

    from moto_stack import Handler

REGION = moto_stack.REGION
TEMPLATE = load_template(moto_stack.ROOT)  # parsed once, at collection
UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) IamCoverage/1.0"
VISITOR = "198.51.100.23"


@pytest.fixture
def deployed(aws: None, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:  # noqa: F811 - the fixture
    """What a deployed stack has and the moto fixtures leave out: every function's environment,
    the visitor salt in Secrets Manager, the spill queue and the hit feed's bus, delivery stream
    and dead-letter queue. ``{"spill": queue URL}``."""
    names = moto_stack.template_table_names("test-counters-")
    names |= {"BeaconsTable": "test-counters-beacons", "CountersTable": "test-counters-counters"}
    moto_stack.set_function_environment(monkeypatch, names, "AdminFunction", "DrainFunction")
    monkeypatch.setenv(PLUGINS_VARIABLE, probe.__name__)  # as the aws fixture set it
    salt = boto3.client("secretsmanager", region_name=REGION).create_secret(
        Name="webbugger-visitor-salt", SecretString="iam-salt-" + "s" * 40
    )
    monkeypatch.setenv("VISITOR_SALT_SECRET_ARN", salt["ARN"])
    monkeypatch.delenv("WEBBUGGER_VISITOR_SALT")
    sqs = boto3.client("sqs", region_name=REGION)
    spill = sqs.create_queue(QueueName="spill")["QueueUrl"]
    monkeypatch.setenv("SPILL_QUEUE_URL", spill)
    boto3.client("events", region_name=REGION).create_event_bus(Name="hits")
    monkeypatch.setenv("EVENT_BUS_NAME", "hits")
    boto3.client("s3", region_name=REGION).create_bucket(Bucket="analytics")
    boto3.client("firehose", region_name=REGION).create_delivery_stream(
        DeliveryStreamName="analytics",
        ExtendedS3DestinationConfiguration={
            "RoleARN": f"arn:aws:iam::{moto_stack.ACCOUNT}:role/firehose",
            "BucketARN": "arn:aws:s3:::analytics",
        },
    )
    monkeypatch.setenv("ANALYTICS_STREAM_NAME", "analytics")
    monkeypatch.setenv("FEED_DEAD_LETTER_QUEUE_URL", sqs.create_queue(QueueName="feed-dlq")["QueueUrl"])
    monkeypatch.setenv("TRACKING_BASE_URL", "https://t.example")
    moto_stack.reset_caches()
    runtime.default_settings()
    return {"spill": spill}


def as_deployed(function: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The environment of ``function`` alone, read anew."""
    only_environment_of(function, monkeypatch)
    moto_stack.reset_caches()
    runtime.default_settings()


def hit_path(**claims: Any) -> str:
    return tracking_url("https://t.example", TokenClaims(**claims), RING).removeprefix("https://t.example")


# --- the track function -----------------------------------------------------------------------------


def test_the_track_functions_hits_and_spills_are_granted(
    deployed: dict[str, str],
    track: Handler,  # noqa: F811 - the fixture
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    link = create_link("https://example.com/granted", short_url_enabled=True)
    capped = create_link("https://example.com/capped")
    update_link(capped.id, {"max_hits": 5})
    create_campaign("granted")
    # CloudFront's origin secret (EnableCloudFront): a request that carries it is checked against it.
    origin = boto3.client("secretsmanager", region_name=REGION).create_secret(
        Name="webbugger-origin", SecretString="origin-" + "o" * 32
    )
    monkeypatch.setenv("ORIGIN_SECRET_ARN", origin["ARN"])
    as_deployed("TrackFunction", monkeypatch)
    recipient, source = Ref("recipient", "granted@example.com"), Ref("campaign", "granted")
    paths = [
        hit_path(mode=Mode.PIXEL, entity=recipient, source=source),
        hit_path(mode=Mode.REDIRECT, target=Ref("link", link.id), entity=recipient, source=source),
        hit_path(mode=Mode.REDIRECT, target=Ref("link", capped.id), entity=Ref("ip", "visitor-1")),
        hit_path(mode=Mode.PIXEL, entity=Ref("ip", "visitor-1")),  # its record updated this time
        hit_path(mode=Mode.PIXEL, entity=Ref.parse("ip", allow_new=True)),  # a new one, made here
        f"/l/{link.id}",
    ]
    with recording() as made:
        for path in paths:
            headers = {"user-agent": UA, "x-webbugger-origin-secret": "origin-" + "o" * 32}
            event = moto_stack.http_event(path, headers=headers, source_ip=VISITOR, request_id=path[-12:])
            assert track(event, FakeContext())["statusCode"] in (200, 302)
        boto3.client("dynamodb", region_name=REGION).delete_table(TableName="test-counters-beacons")
        assert track(redirect_event(paths[0], UA, VISITOR), FakeContext())["statusCode"] == 200
    spilled = boto3.client("sqs", region_name=REGION).receive_message(QueueUrl=deployed["spill"])
    assert len(spilled["Messages"]) == 1
    assert {
        ("secretsmanager:GetSecretValue", "SigningSecret"),
        ("secretsmanager:GetSecretValue", "OriginSecret"),
        ("sqs:SendMessage", "SpillQueue"),
        ("dynamodb:UpdateItem", "LinksTable"),  # the capped link's claim
        ("dynamodb:PutItem", "IpEntitiesTable"),
    } <= used(made)
    assert not_granted("TrackFunction", made) == set()


# --- the stream function ----------------------------------------------------------------------------


def test_the_stream_functions_batches_are_granted(
    deployed: dict[str, str],
    stream: Handler,  # noqa: F811 - the fixture
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from webbugger.signing import load_visitor_salt
    from webbugger.tombstones import bury

    as_deployed("StreamFunction", monkeypatch)
    monkeypatch.setattr(sinks, "BACKOFF_S", 0.0)
    now = datetime.now(UTC).replace(microsecond=0)
    entity, source = "recipient:stream@example.com", "campaign:stream"
    bury(
        load_visitor_salt(runtime.default_settings()), "recipient:gone@example.com", now - timedelta(hours=1)
    )
    ids = [
        store(entity=entity, source=source, at=now, mode="pixel", user_agent="Mozilla/5.0", ip="17.58.97.0"),
        store(entity=entity, source=source, target="link:stream", at=now + timedelta(seconds=1)),
        store(entity="ip:visitor-2", target="link:stream", at=now + timedelta(seconds=2)),
        store(target="link:stream", source=source, at=now + timedelta(seconds=3)),  # labelled on itself
        # A plugin's deferred hook: its writes in one transaction with the beacon's "applied" mark.
        store(entity=f"{probe.TYPE_NAME}:iam", target="link:stream", at=now + timedelta(seconds=4)),
        store(
            entity="recipient:gone@example.com", source=source, at=now - timedelta(hours=2)
        ),  # erased after
    ]
    event = insert_event(ids)
    parameters.clear_caches()  # type: ignore[no-untyped-call] - a cold start: its secret read too
    with recording() as made:
        assert stream(copy.deepcopy(event), FakeContext()) == {"batchItemFailures": []}
        # Redelivered (Lambda delivers at least once), then relabelled by a later click.
        assert stream(event, FakeContext()) == {"batchItemFailures": []}
        click = store(entity=entity, source=source, target="link:stream", at=now + timedelta(minutes=5))
        # The analytics stream gone: its rows are dead-lettered.
        boto3.client("firehose", region_name=REGION).delete_delivery_stream(DeliveryStreamName="analytics")
        assert stream(insert_event([click]), FakeContext()) == {"batchItemFailures": []}
    day_key = {"pk": {"S": f"p#e#{entity}"}, "sk": {"S": now.date().isoformat()}}
    day = boto3.client("dynamodb", region_name=REGION).get_item(TableName=COUNTERS, Key=day_key)["Item"]
    opened = day["b#" + ids[0]]["M"]
    assert (opened["c"]["S"], "v" in opened) == ("human", True)  # relabelled there by a click
    needed = used(made)
    assert ("sqs:SendMessage", "HitFeedDeadLetterQueue") in needed
    assert ("secretsmanager:GetSecretValue", "VisitorSaltSecret") in needed
    assert {
        ("events:PutEvents", "HitEventBus"),
        ("firehose:PutRecordBatch", "AnalyticsDeliveryStream"),
    } <= needed
    assert ("dynamodb:DeleteItem", "BeaconsTable") in needed  # the tombstoned beacon
    assert probe.load("iam") is not None
    # The plugin's own table is granted by its deployer, not by template.yaml.
    assert {call for call in not_granted("StreamFunction", made) if call[1] != PROBES} == set()


# --- the admin function -----------------------------------------------------------------------------


@pytest.fixture
def admin(deployed: dict[str, str]) -> Iterator[Handler]:
    """The admin function's handler, loaded anew under this test's environment."""
    with moto_stack.fresh_handler(moto_stack.ROOT / "functions" / "admin") as handler:
        yield handler


def admin_call(admin: Handler, method: str, path: str, body: Any, query: dict[str, str]) -> dict[str, Any]:
    """One admin request, as the HTTP API passes it (routed as template.yaml routes it); its answer."""
    routes = [r for r in TEMPLATE.routes() if r.function == "AdminFunction"]
    parts, params = path.split("/"), {}
    for route in routes:
        pattern = route.path.split("/")
        if route.method == method and len(pattern) == len(parts):
            params = {p[1:-1]: v for p, v in zip(pattern, parts, strict=True) if p.startswith("{")}
            if all(p == v or p.startswith("{") for p, v in zip(pattern, parts, strict=True)):
                break
    else:
        raise AssertionError(f"no admin route {method} {path}")
    target = path + ("?" + urlencode(query) if query else "")
    payload = b"" if body is None else json.dumps(body).encode()
    headers = [("user-agent", "admin-test"), ("content-type", "application/json")]
    event = build_event(route, params, method, target, headers, payload, "192.0.2.1", "HTTP/1.1")
    answer: dict[str, Any] = admin(event, moto_stack.FakeContext(function_name="AdminFunction"))
    assert answer["statusCode"] < 400, (method, path, answer)
    return answer


def is_json(answer: dict[str, Any]) -> bool:
    return "json" in (answer.get("headers") or {}).get("Content-Type", "")


def admin_requests(link_id: str, recipient: str, now: datetime) -> list[tuple[str, str, Any, dict[str, str]]]:
    """Every admin route, with a body or query that gets a 2xx: (method, path, body, query)."""
    since, until = (now - timedelta(hours=1)).isoformat(), (now + timedelta(hours=1)).isoformat()
    split = {
        "variants": [
            {"name": "a", "url": "https://example.com/a"},
            {"name": "b", "url": "https://example.com/b"},
        ]
    }
    return [
        ("POST", "/links", {"url": "https://example.com/admin", "id": link_id}, {}),
        ("GET", "/links", None, {}),
        ("GET", f"/links/{link_id}", None, {}),
        ("PATCH", f"/links/{link_id}", {"max_hits": 10, "short_url_enabled": True}, {}),
        ("GET", f"/links/{link_id}/qr", None, {}),
        ("GET", f"/links/{link_id}/variants", None, {}),
        ("POST", "/links", {"url": "https://example.com/a", "id": f"{link_id}-split", "split": split}, {}),
        ("GET", f"/links/{link_id}-split/variants", None, {}),
        ("POST", "/mint", {"target": f"link:{link_id}", "entity": recipient, "source": "campaign:admin"}, {}),
        ("POST", "/mint/batch", {"items": [{"entity": recipient, "source": "campaign:admin"}]}, {}),
        ("POST", "/sends", {"source": "campaign:admin", "entities": [recipient]}, {}),
        (
            "POST",
            "/rewrite",
            {
                "html": "<a href='https://example.com/x'>x</a>",
                "campaign": "admin",
                "recipient": "r@example.com",
            },
            {},
        ),
        (
            "POST",
            "/rewrite/batch",
            {"html": "<p>hi</p>", "campaign": "admin", "recipients": ["s@example.com"]},
            {},
        ),
        ("GET", "/beacons", None, {"entity": recipient, "from": since, "to": until}),
        ("GET", "/beacons", None, {"source": "campaign:admin", "from": since, "to": until}),
        ("GET", "/stats", None, {"ref": f"link:{link_id}"}),
        ("GET", "/stats", None, {"ref": recipient}),
        ("GET", "/stats", None, {"ref": "ip:visitor-3"}),
        ("GET", "/beacons", None, {"target": f"link:{link_id}", "from": since, "to": until}),
        ("GET", "/beacons", None, {"entity": "ip:visitor-3", "from": since, "to": until}),
        ("POST", "/mint", {"entity": "ip", "source": "campaign:admin"}, {}),
        ("GET", "/stats/campaign", None, {"ref": "campaign:admin"}),
        ("GET", "/openapi.json", None, {}),
        (
            "GET",
            "/export",
            None,
            {"source": "campaign:admin", "format": "csv", "from": since, "to": until},
        ),
        ("POST", "/recount", {"from": since, "to": until}, {}),
        ("POST", "/erase", {"entity": recipient, "since": since}, {}),
        ("POST", "/erase", {"entity": "ip:visitor-3", "since": since}, {}),
        ("POST", f"/links/{link_id}/disable", None, {}),
    ]


def test_the_admin_functions_routes_are_granted(
    admin: Handler,
    stream: Handler,  # noqa: F811 - the fixture
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    as_deployed("AdminFunction", monkeypatch)
    create_campaign("admin")
    recipient = "recipient:admin@example.com"
    link_id = f"iam-{uuid.uuid4().hex[:8]}"
    now = datetime.now(UTC)
    requests = admin_requests(link_id, recipient, now)
    ids = [
        store(entity=recipient, source="campaign:admin", target=f"link:{link_id}", at=now) for _ in range(2)
    ]
    ids.append(store(entity="ip:visitor-3", at=now))
    default_registry().entity("ip").get_or_create("visitor-3")  # its record, as the inline hook made it
    # Left to recount: one labelled on its entity's day item, one on itself.
    store(entity=recipient, source="campaign:admin", at=now, mode="pixel")
    store(target=f"link:{link_id}", source="campaign:admin", at=now)
    assert stream(insert_event(ids), FakeContext()) == {"batchItemFailures": []}
    gaps: dict[str, set[Call]] = {}
    answers: list[tuple[str, Any]] = []
    for method, path, body, query in requests:
        parameters.clear_caches()  # type: ignore[no-untyped-call] - each route reads its secrets
        with recording() as made:
            answer = admin_call(admin, method, path, body, query)
        answers.append((f"{method} {path}", json.loads(answer["body"]) if is_json(answer) else None))
        if missing := not_granted("AdminFunction", made):
            gaps[f"{method} {path} {body or query}"] = missing
    # The paths ran: beacons were found, recounted, an entity's record erased.
    assert all(answer["beacons"] for route, answer in answers if route == "GET /beacons")
    assert [answer["recounted"] for route, answer in answers if route == "POST /recount"] == [2]
    assert [answer["record"] for route, answer in answers if route == "POST /erase"] == [False, True]
    assert gaps == {}


# --- the drain function -----------------------------------------------------------------------------


def test_the_drain_functions_writes_are_granted(
    deployed: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from webbugger.models import Beacon, beacon_partition
    from webbugger.signing import load_visitor_salt
    from webbugger.spill import SPILL_LOG_MESSAGE, spill_message
    from webbugger.tombstones import bury

    as_deployed("DrainFunction", monkeypatch)
    now = datetime.now(UTC).replace(microsecond=0)
    bury(load_visitor_salt(runtime.default_settings()), "recipient:gone@example.com", now)
    ids = [
        store(entity="recipient:kept@example.com", at=now - timedelta(minutes=1)),
        store(entity="recipient:gone@example.com", at=now - timedelta(minutes=1)),  # dropped
        store(entity="recipient:logged@example.com", at=now - timedelta(minutes=1)),  # from the log
    ]
    bodies = [spill_message(Beacon.get(beacon_partition(beacon_id), beacon_id)) for beacon_id in ids]
    for beacon_id in ids:
        Beacon(beacon_partition(beacon_id), beacon_id).delete()
    records = [
        {
            "messageId": str(n),
            "receiptHandle": str(n),
            "body": body,
            "attributes": {"ApproximateReceiveCount": "1"},
            "messageAttributes": {},
            "md5OfBody": "",
            "eventSource": "aws:sqs",
            "eventSourceARN": f"arn:aws:sqs:{REGION}:{moto_stack.ACCOUNT}:spill",
            "awsRegion": REGION,
        }
        for n, body in enumerate(bodies[:2])
    ]
    # ReplaySpilledLogs: the track function's log line, delivered by its subscription.
    line = json.dumps({"level": "ERROR", "message": SPILL_LOG_MESSAGE, **json.loads(bodies[2])})
    logs = {"logGroup": "track", "logEvents": [{"id": "1", "timestamp": 0, "message": line}]}
    delivery = {"awslogs": {"data": base64.b64encode(gzip.compress(json.dumps(logs).encode())).decode()}}
    context = moto_stack.FakeContext(function_name="DrainFunction")
    moto_stack.reset_caches()
    with moto_stack.fresh_handler(moto_stack.ROOT / "functions" / "drain") as handler, recording() as made:
        assert handler({"Records": records}, context) == {"batchItemFailures": []}
        assert handler(delivery, context) == {"records": 1, "invalid": 0}
    stored = [Beacon.count(beacon_partition(beacon_id), Beacon.id == beacon_id) for beacon_id in ids]
    assert stored == [1, 0, 1]
    assert ("secretsmanager:GetSecretValue", "VisitorSaltSecret") in used(made)
    assert not_granted("DrainFunction", made) == set()


def test_every_function_of_the_template_has_its_calls_checked_here() -> None:
    # A function added to template.yaml fails this until a test above runs its main paths.
    kinds = ("AWS::Serverless::Function", "AWS::Lambda::Function")
    functions = {name for name, resource in TEMPLATE.resources.items() if resource["Type"] in kinds}
    assert functions == {"TrackFunction", "StreamFunction", "AdminFunction", "DrainFunction"}
