"""Counts survive an outage: pixels through the track handler while the stream function counts them,
DynamoDB Local killed mid-way, then ``webbugger replay`` and ``webbugger recount``.

The local stack's pieces on a DynamoDB Local of this test's own (``faults`` of
test_spill_faults): the track handler in-process, and the stream feed of template.yaml's event
source invoking the stream function. DynamoDB Local is killed while the stream function works on
a batch (from inside the feed's invocation, so that the kill is always mid-batch), kept down for
a while, and started again on the same data; the hits of the outage are logged as spilled
beacons and replayed.

Two outages: one longer than the stream's retries (the feed's record age cap of 1 s here), whose
records in flight are dead-lettered, so that only ``recount`` counts them; one shorter, which the
retries ride out (counted before any recount). Either way every answered pixel ends up stored,
counted in its target's counters and in its recipient's figures once. Each prints
``answered=N stored=N counted=N`` (see with -s).
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from typing import TYPE_CHECKING, Any

import moto_stack
import pytest
from moto_stack import entity_figures_in
from test_spill_faults import ROOT, UA, Faults, environment, faults  # noqa: F401 - fixtures
from webbugger import runtime
from webbugger.minting import tracking_url
from webbugger.modes import Mode
from webbugger.observability import logger
from webbugger.refs import Ref
from webbugger.tokens import TokenClaims
from webbugger_cli.local import state
from webbugger_cli.local.gateway_events import FakeLambdaContext
from webbugger_cli.local.stream_delivery import read_dead_letters
from webbugger_cli.local.streams import StreamFeed
from webbugger_cli.main import main
from webbugger_cli.template import load_handler, load_template

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.ddblocal

# Opens per recipient: a few, as a campaign's recipients have.
OPENS_EACH = 3
SETTLE_S = 20.0


class KillingInvoker:
    """Invokes the stream function as the local stack does; once armed, kills DynamoDB Local at
    the start of the next invocation (its batch read, its writes failing)."""

    def __init__(self, stack: Faults) -> None:
        self.faults = stack
        self.handler = load_handler(ROOT / "functions" / "stream", "app.lambda_handler")
        self.armed = threading.Event()
        self.killed = threading.Event()
        self.lock = threading.Lock()

    def __call__(self, function: str, event: dict[str, Any]) -> Any:
        with self.lock:
            if self.armed.is_set() and not self.killed.is_set():
                self.faults.stop()
                self.killed.set()
            return self.handler(event, FakeLambdaContext(function, 512, 60))


def _counted(stack: Faults, link_id: str) -> int:
    item = stack.client.get_item(
        TableName=state.table_name("CountersTable"),
        Key={"pk": {"S": f"c#target#link:{link_id}"}, "sk": {"S": time.strftime("%Y-%m-%d", time.gmtime())}},
        ConsistentRead=True,
    ).get("Item")
    return 0 if item is None else int(item["total"]["N"])


def _opens(stack: Faults, recipients: list[str]) -> dict[str, int]:
    opens = {}
    for recipient in recipients:
        figures = entity_figures_in(stack.client, state.table_name("CountersTable"), f"recipient:{recipient}")
        opens[recipient] = 0 if figures is None else figures.opens
    return opens


def _settled(stack: Faults, link_id: str, expected: int) -> int:
    """The link's count once it reaches ``expected``, or after :data:`SETTLE_S`."""
    deadline = time.monotonic() + SETTLE_S
    while (counted := _counted(stack, link_id)) != expected and time.monotonic() < deadline:
        time.sleep(0.2)
    return counted


def _dead_lettered(stack: Faults) -> set[str]:
    return {line["record"]["dynamodb"]["NewImage"]["id"]["S"] for line in read_dead_letters(stack.state_dir)}


@contextlib.contextmanager
def _feed(stack: Faults, invoke: KillingInvoker, cap: float) -> Iterator[StreamFeed]:
    feed = StreamFeed.from_template(
        load_template(ROOT), stack.ddb.endpoint, invoke, stack.state_dir, record_age_cap_s=cap
    )
    feed.start()
    try:
        yield feed
    finally:
        feed.stop()


@pytest.mark.usefixtures("environment")
@pytest.mark.parametrize(
    ("cap", "pixels"),
    [pytest.param(1.0, 210, id="longer-than-the-retries"), pytest.param(30.0, 30, id="ridden-out")],
)
def test_every_answered_pixel_is_stored_and_counted_once_after_an_outage(
    faults: Faults,  # noqa: F811 - the fixture imported above
    cap: float,
    pixels: int,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
) -> None:
    from webbugger_plugins.link import create_link

    runtime.reset()
    runtime.default_settings()  # bind the tables as the functions will
    outage_s = 2.0
    run = uuid.uuid4().hex[:8]
    link_id = f"outage-{run}"
    create_link("https://example.com/outage", link_id)
    recipients = [f"r{n}-{run}@example.com" for n in range(pixels // OPENS_EACH)]
    paths = [
        tracking_url(
            "https://t.example",
            TokenClaims(mode=Mode.PIXEL, target=Ref("link", link_id), entity=Ref("recipient", recipient)),
            faults.ring,
        ).removeprefix("https://t.example")
        for recipient in recipients
    ]
    track = moto_stack.load_track_handler()
    invoke = KillingInvoker(faults)
    answered = 0

    def send(count: int) -> None:
        nonlocal answered
        for _ in range(count):
            event = moto_stack.http_event(
                paths[answered % len(paths)],
                headers={"user-agent": f"{UA} outage/{run}"},
                source_ip="198.51.100.23",
                request_id=f"outage-{answered}",
            )
            response = track(event, moto_stack.FakeContext())
            assert response["statusCode"] == 200, response
            answered += 1

    with _feed(faults, invoke, cap):
        invoke.armed.set()  # the stream's first batch meets a dead table
        deadline = time.monotonic() + 15
        while not invoke.killed.wait(timeout=0.01) and time.monotonic() < deadline:
            if answered < pixels // 2:  # until then, hits come
                send(1)
        assert invoke.killed.is_set(), "the stream function was not invoked"
        send(pixels // 3)  # answered, spilled to the log
        time.sleep(outage_s)
        faults.restart()
        send(pixels - answered)
        spilled = [
            logger.registered_formatter.format(record)
            for record in caplog.records
            if "spilled_beacon" in record.__dict__
        ]
        log_file = tmp_path / "track.log"
        log_file.write_text("\n".join(spilled) + "\n")
        runtime.reset()
        assert main(["replay", str(log_file)]) == 0
        runtime.default_settings()
        dead_letters = len(_dead_lettered(faults))
        before_recount = _settled(faults, link_id, answered - dead_letters)
    assert main(["recount"]) == 0
    runtime.default_settings()

    stored = faults.stored()
    counted = _counted(faults, link_id)
    opens = _opens(faults, recipients)
    with capsys.disabled():
        print(
            f"\n[{cap:.0f}s retries, {outage_s}s outage] answered={answered} stored={stored} "
            f"counted={counted} (spilled {len(spilled)}, dead-lettered {dead_letters}, "
            f"counted before recount {before_recount})"
        )
    assert spilled, "nothing spilled during the outage"
    assert stored == answered
    assert counted == answered
    assert opens == dict.fromkeys(recipients, OPENS_EACH)
    if cap < outage_s:
        assert dead_letters > 0, "the outage outlasted the retries: records should have been dead-lettered"
        assert before_recount == answered - dead_letters  # only recount counted those
    else:
        assert dead_letters == 0
        assert before_recount == answered  # the retries rode the outage out
