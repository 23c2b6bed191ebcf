"""An erasure that runs while the stream function processes one of the entity's beacons leaves
nothing that names the entity, whichever way the two interleave (in-process, against moto).

The stream checks a beacon's tombstone before its hook, registration and label; an erasure can land
after that check. Two interleavings are forced here: the erasure between the tombstone check and the
deferred hook (the hook would make the recipient's record again, the registration its day item), and
the stream's whole processing between the erasure's reading of the day items and its deletions (a
day item made then would be left).
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
import moto_stack
import pytest
from moto import mock_aws
from webbugger import erase, runtime, stream_batch
from webbugger.minting import tracking_url
from webbugger.modes import Mode
from webbugger.refs import Ref
from webbugger.signing import load_visitor_salt
from webbugger.tokens import KeyRing, TokenClaims
from webbugger.tombstones import Tombstones
from webbugger_cli.template import load_handler
from webbugger_plugins.link import create_link

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

ROOT = Path(__file__).resolve().parents[2]
RING_JSON = json.dumps({"current": "k1", "k1": "E" * 48})
STREAM_CODE_URI = ROOT / "functions" / "stream"
STREAM_MODULE = f"webbugger_function_{STREAM_CODE_URI.name}_app"
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
ENTITY = "recipient:racing@example.com"
TOKEN = "racing@example.com"


@pytest.fixture
def stack(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    """Template tables in moto, the track and stream functions' environment, both handlers."""
    moto_stack.fake_aws_environment(monkeypatch)
    moto_stack.reset_caches()
    with mock_aws():
        names = moto_stack.template_table_names("race-")
        moto_stack.create_template_tables(boto3.client("dynamodb", region_name=moto_stack.REGION), names)
        moto_stack.set_function_environment(monkeypatch, names, "TrackFunction", "StreamFunction")
        moto_stack.create_signing_secret(monkeypatch, RING_JSON)
        monkeypatch.setenv("WEBBUGGER_VISITOR_SALT", "visitor-salt-" + "r" * 40)
        runtime.reset()
        settings = runtime.default_settings()
        previous = sys.modules.pop(STREAM_MODULE, None)
        try:
            yield {
                "names": names,
                "track": moto_stack.load_track_handler(),
                "stream": load_handler(STREAM_CODE_URI, "app.lambda_handler"),
                "salt": load_visitor_salt(settings),
            }
        finally:
            sys.modules.pop(STREAM_MODULE, None)
            if previous is not None:
                sys.modules[STREAM_MODULE] = previous
            moto_stack.reset_caches()


def _click(stack: dict[str, Any]) -> dict[str, Any]:
    """A click of the recipient on a stored link, an hour after the send; the beacon's stream record."""
    link = create_link("https://example.com/race", "race")
    claims = TokenClaims(
        mode=Mode.REDIRECT,
        target=Ref("link", link.id),
        entity=Ref.parse(ENTITY, allow_new=True),
        issued_at=int(time.time()) - 3600,
    )
    path = tracking_url("https://t.example", claims, KeyRing.from_json(RING_JSON)).removeprefix(
        "https://t.example"
    )
    event = moto_stack.http_event(
        path, headers={"user-agent": BROWSER}, source_ip="203.0.113.5", request_id="r"
    )
    with contextlib.redirect_stdout(io.StringIO()):
        assert stack["track"](event, moto_stack.FakeContext())["statusCode"] == 302
    client = boto3.client("dynamodb", region_name=moto_stack.REGION)
    (item,) = client.scan(TableName=stack["names"]["BeaconsTable"], ConsistentRead=True)["Items"]
    return {
        "eventID": "1",
        "eventName": "INSERT",
        "eventSource": "aws:dynamodb",
        "dynamodb": {
            "Keys": {"pk": item["pk"], "id": item["id"]},
            "NewImage": item,
            "SequenceNumber": "1".zfill(21),
            "StreamViewType": "NEW_IMAGE",
        },
    }


def _deliver(stack: dict[str, Any], record: dict[str, Any]) -> None:
    with contextlib.redirect_stdout(io.StringIO()):
        answer = stack["stream"](
            {"Records": [record]}, moto_stack.FakeContext(function_name="StreamFunction")
        )
    assert answer == {"batchItemFailures": []}


def _erase(stack: dict[str, Any]) -> None:
    erase.erase_entity(Ref.parse(ENTITY), runtime.default_registry(), stack["salt"])


def _naming(stack: dict[str, Any]) -> list[dict[str, Any]]:
    """Every stored item whose text holds the recipient's id."""
    client = boto3.client("dynamodb", region_name=moto_stack.REGION)
    found = []
    for table in stack["names"].values():
        with contextlib.suppress(client.exceptions.ResourceNotFoundException):
            items = client.scan(TableName=table, ConsistentRead=True)["Items"]
            found += [item for item in items if TOKEN in json.dumps(item)]
    return found


def _once(action: Callable[[], None]) -> Callable[[], None]:
    done: list[bool] = []

    def run() -> None:
        if not done:
            done.append(True)
            action()

    return run


def test_an_erasure_after_the_tombstone_check_leaves_no_record_or_day_item(
    stack: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    record = _click(stack)
    erase_now = _once(lambda: _erase(stack))
    real_hooks = stream_batch.apply_deferred_hooks

    def erased_first(*args: Any, **kwargs: Any) -> bool:
        erase_now()  # the erasure lands after the tombstone was read (none), before the hook
        return real_hooks(*args, **kwargs)

    monkeypatch.setattr(stream_batch, "apply_deferred_hooks", erased_first)
    _deliver(stack, record)
    assert _naming(stack) == []


def test_a_beacon_processed_while_the_erasure_runs_leaves_no_day_item(
    stack: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    record = _click(stack)
    process_now = _once(lambda: _deliver(stack, record))
    real_scan, real_buried = erase.scanned_beacons, Tombstones.buried

    def read_before_the_erasure(self: Tombstones, beacon: Any, *, fresh: bool = False) -> bool:
        return real_buried(self, beacon, fresh=True) if fresh else False

    monkeypatch.setattr(Tombstones, "buried", read_before_the_erasure)

    def processed_meanwhile(*args: Any) -> Any:
        process_now()  # the stream registers and labels the beacon after the erasure read the days
        return real_scan(*args)

    monkeypatch.setattr(erase, "scanned_beacons", processed_meanwhile)
    _erase(stack)
    assert _naming(stack) == []


def test_a_day_item_the_stream_makes_after_the_erasure_read_them_is_taken_back(
    stack: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stream's one write on the entity's day item (its label there, nothing on the beacon)
    lands after the erasure's last reading of the day items: the erasure does not delete it, and
    the stream, reading the tombstone again after its write, takes it back (and the beacon)."""
    record = _click(stack)
    process_now = _once(lambda: _deliver(stack, record))
    real_days, real_buried = erase.all_entity_days, Tombstones.buried
    readings: list[int] = []

    def read_before_the_erasure(self: Tombstones, beacon: Any, *, fresh: bool = False) -> bool:
        return real_buried(self, beacon, fresh=True) if fresh else False

    monkeypatch.setattr(Tombstones, "buried", read_before_the_erasure)

    def written_after_the_last_reading(entity: str) -> Any:
        days = real_days(entity)
        readings.append(len(days))
        if len(readings) == 2:
            process_now()  # the day item is made now: not in what the erasure deletes
        return days

    monkeypatch.setattr(erase, "all_entity_days", written_after_the_last_reading)
    _erase(stack)
    assert readings == [0, 0]
    assert _naming(stack) == []
