"""The counters' pure parts, without a database: visitor keys, daily salts, keys, days, Stats."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, date, datetime, timedelta, timezone
from typing import TYPE_CHECKING, Any

import pytest
from webbugger.counters import (
    Counter,
    DayCounts,
    Deltas,
    Stats,
    beacon_refs,
    counted_refs,
    counter_key,
    daily_salt,
    daily_stats,
    day_of,
    visitor_key,
)
from webbugger.ids import epoch_ms, new_beacon_id
from webbugger.ledger import move_deltas, tally, tally_deltas
from webbugger.models import Beacon, beacon_partition
from webbugger.persons import Day, human_claim, person_of, unique_claim
from webbugger.refs import Ref
from webbugger.registry import Kind
from webbugger.settings import Settings

if TYPE_CHECKING:
    from collections.abc import Iterator

IP = "203.0.113.0"
OTHER_IP = "198.51.100.0"
IPV6 = "2001:db8:85a3::"
UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/126.0 Safari/537.36"
OTHER_UA = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) Mobile/15E148"
DAY = "2024-05-01"
NEXT_DAY = "2024-05-02"
NOON = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
HEX32 = re.compile(r"[0-9a-f]{32}")


def beacon(
    *,
    ip: str | None = IP,
    user_agent: str | None = UA,
    at: datetime = NOON,
    target: str | None = "link:abc",
    entity: str | None = None,
    source: str | None = None,
    applied: set[str] | None = None,
) -> Beacon:
    """A beacon in memory (never saved)."""
    beacon_id = new_beacon_id(epoch_ms(at))
    return Beacon(
        pk=beacon_partition(beacon_id),
        id=beacon_id,
        created_at=at,
        mode="pixel",
        method="GET",
        target=target,
        entity=entity,
        source=source,
        ip=ip,
        user_agent=user_agent,
        hooks_applied=applied,
    )


SALT_SECRET = b"S" * 48


@pytest.fixture
def salt() -> bytes:
    return daily_salt(SALT_SECRET, DAY)


# --- visitor keys ---------------------------------------------------------------------------------


def test_visitor_key_is_deterministic_per_salt_address_and_agent(salt: bytes) -> None:
    key = visitor_key(beacon(), salt)
    assert key is not None
    assert HEX32.fullmatch(key)
    assert visitor_key(beacon(), salt) == key
    # Only the address and the agent make the visitor: not the beacon's id, time, mode or references.
    other = beacon(at=NOON + timedelta(hours=5), target="url:xyz", entity="recipient:r1", source="campaign:c")
    assert visitor_key(other, salt) == key


def test_visitor_key_differs_across_days() -> None:
    same = beacon()
    assert visitor_key(same, daily_salt(SALT_SECRET, DAY)) != visitor_key(
        same, daily_salt(SALT_SECRET, NEXT_DAY)
    )


def test_visitor_key_differs_across_addresses_and_agents(salt: bytes) -> None:
    keys = {
        visitor_key(beacon(ip=ip, user_agent=agent), salt)
        for ip in (IP, OTHER_IP, IPV6, None)
        for agent in (UA, OTHER_UA, None)
        if ip or agent
    }
    assert None not in keys
    assert len(keys) == 4 * 3 - 1


def test_address_and_agent_cannot_stand_in_for_each_other(salt: bytes) -> None:
    """The same text as an address or as an agent is two visitors (the fields are delimited)."""
    assert visitor_key(beacon(ip="x", user_agent=None), salt) != visitor_key(
        beacon(ip=None, user_agent="x"), salt
    )
    assert visitor_key(beacon(ip="a", user_agent="b c"), salt) != visitor_key(
        beacon(ip="a b", user_agent="c"), salt
    )


def test_visitor_key_is_none_without_address_and_agent(salt: bytes) -> None:
    assert visitor_key(beacon(ip=None, user_agent=None), salt) is None
    assert visitor_key(beacon(ip="", user_agent=""), salt) is None
    assert visitor_key(beacon(ip=IP, user_agent=None), salt) is not None
    assert visitor_key(beacon(ip=None, user_agent=UA), salt) is not None


@pytest.mark.parametrize(("ip", "agent"), [(IP, UA), (OTHER_IP, OTHER_UA), (IPV6, "curl/8.5.0"), (IP, None)])
def test_visitor_key_never_holds_the_address_or_agent_in_clear(
    salt: bytes, ip: str, agent: str | None
) -> None:
    key = visitor_key(beacon(ip=ip, user_agent=agent), salt)
    assert key is not None
    assert ip not in key
    if agent:
        assert agent not in key
        for word in re.findall(r"[A-Za-z]{4,}", agent):  # no recognisable fragment of the agent
            assert word.lower() not in key
    # Keyed: an unsalted hash of the same material is not the key.
    material = f"{ip}\n{agent or ''}".encode()
    assert hashlib.sha256(material).hexdigest()[:32] != key


def test_visitor_key_depends_on_the_salt() -> None:
    one = daily_salt(b"A" * 40, DAY)
    two = daily_salt(b"B" * 40, DAY)
    assert visitor_key(beacon(), one) != visitor_key(beacon(), two)


# --- daily salts --------------------------------------------------------------------------------


def test_daily_salt_is_stable_for_a_secret_and_day() -> None:
    assert daily_salt(SALT_SECRET, DAY) == daily_salt(SALT_SECRET, DAY)
    assert daily_salt(SALT_SECRET, DAY) != daily_salt(SALT_SECRET, NEXT_DAY)
    assert len(daily_salt(SALT_SECRET, DAY)) == 32


def test_daily_salt_depends_on_the_secret_only() -> None:
    assert daily_salt(b"1" * 40, DAY) != daily_salt(b"2" * 40, DAY)


def test_daily_salt_does_not_reveal_the_secret() -> None:
    salt = daily_salt(SALT_SECRET, DAY)
    assert SALT_SECRET not in salt
    assert SALT_SECRET[:16] not in salt


# --- keys, days and references --------------------------------------------------------------------


def test_counter_key_names_the_kind_and_reference() -> None:
    assert counter_key(Kind.TARGET, Ref("link", "abc")) == "c#target#link:abc"
    assert counter_key(Kind.ENTITY, "recipient:r1") == "c#entity#recipient:r1"
    assert counter_key(Kind.SOURCE, "campaign:c") == "c#source#campaign:c"


def test_day_of_is_the_utc_day() -> None:
    assert day_of(datetime(2024, 5, 1, 23, 59, 59, tzinfo=UTC)) == "2024-05-01"
    assert day_of(datetime(2024, 5, 2, 0, 0, tzinfo=UTC)) == "2024-05-02"
    new_york = timezone(timedelta(hours=-4))
    assert day_of(datetime(2024, 5, 1, 22, 30, tzinfo=new_york)) == "2024-05-02"
    assert day_of(datetime(2024, 5, 2, 1, 30, tzinfo=timezone(timedelta(hours=3)))) == "2024-05-01"


def test_beacon_refs_have_their_own_kinds() -> None:
    full = beacon(target="link:a", entity="recipient:r", source="campaign:c")
    assert beacon_refs(full) == [
        (Kind.TARGET, "link:a"),
        (Kind.ENTITY, "recipient:r"),
        (Kind.SOURCE, "campaign:c"),
    ]
    assert beacon_refs(beacon(target=None, entity="recipient:r")) == [(Kind.ENTITY, "recipient:r")]
    assert beacon_refs(beacon(target=None)) == []


def test_only_the_deployments_counted_kinds_are_counted() -> None:
    full = beacon(target="link:a", entity="recipient:r", source="campaign:c")
    default = Settings(beacons_table="b", region="us-east-1")
    assert counted_refs(full, default) == [(Kind.TARGET, "link:a"), (Kind.SOURCE, "campaign:c")]
    every = Settings(beacons_table="b", region="us-east-1", counted_kinds=("target", "entity", "source"))
    assert counted_refs(full, every) == beacon_refs(full)
    assert counted_refs(full, Settings(beacons_table="b", region="us-east-1", counted_kinds=())) == []


def test_a_person_is_the_entity_else_the_visitor(salt: bytes) -> None:
    assert person_of(beacon(entity="recipient:r"), salt) == "p#e#recipient:r"
    assert person_of(beacon(entity="recipient:r", ip=None, user_agent=None), salt) == "p#e#recipient:r"
    assert person_of(beacon(), salt) == f"p#v#{visitor_key(beacon(), salt)}"
    assert person_of(beacon(ip=None, user_agent=None), salt) is None


def test_a_tally_says_what_a_beacon_adds_to_which_counter() -> None:
    hit = beacon(target="link:a", source="campaign:c")  # a pixel: an open
    refs = beacon_refs(hit)
    day = Day(
        "p#v#x",
        DAY,
        frozenset({hit.id}),
        {
            unique_claim(Kind.TARGET, "link:a"): hit.id,
            unique_claim(Kind.SOURCE, "campaign:c"): "someone-else",
            human_claim("pixel", Kind.SOURCE, "campaign:c"): hit.id,
        },
    )
    codes = tally(hit, "human", day, refs)
    assert codes == {"human", "t", "s", "ut", "hs"}
    deltas = tally_deltas(hit, codes, 1, 400)
    assert deltas.changes == {
        ("c#target#link:a", DAY): {"total": 1, "human": 1, "unique": 1},
        ("c#source#campaign:c", DAY): {"total": 1, "human": 1, "unique_human_opens": 1},
    }
    # Relabelled machine, the claim given up: human to machine, one unique human open less.
    moved = move_deltas(hit, codes, {"machine", "t", "s", "ut"}, 400)
    assert moved.changes == {
        ("c#target#link:a", DAY): {"total": 0, "human": -1, "unique": 0, "machine": 1},
        ("c#source#campaign:c", DAY): {"total": 0, "human": -1, "unique_human_opens": -1, "machine": 1},
    }


def test_deltas_add_up_per_counter_item_and_keep_the_latest_expiry() -> None:
    deltas = Deltas()
    deltas.add(("c#target#link:a", DAY), "total", 1, 100)
    other = Deltas()
    other.add(("c#target#link:a", DAY), "total", 2, 300)
    other.add(("c#source#campaign:c", DAY), "human", 1, 200)
    deltas.merge(other)
    assert deltas.changes == {
        ("c#target#link:a", DAY): {"total": 3},
        ("c#source#campaign:c", DAY): {"human": 1},
    }
    assert deltas.expires == {("c#target#link:a", DAY): 300, ("c#source#campaign:c", DAY): 200}


# --- Stats --------------------------------------------------------------------------------------------


def series() -> Stats:
    return Stats(
        "link:abc",
        Kind.TARGET,
        [
            DayCounts("2024-02-28", total=3, unique=2, human=2, machine=1, unique_human_opens=1),
            DayCounts("2024-02-29"),
            DayCounts("2024-03-01", total=5, unique=4, human=1, machine=0, unique_human_clicks=1),
        ],
    )


def _headline(opens: int, clicks: int) -> dict[str, int]:
    return {"unique_human_opens": opens, "unique_human_clicks": clicks}


def test_stats_totals_sum_every_day() -> None:
    totals = series().totals
    assert totals == DayCounts(
        "2024-02-28..2024-03-01",
        total=8,
        unique=6,
        human=3,
        machine=1,
        unique_human_opens=1,
        unique_human_clicks=1,
    )


def test_stats_as_dict_has_every_day_and_the_range() -> None:
    assert series().as_dict() == {
        "ref": "link:abc",
        "kind": "target",
        "from": "2024-02-28",
        "to": "2024-03-01",
        "totals": {
            "unique_human_opens": 1,
            "unique_human_clicks": 1,
            "total": 8,
            "unique": 6,
            "human": 3,
            "machine": 1,
        },
        "days": [
            {"day": "2024-02-28", **_headline(1, 0), "total": 3, "unique": 2, "human": 2, "machine": 1},
            {"day": "2024-02-29", **_headline(0, 0), "total": 0, "unique": 0, "human": 0, "machine": 0},
            {"day": "2024-03-01", **_headline(0, 1), "total": 5, "unique": 4, "human": 1, "machine": 0},
        ],
    }
    json.dumps(series().as_dict())  # JSON-ready


def test_empty_stats() -> None:
    empty = Stats("link:abc", Kind.SOURCE, [])
    assert empty.totals == DayCounts("")
    assert empty.as_dict() == {
        "ref": "link:abc",
        "kind": "source",
        "from": None,
        "to": None,
        "totals": {**_headline(0, 0), "total": 0, "unique": 0, "human": 0, "machine": 0},
        "days": [],
    }


class _Found:
    """A stored counter item as Counter.query yields it (numbers come back as floats)."""

    def __init__(self, sk: str, total: float, unique: float) -> None:
        self.sk, self.total, self.unique, self.human, self.machine = sk, total, unique, 0.0, 0.0
        self.unique_human_opens, self.unique_human_clicks = 1.0, 0.0


@pytest.fixture
def queried(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[Any, ...]]]:
    calls: list[tuple[Any, ...]] = []
    stored = [_Found("2024-02-28", 3.0, 2.0), _Found("2024-03-01", 1.0, 1.0)]

    def query(hash_key: str, condition: Any = None, **kwargs: Any) -> Iterator[_Found]:
        calls.append((hash_key, condition, kwargs))
        return iter(stored)

    monkeypatch.setattr(Counter, "query", query)
    yield calls


def test_daily_stats_fills_every_day_with_zeros(queried: list[tuple[Any, ...]]) -> None:
    stats = daily_stats(Kind.TARGET, Ref("link", "abc"), date(2024, 2, 27), date(2024, 3, 2))

    assert [day.as_dict() for day in stats.days] == [
        {"day": "2024-02-27", **_headline(0, 0), "total": 0, "unique": 0, "human": 0, "machine": 0},
        {"day": "2024-02-28", **_headline(1, 0), "total": 3, "unique": 2, "human": 0, "machine": 0},
        {"day": "2024-02-29", **_headline(0, 0), "total": 0, "unique": 0, "human": 0, "machine": 0},
        {"day": "2024-03-01", **_headline(1, 0), "total": 1, "unique": 1, "human": 0, "machine": 0},
        {"day": "2024-03-02", **_headline(0, 0), "total": 0, "unique": 0, "human": 0, "machine": 0},
    ]
    assert all(
        isinstance(value, int) for day in stats.days for value in day.as_dict().values() if value != day.day
    )
    assert (stats.ref, stats.kind) == ("link:abc", Kind.TARGET)
    ((hash_key, condition, _),) = queried
    assert hash_key == "c#target#link:abc"
    assert str(condition) == str(Counter.sk.between("2024-02-27", "2024-03-02"))


def test_daily_stats_of_one_day(queried: list[tuple[Any, ...]]) -> None:
    one = daily_stats(Kind.TARGET, "link:abc", date(2024, 2, 29), date(2024, 2, 29))
    assert [(d.day, d.total) for d in one.days] == [("2024-02-29", 0)]
    assert one.as_dict()["from"] == one.as_dict()["to"] == "2024-02-29"
    assert one.totals.total == 0
