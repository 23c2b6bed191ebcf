"""The hit feed's pieces without AWS: what an event and a row say (and never say), how rows are
packed into Firehose records and entries into PutEvents calls, that a stack with the feed off
makes no client, and that the named queries keep each hit's latest class."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from webbugger.classify import CLASSES
from webbugger.counters import daily_salt, visitor_key
from webbugger.feed import collecting_relabels, note_relabel, publish, sinks
from webbugger.feed.shapes import analytics_entity, hit_event, hit_row, person_key
from webbugger.ids import epoch_ms, new_beacon_id
from webbugger.models import Beacon, beacon_partition
from webbugger.settings import Settings
from webbugger.tombstones import tombstone_key
from webbugger_cli.analytics import connect, named_queries, write_parquet
from webbugger_cli.commands.cost_estimate import estimate
from webbugger_cli.commands.cost_inputs import load_hit_figures, load_prices, stack_settings

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = json.loads((ROOT / "docs" / "hit-event.schema.json").read_text())
SAFARI = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/18.1 Mobile/15E148 Safari/604.1"
)
AT = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)
SALT = b"feed-unit-salt-" + b"q" * 32
OFF = Settings(beacons_table="b", region="us-east-1")


def beacon(**fields: Any) -> Beacon:
    at = fields.pop("at", AT)
    beacon_id = new_beacon_id(epoch_ms(at))
    values: dict[str, Any] = {
        "mode": "redirect",
        "method": "GET",
        "target": "link:offer",
        "entity": "recipient:r1",
        "source": "campaign:autumn",
        "ip": "81.2.69.0",
        "user_agent": SAFARI,
        "country": "GB",
        "classification": "human",
    }
    return Beacon(pk=beacon_partition(beacon_id), id=beacon_id, created_at=at, **(values | fields))


def test_an_event_is_schema_valid_and_never_carries_the_address_or_the_agent() -> None:
    hit = beacon(classification="privacy-prefetch", reasons=["ua:apple-mpp"], version=3)
    for detail, kind in ((hit_event(hit), "Hit labelled"), (hit_event(hit, "human"), "Hit relabelled")):
        jsonschema.validate({"source": "webbugger", "detail-type": kind, "detail": detail}, SCHEMA)
        assert "81.2.69" not in json.dumps(detail) and "AppleWebKit" not in json.dumps(detail)
    assert hit_event(hit) | {"id": "ID"} == {
        "schema_version": 1,
        "time": "2026-11-20T09:30:00.000Z",
        "id": "ID",
        "mode": "redirect",
        "target": "link:offer",
        "entity": "recipient:r1",
        "source": "campaign:autumn",
        "class": "privacy-prefetch",
        "reasons": ["ua:apple-mpp"],
        # Parsed from the user agent when the beacon does not hold them (a redelivered record).
        "browser": "Mobile Safari",
        "os": "iOS",
        "device": "iPhone",
        "country": "GB",
        "label_version": 3,
    }
    # The schema names every class classification can give, and nothing else.
    assert set(SCHEMA["$defs"]["detail"]["properties"]["class"]["enum"]) == set(CLASSES)
    with pytest.raises(jsonschema.ValidationError):
        leaky = {**hit_event(hit), "ip": "81.2.69.0"}
        jsonschema.validate({"source": "webbugger", "detail-type": "Hit labelled", "detail": leaky}, SCHEMA)


def test_a_rows_person_is_the_counters_person() -> None:
    assert person_key(beacon(), SALT) == "e#recipient:r1"
    visitor = beacon(entity=None)
    key = visitor_key(visitor, daily_salt(SALT, "2026-11-20"))
    assert person_key(visitor, SALT) == f"v#{key}"
    assert person_key(beacon(entity=None, ip=None, user_agent=None), SALT) is None
    # The same visitor is another person the next day: keys do not link days.
    assert person_key(beacon(entity=None, at=AT + timedelta(days=1)), SALT) != f"v#{key}"


def test_a_row_names_its_entity_by_a_keyed_pseudonym_unless_asked_for_it_in_clear() -> None:
    # The analytics bucket outlives an erasure (its rows expire by lifecycle): by default it names
    # nobody. The pseudonym keeps the type, is stable (the same person across rows and days, so
    # unique figures hold) and is keyed by the visitor-salt secret (a guess cannot be tested).
    row = hit_row(beacon(entity="recipient:alice@example.com"), SALT, AT)
    assert "alice" not in json.dumps(row)
    pseudonym = analytics_entity(SALT, "recipient:alice@example.com")
    assert row["entity"] == pseudonym and row["person"] == f"e#{pseudonym}"
    assert pseudonym.startswith("recipient:") and len(pseudonym) == len("recipient:") + 24
    later = hit_row(beacon(entity="recipient:alice@example.com", at=AT + timedelta(days=3)), SALT, AT)
    assert later["person"] == row["person"]
    assert analytics_entity(SALT, "recipient:bob@example.com") != pseudonym
    assert analytics_entity(b"another-deployment-" + b"q" * 32, "recipient:alice@example.com") != pseudonym
    # Not the tombstone's hash either (one leaked value must not find the other).
    assert pseudonym.split(":")[1] not in tombstone_key(SALT, "recipient:alice@example.com")
    assert hit_row(beacon(entity=None), SALT, AT)["entity"] is None
    clear = hit_row(beacon(entity="recipient:alice@example.com"), SALT, AT, clear_entities=True)
    assert clear["entity"] == "recipient:alice@example.com"
    assert clear["person"] == "e#recipient:alice@example.com"


def test_rows_are_packed_into_5_kb_records_of_json_lines() -> None:
    rows = [hit_row(beacon(), SALT, AT) for _ in range(40)]
    records = sinks.pack_rows(rows)
    assert all(len(record) <= sinks.RECORD_BYTES for record in records)
    # About 400-byte rows (a pseudonymised entity: as long as an e-mail address in clear): 12 a record.
    assert len(records) <= len(rows) / 10
    assert [json.loads(line) for record in records for line in record.splitlines()] == rows
    # A row too big to share a record goes alone (Firehose takes up to 1,000 KiB a record).
    huge = {**rows[0], "reasons": ["x" * 6000]}
    assert [len(r.splitlines()) for r in sinks.pack_rows([rows[0], huge, rows[0]])] == [1, 1, 1]
    # The cost command's row size is the code's, for a typical click.
    row_bytes = load_hit_figures()["feed"]["row_bytes"]["value"]
    assert abs(len(json.dumps(rows[0], separators=(",", ":"))) + 1 - row_bytes) <= 0.15 * row_bytes


def test_putevents_calls_hold_at_most_10_entries_and_256_kb() -> None:
    sizes = [len(chunk) for chunk in sinks.chunks(list(range(23)), 10, 10_000, lambda _: 1)]
    assert sizes == [10, 10, 3]
    big = [len(chunk) for chunk in sinks.chunks(["x" * 100_000] * 5, 10, 256 * 1024, len)]
    assert big == [2, 2, 1]


def test_with_the_feed_off_nothing_is_kept_and_no_client_is_made(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_client(*args: object) -> None:
        raise AssertionError("a client was made with the feed off")

    monkeypatch.setattr(sinks, "client", no_client)
    with collecting_relabels(OFF) as relabels:
        note_relabel(beacon(), "privacy-prefetch")
    assert relabels == []
    publish([beacon()], relabels, SALT, OFF)
    # Outside a batch a relabel is not kept either (the admin API's erasure, the CLI).
    note_relabel(beacon(), "human")
    # And the feed's modules do not import the sinks (nor boto3) until a sink is configured.
    code = "import sys, webbugger.feed; print('webbugger.feed.sinks' in sys.modules, 'boto3' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "False"]


def test_relabels_are_kept_only_inside_a_batch_with_the_feed_on() -> None:
    on = Settings(beacons_table="b", region="us-east-1", event_bus_name="bus")
    hit = beacon()
    with collecting_relabels(on) as relabels:
        note_relabel(hit, "privacy-prefetch")
    assert relabels == [(hit, "privacy-prefetch")]


def test_dead_letters_without_a_queue_are_logged_whole(caplog: pytest.LogCaptureFixture) -> None:
    from webbugger.observability import logger

    entry = {"Detail": '{"id":"X"}'}
    with caplog.at_level("ERROR", logger=logger.name):
        sinks.dead_letter("events", [entry], OFF)
    assert any(
        getattr(r, "feed_dead_letter", None) == {"sink": "events", "entry": entry} for r in caplog.records
    )


def test_the_named_queries_keep_each_hits_latest_row(tmp_path: Path) -> None:
    # The deployed table's shape: a row per label and per class change, and a duplicate delivery.
    opened = beacon(mode="pixel", classification="privacy-prefetch", version=0)
    clicked = beacon(classification="human", version=0)
    scanner = beacon(entity="recipient:r2", classification="security-scanner", version=0)
    rows = [hit_row(b, SALT, AT) for b in (opened, clicked, clicked, scanner)]
    opened.classification, opened.version = "human", 1
    rows.append(hit_row(opened, SALT, AT + timedelta(minutes=1)))
    write_parquet(rows, tmp_path / "beacons")
    connection = connect(tmp_path / "beacons")
    results = {}
    for query in named_queries():
        relation = connection.sql(query.sql)
        results[query.name] = [dict(zip(relation.columns, row, strict=True)) for row in relation.fetchall()]
    expected = {
        "unique_human_opens": 1,  # the open, human at its latest version
        "unique_human_clicks": 1,
        "total": 3,  # three hits, five rows
        "unique_people": 2,
        "human": 2,
        "machine": 1,
    }
    (campaign,) = results["unique-humans-by-campaign"]
    assert campaign == {"day": "2026-11-20", "campaign": "campaign:autumn", **expected}
    (link,) = results["unique-humans-by-link"]
    assert link == {"day": "2026-11-20", "link": "link:offer", **expected}
    (day,) = results["unique-humans-by-day"]
    assert day == {"day": "2026-11-20", **expected}


def test_the_cost_of_the_feed_is_its_prices_times_its_units() -> None:
    settings, prices, figures = stack_settings(), load_prices(), load_hit_figures()
    plain = estimate(1_000_000, "click", settings, prices=prices, figures=figures)
    events = estimate(1_000_000, "click", settings, prices=prices, figures=figures, events=True)
    published = 1 + figures["feed"]["relabels_per_hit"]["value"]
    assert events.by_service()["EventBridge"] == pytest.approx(published * 1.0)
    assert "EventBridge" not in plain.by_service()
    analytics = estimate(1_000_000, "click", settings, prices=prices, figures=figures, analytics=True)
    assert 0 < analytics.by_service()["Firehose"] < 0.1
    # A hit the stream never sees is never published.
    pixel = estimate(
        1_000_000, "pixel", settings, prices=prices, figures=figures, events=True, analytics=True
    )
    assert pixel.total == estimate(1_000_000, "pixel", settings, prices=prices, figures=figures).total
