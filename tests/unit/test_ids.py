"""Beacon ids (ULIDs): 26 characters, time-ordered, carrying their creation millisecond."""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime, timedelta

import pytest
from webbugger.ids import beacon_id_floor, beacon_id_time, new_beacon_id, new_link_id

CROCKFORD = re.compile(r"[0-9A-HJKMNP-TV-Z]{26}\Z")
# A fixed moment: 2025-05-06T07:08:09.123Z.
MOMENT_MS = 1_746_515_289_123


def test_beacon_id_is_26_crockford_characters() -> None:
    for _ in range(200):
        assert CROCKFORD.match(new_beacon_id())


def test_beacon_ids_are_unique_within_one_millisecond() -> None:
    made = {new_beacon_id(MOMENT_MS) for _ in range(1000)}
    assert len(made) == 1000
    assert {bid[:10] for bid in made} == {new_beacon_id(MOMENT_MS)[:10]}


def test_beacon_ids_sort_in_time_order() -> None:
    rng = random.Random(1234)
    times = sorted(rng.randrange(0, 2**48) for _ in range(500))
    made = [new_beacon_id(ms) for ms in times]
    # Text order (DynamoDB's sort-key order) is creation order, across every digit boundary.
    assert sorted(made) == made
    assert new_beacon_id(MOMENT_MS) < new_beacon_id(MOMENT_MS + 1)


def test_beacon_id_time_round_trips_the_millisecond() -> None:
    rng = random.Random(99)
    # Up to the year 2223; from 2242 on, beacon_id_time's float division loses the millisecond.
    top = 8_000_000_000_000
    for ms in [0, 1, 999, MOMENT_MS, top, *(rng.randrange(0, top) for _ in range(5000))]:
        moment = beacon_id_time(new_beacon_id(ms))
        assert moment.tzinfo is UTC
        assert moment == datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)


def test_beacon_id_time_of_a_fresh_id_is_now() -> None:
    before = datetime.now(UTC)
    moment = beacon_id_time(new_beacon_id())
    after = datetime.now(UTC)
    assert before - timedelta(milliseconds=1) <= moment <= after


def test_floor_sorts_before_every_id_of_its_moment_and_after_every_earlier_one() -> None:
    moment = datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=MOMENT_MS)
    floor = beacon_id_floor(moment)
    assert len(floor) == 26
    assert floor.endswith("0" * 16)
    for _ in range(200):
        assert new_beacon_id(MOMENT_MS - 1) < floor <= new_beacon_id(MOMENT_MS) < new_beacon_id(MOMENT_MS + 1)
    assert beacon_id_floor(moment + timedelta(microseconds=999)) == floor


def test_floor_orders_like_time() -> None:
    start = datetime(2024, 2, 29, 23, 59, 59, tzinfo=UTC)
    floors = [beacon_id_floor(start + timedelta(milliseconds=step * 7)) for step in range(300)]
    assert floors == sorted(floors)
    assert len(set(floors)) == len(floors)


@pytest.mark.parametrize("ms", [1_073_782_354_541, 2_198_965_440_706])
def test_floor_of_a_beacons_own_time_is_its_millisecond(ms: int) -> None:
    bid = new_beacon_id(ms)
    assert beacon_id_floor(beacon_id_time(bid)) == bid[:10] + "0" * 16


def test_floor_of_a_beacons_own_time_is_its_millisecond_today() -> None:
    for ms in range(MOMENT_MS, MOMENT_MS + 20_000):
        bid = new_beacon_id(ms)
        assert beacon_id_floor(beacon_id_time(bid)) == bid[:10] + "0" * 16, ms


def test_link_ids_are_short_base62() -> None:
    made = {new_link_id() for _ in range(500)}
    assert len(made) == 500
    assert all(re.fullmatch(r"[0-9A-Za-z]{8}", link_id) for link_id in made)
    assert len(new_link_id(12)) == 12


def test_floor_of_a_time_before_1970_is_the_smallest_id() -> None:
    # A range query from such a time must start below every id, not above them all.
    floor = beacon_id_floor(datetime(1900, 1, 1, tzinfo=UTC))
    assert floor == "0" * 26
    assert floor <= new_beacon_id(0) < beacon_id_floor(datetime(1970, 1, 2, tzinfo=UTC))
