"""Labels kept on an entity's day item (:mod:`webbugger.day_labels`): counting stays exact and the
labels stay readable when the stream's one write on the day item is followed by a failure, a
concurrent writer, or a reader that reads the beacon item alone (in-process, against moto, with the
fixtures and helpers of :mod:`test_counters`).
"""

from __future__ import annotations

import copy
from datetime import timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

import pytest
from botocore.exceptions import ReadTimeoutError
from iam_grants import calls, not_granted  # noqa: F401 - calls: a fixture
from pynamodb.exceptions import UpdateError
from test_counters import (  # noqa: F401 - aws, stream, stream_module, first_commit_lost: fixtures
    BEACONS,
    COUNTERS,
    NOON,
    FakeContext,
    assert_mail_counted,
    aws,
    client,
    failures,
    figures,
    first_commit_lost,
    insert_event,
    mail_hits,
    redeliver_every_shape,
    sequence,
    store,
    stored_item,
    stream,
    stream_module,
    stream_record,
)
from webbugger import stream_batch
from webbugger.registry import Kind
from webbugger.tombstones import Tombstones

if TYPE_CHECKING:
    from types import ModuleType

    from moto_stack import Handler


def day_item(entity: str) -> dict[str, Any]:
    """The entity's day item of NOON, raw."""
    key = {"pk": {"S": f"p#e#{entity}"}, "sk": {"S": NOON.date().isoformat()}}
    item: dict[str, Any] = client().get_item(TableName=COUNTERS, Key=key, ConsistentRead=True)["Item"]
    return item


def test_a_failure_after_the_day_write_leaves_its_count_to_the_retry(
    stream: Handler,  # noqa: F811 - the fixture
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The day item's one write claims the beacon's tally to the batch's ledger; if the beacon's
    processing then fails (its tombstone read again, before the tally is added to the ledger), the
    ledger must not commit without that tally: the retried record would find it committed and
    count nothing."""
    source = "campaign:after-write"
    first = store(entity="recipient:a@example.com", source=source, at=NOON, mode="pixel")
    second = store(entity="recipient:b@example.com", source=source, at=NOON, mode="pixel")
    real = Tombstones.erased_at
    refused: list[str] = []

    def unreachable_once(self: Tombstones, entity: str, *, fresh: bool = False) -> int | None:
        if fresh and entity == "recipient:a@example.com" and not refused:
            refused.append(entity)
            raise RuntimeError("counters table unreachable")
        return real(self, entity, fresh=fresh)

    monkeypatch.setattr(Tombstones, "erased_at", unreachable_once)
    records = [stream_record(stored_item(beacon_id)) for beacon_id in (first, second)]
    response = stream({"Records": records}, FakeContext())
    assert refused, "the tombstone was read again after the day item's write"
    assert sequence(records[0]) in failures(response)
    assert "b#" + first in day_item("recipient:a@example.com")  # its label and claim are written

    # Lambda retries from the first failed record on.
    assert stream(insert_event([first, second]), FakeContext()) == {"batchItemFailures": []}
    assert figures(Kind.SOURCE, source, NOON.date())["total"] == 2
    assert stream(insert_event([first, second]), FakeContext()) == {"batchItemFailures": []}
    assert stream(insert_event([first]), FakeContext()) == {"batchItemFailures": []}
    assert figures(Kind.SOURCE, source, NOON.date())["total"] == 2


# --- what readers and the stream call, against what their functions may call ----------------------


def test_the_admin_functions_readers_of_day_labels_may_read_them(
    stream: Handler,  # noqa: F811 - the fixture
    calls: list[tuple[str, str]],  # noqa: F811 - the fixture
) -> None:
    """GET /beacons, /stats/campaign, exports and POST /recount read beacons through
    ``beacons_between``, which reads the labels their entities' day items keep (a BatchGetItem of
    day items): the admin function's role must allow each call they make."""
    from webbugger.beacon_queries import beacons_between
    from webbugger.refs import Ref

    entity, source = "recipient:reader@example.com", "campaign:readers"
    ids = [
        store(entity=entity, source=source, at=NOON + timedelta(minutes=n), mode="pixel") for n in range(2)
    ]
    assert stream(insert_event(ids), FakeContext()) == {"batchItemFailures": []}
    assert "b#" + ids[0] in day_item(entity)
    calls.clear()

    since, until = NOON - timedelta(hours=1), NOON + timedelta(hours=1)
    by_source = list(beacons_between(since, until, kind=Kind.SOURCE, ref=Ref.parse(source)))
    by_entity = list(beacons_between(since, until, kind=Kind.ENTITY, ref=Ref.parse(entity)))
    assert [beacon.classification for beacon in by_source + by_entity] == ["human"] * 4
    assert not_granted("AdminFunction", calls) == set()


def test_recount_in_the_admin_function_may_label_on_day_items(
    stream: Handler,  # noqa: F811 - the fixture
    stream_module: ModuleType,  # noqa: F811 - the fixture
    calls: list[tuple[str, str]],  # noqa: F811 - the fixture
) -> None:
    """POST /recount runs the stream's work under the admin function's role: the day item's one
    write, its reads, the relabel of an open by a click there, are calls that role allows."""
    from webbugger.recount import recount
    from webbugger.runtime import default_settings
    from webbugger.signing import load_visitor_salt

    tag = "recount-grants"
    ids = [store(**spec) for spec in mail_hits(tag)]  # never processed by the stream
    calls.clear()
    settings = default_settings()
    done = recount(
        NOON - timedelta(hours=1),
        NOON + timedelta(hours=3),
        stream_module.registry,
        load_visitor_salt(settings),
        settings,
    )
    assert (done.unfinished, done.failed) == (len(ids), 0)
    assert_mail_counted(tag)
    assert not_granted("AdminFunction", calls) == set()


def test_the_stream_functions_calls_on_day_labels_are_granted(
    stream: Handler,  # noqa: F811 - the fixture
    calls: list[tuple[str, str]],  # noqa: F811 - the fixture
) -> None:
    """The stream's one write on a day item, its reads of day items and its relabels there are
    calls its role allows."""
    entity, source = "recipient:granted@example.com", "campaign:granted"
    ids = [
        store(entity=entity, source=source, at=NOON, mode="pixel", user_agent="Mozilla/5.0", ip="17.58.97.0"),
        store(entity=entity, source=source, target="link:granted", at=NOON + timedelta(hours=1)),
    ]
    event = insert_event(ids)
    calls.clear()  # the track function's puts
    assert stream(event, FakeContext()) == {"batchItemFailures": []}
    assert stream(copy.deepcopy(event), FakeContext()) == {"batchItemFailures": []}
    opened = day_item(entity)["b#" + ids[0]]["M"]
    assert (opened["c"]["S"], "v" in opened) == ("human", True)  # relabelled there by the click
    assert not_granted("StreamFunction", calls) == set()


# --- two hits of one entity processed at once ------------------------------------------------------


@pytest.mark.parametrize("pause", ["before-write", "after-write"])
@pytest.mark.parametrize("first", [0, 1], ids=["open-first", "click-first"])
def test_two_hits_processed_at_once_settle_as_one_after_the_other(
    stream: Handler,  # noqa: F811 - the fixture
    stream_module: ModuleType,  # noqa: F811 - the fixture
    monkeypatch: pytest.MonkeyPatch,
    pause: str,
    first: int,
) -> None:
    """One hit's processing stops just before (or just after) its one write on the day item while
    the other hit of the same mail is processed whole (another shard's invocation), then goes on:
    the later reader sees the other; labels and counts end as in any sequential order."""
    from webbugger import day_labels
    from webbugger.models import Beacon
    from webbugger.runtime import default_settings
    from webbugger.signing import load_visitor_salt

    tag = f"at-once-{pause}-{first}"
    ids = [store(**spec) for spec in mail_hits(tag)]
    paused, other = ids[first], ids[1 - first]
    real = stream_batch.register_labelled
    ran: list[str] = []
    writes: list[bool] = []

    def other_meanwhile() -> None:
        ran.append(other)
        settings = default_settings()
        beacons = [Beacon.from_raw_data(stored_item(other))]
        salt = load_visitor_salt(settings)
        assert stream_batch.process_batch(beacons, stream_module.registry, salt, settings) == set()

    def interleaved(beacon: Beacon, *args: Any) -> Any:
        if beacon.id == paused and not ran and pause == "before-write":
            other_meanwhile()
        written = real(beacon, *args)
        if beacon.id == paused:
            writes.append(written is not None)
        if beacon.id == paused and not ran and pause == "after-write":
            other_meanwhile()
        return written

    monkeypatch.setattr(stream_batch, "register_labelled", interleaved)
    assert stream(insert_event([paused]), FakeContext()) == {"batchItemFailures": []}
    assert ran == [other]
    # Before its write: the day item changed since read, so it is read again and written then.
    assert writes == ([False, True] if pause == "before-write" else [True])
    monkeypatch.setattr(stream_batch, "register_labelled", real)
    assert stream(insert_event([ids[2]]), FakeContext()) == {"batchItemFailures": []}

    assert_mail_counted(tag)
    stored = [day_labels.reload(Beacon.from_raw_data(stored_item(beacon_id))) for beacon_id in ids]
    assert [beacon.classification if beacon else None for beacon in stored] == ["human"] * 3
    redeliver_every_shape(stream, ids, partial(assert_mail_counted, tag))


def test_recount_counts_once_the_day_labelled_beacons_whose_batch_never_committed(
    stream: Handler,  # noqa: F811 - the fixture
    stream_module: ModuleType,  # noqa: F811 - the fixture
    first_commit_lost: list[Any],  # noqa: F811 - the fixture
) -> None:
    """``recount`` reads beacons with the labels their day items keep (their claims naming a
    ledger that never committed) and runs the stream's work for them: counted once, however often
    it runs, and the stream's own redelivery after it counts nothing more."""
    from webbugger.recount import recount
    from webbugger.runtime import default_settings
    from webbugger.signing import load_visitor_salt

    tag = "recount-day"
    ids = [store(**spec) for spec in mail_hits(tag)]
    assert len(failures(stream(insert_event(ids), FakeContext()))) == len(ids)
    assert first_commit_lost, "the batch's commit was lost"
    assert all("b#" + beacon_id in day_item(f"recipient:{tag}") for beacon_id in ids)

    settings = default_settings()
    salt = load_visitor_salt(settings)
    since, until = NOON - timedelta(hours=1), NOON + timedelta(hours=3)
    done = recount(since, until, stream_module.registry, salt, settings)
    assert (done.unfinished, done.failed) == (len(ids), 0)
    assert_mail_counted(tag)
    again = recount(since, until, stream_module.registry, salt, settings)
    assert again.unfinished == 0
    redeliver_every_shape(stream, ids, partial(assert_mail_counted, tag))


def test_a_day_item_lives_as_long_as_the_beacons_whose_labels_it_keeps(
    stream: Handler,  # noqa: F811 - the fixture
) -> None:
    """Hits of one day reach the stream in any order (shards, retries): the day item, which keeps
    their labels and counting claims, must not expire before any of its beacons (else a beacon
    still stored reads as never labelled, and ``recount`` would count it again)."""
    entity = "recipient:late-night@example.com"
    day = NOON.replace(hour=0)
    late = store(entity=entity, source="campaign:ttl", at=day + timedelta(hours=23), mode="pixel")
    early = store(entity=entity, source="campaign:ttl", at=day + timedelta(hours=1), mode="pixel")
    for beacon_id in (late, early):  # the later hit first
        assert stream(insert_event([beacon_id]), FakeContext()) == {"batchItemFailures": []}
    item = day_item(entity)
    assert {"b#" + late, "b#" + early} <= set(item)
    assert int(item["expires"]["N"]) >= max(int(stored_item(b)["expires"]["N"]) for b in (late, early))


# --- the first read of the day item may be stale --------------------------------------------------


def test_a_stale_first_read_of_the_day_item_counts_nothing_twice(
    stream: Handler,  # noqa: F811 - the fixture
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The stream's first read of a day item is eventually consistent: here it always returns the
    item as it was before any hit (none), for first deliveries, redeliveries and a busy day's later
    hits alike; the conditional write refuses what was read wrong and the strongly consistent
    read that follows gets it right."""
    from webbugger.persons import read

    def stale(person: str, day: str, *, consistent: bool = True) -> Any:
        return read(person, day) if consistent else None

    monkeypatch.setattr(stream_batch, "read", stale)
    tag = "stale-read"
    ids = [store(**spec) for spec in mail_hits(tag)]
    assert stream(insert_event(ids[:1]), FakeContext()) == {"batchItemFailures": []}
    assert stream(insert_event(ids[1:]), FakeContext()) == {"batchItemFailures": []}
    assert_mail_counted(tag)
    redeliver_every_shape(stream, ids, partial(assert_mail_counted, tag))

    entity, source = "recipient:stale-busy@example.com", "campaign:stale-busy"
    busy = [
        store(entity=entity, source=source, at=NOON + timedelta(minutes=n), mode="pixel") for n in range(10)
    ]
    for beacon_id in busy:
        assert stream(insert_event([beacon_id]), FakeContext()) == {"batchItemFailures": []}
    labelled = [name for name in day_item(entity) if name.startswith("b#")]
    assert 2 <= len(labelled) < len(busy)
    expected = {"total": 10, "unique": 1, "human": 10}

    def check() -> None:
        found = figures(Kind.SOURCE, source, NOON.date())
        assert {name: found[name] for name in expected} == expected

    check()
    redeliver_every_shape(stream, busy, check)


# --- a write that landed though its answer said otherwise ------------------------------------------


@pytest.mark.parametrize("path", ["day-item", "beacon-item"])
def test_a_claim_that_landed_unseen_is_counted_in_its_own_batch(
    stream: Handler,  # noqa: F811 - the fixture
    monkeypatch: pytest.MonkeyPatch,
    path: str,
) -> None:
    """The counting claim's write is applied but its answer is lost (a 500 or a timeout, retried
    by the SDK, whose retry is refused: the claim is there): the beacon then finds itself claimed
    to its own batch's ledger, which must count it, not take it for a record delivered twice in
    the batch (that ledger would commit without it, and every later delivery find it counted)."""
    source = f"campaign:unseen-{path}"
    if path == "day-item":  # an entity's beacon: its claim is on its day item
        lost = store(entity=f"recipient:unseen-{path}@example.com", source=source, at=NOON, mode="pixel")
        name, real = "register_labelled", stream_batch.register_labelled
    else:  # a visitor's: its claim is on the beacon item
        lost = store(source=source, at=NOON, mode="pixel")
        name, real = "claim", stream_batch.claim
    other = store(entity="recipient:seen@example.com", source=source, at=NOON, mode="pixel")
    answered: list[str] = []

    def answer_lost(beacon: Any, *args: Any) -> bool:
        written: bool = real(beacon, *args)
        if beacon.id == lost and not answered:
            answered.append(beacon.id)
            return False  # what the SDK's refused retry says
        return written

    monkeypatch.setattr(stream_batch, name, answer_lost)
    assert stream(insert_event([lost, other]), FakeContext()) == {"batchItemFailures": []}
    assert answered == [lost]
    assert figures(Kind.SOURCE, source, NOON.date())["total"] == 2
    assert stream(insert_event([lost, other]), FakeContext()) == {"batchItemFailures": []}
    assert figures(Kind.SOURCE, source, NOON.date())["total"] == 2


@pytest.mark.parametrize("path", ["day-item", "beacon-item"])
def test_a_claim_whose_outcome_is_unknown_is_counted_once(
    stream: Handler,  # noqa: F811 - the fixture
    monkeypatch: pytest.MonkeyPatch,
    path: str,
) -> None:
    """The counting claim's UpdateItem is applied but its answer never comes (a read timeout
    after the SDK's retries: the outcome unknown). The record fails and comes again; its batch's
    ledger must not commit without its tally, or the retry finds that ledger committed and counts
    nothing."""
    from pynamodb.models import Model
    from webbugger.models import Beacon
    from webbugger.persons import PersonDay

    source, entity = f"campaign:unknown-{path}", f"recipient:unknown-{path}@example.com"
    if path == "day-item":
        lost = store(entity=entity, source=source, at=NOON, mode="pixel")
    else:
        lost = store(source=source, at=NOON, mode="pixel")
    other = store(entity="recipient:known@example.com", source=source, at=NOON, mode="pixel")
    real = Model.update
    timed_out: list[str] = []

    def no_answer(self: Model, *args: Any, **kwargs: Any) -> Any:
        answer = real(self, *args, **kwargs)
        mine = self.pk == f"p#e#{entity}" if path == "day-item" else getattr(self, "id", None) == lost
        if isinstance(self, PersonDay if path == "day-item" else Beacon) and mine and not timed_out:
            timed_out.append(lost)  # its first write: the claim
            endpoint = "https://dynamodb.us-east-1.amazonaws.com"
            raise UpdateError("Failed to update item", ReadTimeoutError(endpoint_url=endpoint))
        return answer

    monkeypatch.setattr(Model, "update", no_answer)
    records = [stream_record(stored_item(beacon_id)) for beacon_id in (lost, other)]
    response = stream({"Records": records}, FakeContext())
    assert timed_out == [lost]
    assert sequence(records[0]) in failures(response)
    for _ in range(2):  # from the failed record on, then everything again
        assert stream(insert_event([lost, other]), FakeContext()) == {"batchItemFailures": []}
        assert figures(Kind.SOURCE, source, NOON.date())["total"] == 2


def test_a_batchs_second_hit_of_one_recipient_starts_from_the_day_item_the_first_left(
    stream: Handler,  # noqa: F811 - the fixture
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two hits of one recipient in one batch: the second starts from the item the first one's
    write returned, so neither reads the day item twice nor makes a write that fails."""
    from pynamodb.connection.base import Connection

    entity = "recipient:twice@example.com"
    ids = [
        store(entity=entity, source="campaign:twice", at=NOON + timedelta(minutes=n), mode="pixel")
        for n in (0, 5)
    ]
    made: list[tuple[str, str, bool]] = []
    real = Connection.dispatch

    def recording(self: Connection, operation: str, kwargs: dict[str, Any]) -> dict[str, Any]:
        key = kwargs.get("Key", {}).get("pk", {}).get("S", "")
        try:
            answer: dict[str, Any] = real(self, operation, kwargs)
        except Exception:
            made.append((operation, key, False))
            raise
        made.append((operation, key, True))
        return answer

    monkeypatch.setattr(Connection, "dispatch", recording)
    assert stream(insert_event(ids), FakeContext()) == {"batchItemFailures": []}
    on_day = [(operation, ok) for operation, key, ok in made if key == f"p#e#{entity}"]
    assert on_day == [("GetItem", True), ("UpdateItem", True), ("UpdateItem", True)]
    assert sorted(name.removeprefix("b#") for name in day_item(entity) if name.startswith("b#")) == ids


def test_a_day_item_that_keeps_changing_leaves_the_label_to_the_beacon(
    stream: Handler,  # noqa: F811 - the fixture
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """When every attempt of the one write finds the day item changed (a burst of the entity's
    hits), the beacon is labelled on itself, its registration taking what is free: counted once,
    not failed."""
    tag = "conflicts"
    ids = [store(**spec) for spec in mail_hits(tag)]
    monkeypatch.setattr(stream_batch, "register_labelled", lambda *args: None)
    assert stream(insert_event(ids), FakeContext()) == {"batchItemFailures": []}
    assert all("class" in stored_item(beacon_id) for beacon_id in ids)
    assert_mail_counted(tag)
    redeliver_every_shape(stream, ids, partial(assert_mail_counted, tag))


@pytest.mark.parametrize("entity", ["recipient:late@example.com", "ip:203.0.113.7"])
def test_the_stream_may_take_back_what_it_wrote_for_a_beacon_erased_meanwhile(
    stream: Handler,  # noqa: F811 - the fixture
    monkeypatch: pytest.MonkeyPatch,
    calls: list[tuple[str, str]],  # noqa: F811 - the fixture
    entity: str,
) -> None:
    """An erasure lands between a beacon's day-item write and the stream's second tombstone read:
    the stream takes back its day item (deleting it once empty), the beacon and the entity's
    record, with calls its role allows (a recipient has no record; an ip entity has one)."""
    from webbugger.models import beacon_partition
    from webbugger.refs import Ref
    from webbugger.runtime import default_registry, default_settings
    from webbugger.signing import load_visitor_salt
    from webbugger.tombstones import bury

    ref = Ref.parse(entity)
    entity_type = default_registry().entity(ref.type)
    entity_type.get_or_create(ref.id)  # an ip entity's record, made by its inline hook; none for a recipient
    beacon_id = store(entity=entity, source="campaign:late", at=NOON, mode="pixel")
    real = stream_batch.register_labelled

    def erased_after_the_write(beacon: Any, *args: Any) -> Any:
        written = real(beacon, *args)
        bury(load_visitor_salt(default_settings()), entity, NOON + timedelta(hours=1))
        return written

    monkeypatch.setattr(stream_batch, "register_labelled", erased_after_the_write)
    event = insert_event([beacon_id])
    calls.clear()  # the beacon's put
    assert stream(event, FakeContext()) == {"batchItemFailures": []}
    day_key = {"pk": {"S": f"p#e#{entity}"}, "sk": {"S": NOON.date().isoformat()}}
    assert "Item" not in client().get_item(TableName=COUNTERS, Key=day_key, ConsistentRead=True)
    beacon_key = {"pk": {"S": beacon_partition(beacon_id)}, "id": {"S": beacon_id}}
    assert "Item" not in client().get_item(TableName=BEACONS, Key=beacon_key, ConsistentRead=True)
    assert entity_type.load is not None
    assert entity_type.load(ref.id or "") is None
    assert not_granted("StreamFunction", calls) == set()
    assert not_granted("AdminFunction", calls) == set()  # recount does the same work
