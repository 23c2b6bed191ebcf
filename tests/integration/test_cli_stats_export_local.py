"""``webbugger link|stats|export`` against the real local stack (DynamoDB Local, the HTTP API, the
stream feed that keeps the counters).

The scenario: a link made with the CLI is followed (its short URL) 3 times by one visitor and twice
by another; ``stats`` then shows 5 hits from 2 unique visitors, its chart has today's row,
``export`` gives the 5 beacons, and a link changed with ``link update``/``link disable`` answers
404. The admin API client is also run against the local admin API.

The track function caches a link for LOOKUP_CACHE_SECONDS (30 s by default), so each link here is
hit only after its last change: a change reaches visitors within that time, not at once.
"""

from __future__ import annotations

import csv
import http.client
import io
import json
import secrets
import time
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import urlsplit

import pytest
from botocore.credentials import Credentials
from webbugger.refs import Ref
from webbugger.registry import Kind
from webbugger.service.beacons import BeaconQuery as ExportQuery
from webbugger_cli.admin_client import AdminClient
from webbugger_cli.commands import UsageError, admin_backend
from webbugger_cli.commands.admin_backend import AdminBackend

if TYPE_CHECKING:
    import subprocess

    from conftest import RunningStack

pytestmark = pytest.mark.ddblocal

DESTINATION = "https://example.com/landing"
COUNTERS_TIMEOUT_S = 15.0
VISITOR_A = "stats-export-test/visitor-a"
VISITOR_B = "stats-export-test/visitor-b"


class Hit(NamedTuple):
    status: int
    location: str | None


def webbugger(stack: RunningStack, *args: str) -> subprocess.CompletedProcess[str]:
    return stack.cli(*args, env={"COLUMNS": "80"})


def ok(stack: RunningStack, *args: str) -> str:
    result = webbugger(stack, *args)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    return result.stdout


def one_line_error(stack: RunningStack, *args: str) -> str:
    result = webbugger(stack, *args)
    assert result.returncode == 1, result.stdout
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def fields(table: str) -> dict[str, str]:
    """``name value`` lines as a dict."""
    return dict(line.split(maxsplit=1) for line in table.splitlines())


def get(url: str, user_agent: str) -> Hit:
    """GET ``url`` without following a redirect."""
    parts = urlsplit(url)
    assert parts.hostname is not None
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=30)
    try:
        conn.request("GET", parts.path, headers={"User-Agent": user_agent})
        response = conn.getresponse()
        response.read()
        return Hit(response.status, response.getheader("Location"))
    finally:
        conn.close()


def redirect_url(stack: RunningStack, link_id: str) -> str:
    return ok(stack, "url", "redirect", "--target", f"link:{link_id}").strip()


def new_id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(4)}"


def stats_json(stack: RunningStack, ref: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(ok(stack, "stats", ref, "--json", "--days", "2"))
    return data


def wait_for_counts(stack: RunningStack, ref: str, total: int, unique: int) -> dict[str, Any]:
    """Poll ``stats --json`` until the stream function has counted every hit (bounded)."""
    deadline = time.monotonic() + COUNTERS_TIMEOUT_S
    while True:
        data = stats_json(stack, ref)
        if (data["totals"]["total"], data["totals"]["unique"]) == (total, unique):
            return data
        assert time.monotonic() < deadline, f"counters of {ref} still {data['totals']}"
        time.sleep(0.5)


def test_link_hits_stats_chart_and_export(local_stack: RunningStack) -> None:
    link_id = new_id("stats")
    ref = f"link:{link_id}"
    started = datetime.now(UTC) - timedelta(seconds=1)
    created = ok(local_stack, "link", "create", DESTINATION, "--id", link_id, "--tag", "issue", "--short-url")
    assert created.strip() == link_id
    # The link's short public URL, as `link show` gives it.
    url = json.loads(ok(local_stack, "link", "show", link_id, "--json"))["short_url"]
    assert url == f"{local_stack.api_url.rstrip('/')}/l/{link_id}"
    hits = [get(url, VISITOR_A) for _ in range(3)] + [get(url, VISITOR_B) for _ in range(2)]
    assert hits == [Hit(302, DESTINATION)] * 5

    data = wait_for_counts(local_stack, ref, total=5, unique=2)
    today = datetime.now(UTC).date().isoformat()
    assert set(data) == {"ref", "kind", "from", "to", "totals", "days"}
    assert (data["ref"], data["kind"], data["to"]) == (ref, "target", today)
    assert data["totals"]["total"] == 5
    # Labelled by the stream: two visitors' browser-like clicks (no entity: a visitor is a person).
    assert data["days"][-1] == {
        "day": today,
        "unique_human_opens": 0,
        "unique_human_clicks": 2,
        "total": 5,
        "unique": 2,
        "human": 5,
        "machine": 0,
    }
    assert len(data["days"]) == 2

    # The kind is the registry's: `link` is a target type only.
    chart = ok(local_stack, "stats", ref, "--days", "7").splitlines()
    first_day = (datetime.now(UTC) - timedelta(days=6)).date().isoformat()
    assert chart[0].startswith(f"{ref} (target), {first_day} to {today}: ")
    assert chart[0].endswith(
        "unique human opens 0, unique human clicks 2; total 5, unique 2, human 5, machine 0"
    )
    assert chart[1].split()[:3] == ["DAY", "TOTAL", "UNIQUE"]
    assert len(chart) == 2 + 7
    row = chart[-1]
    assert row.startswith(today)
    assert row.split()[1:3] == ["5", "2"]
    bar = row.split()[-1]
    assert set(bar) == {"█", "░"}
    assert len(row) <= 80
    assert all(line.split()[1:] == ["0", "0"] for line in chart[2:-1])  # the days before: no hits

    export = webbugger(local_stack, "export", "--target", ref, "--format", "jsonl")
    assert export.returncode == 0, export.stderr
    exported = [json.loads(line) for line in export.stdout.splitlines()]
    assert export.stderr == "exported 5 beacons\n"  # stderr is not a terminal: one summary line
    assert len(exported) == 5
    assert all(record["target"] == ref and record["mode"] == "redirect" for record in exported)
    assert sorted(record["user_agent"] for record in exported) == [VISITOR_A] * 3 + [VISITOR_B] * 2
    ids = [record["id"] for record in exported]
    assert ids == sorted(ids, reverse=True), "newest first"
    listed = ok(local_stack, "beacons", "list", "--target", ref, "--json").splitlines()
    assert [json.loads(line) for line in listed] == exported

    # The same beacons in CSV, and among every beacon of the time range.
    as_csv = ok(local_stack, "export", "--target", ref, "--from", started.isoformat())
    rows = list(csv.DictReader(io.StringIO(as_csv)))
    assert [row["id"] for row in rows] == ids
    assert list(rows[0]) == list(exported[0])
    everything = ok(local_stack, "export", "--from", started.isoformat(), "--format", "jsonl")
    assert set(ids) <= {json.loads(line)["id"] for line in everything.splitlines()}
    # Nothing before the link existed.
    before = ok(local_stack, "export", "--target", ref, "--to", started.isoformat(), "--format", "jsonl")
    assert before == ""


def test_link_show_list_and_update(local_stack: RunningStack) -> None:
    link_id = new_id("show")
    expires = (datetime.now(UTC) + timedelta(days=7)).replace(microsecond=0)
    ok(
        local_stack,
        "link",
        "create",
        DESTINATION,
        "--id",
        link_id,
        "--expires-at",
        expires.isoformat(),
        "--max-hits",
        "10",
        "--tag",
        "spring",
        "--tag",
        "email",
        "--forward-query",
        "--short-url",
    )
    shown = json.loads(ok(local_stack, "link", "show", link_id, "--json"))
    assert shown["short_url"] == f"{local_stack.api_url.rstrip('/')}/l/{link_id}"
    assert shown["expires_at"] == expires.isoformat()
    assert (shown["max_hits"], shown["hits"], shown["tags"]) == (10, 0, ["email", "spring"])
    assert shown["forward_query"] is True
    assert shown["disabled"] is False

    table = fields(ok(local_stack, "link", "show", link_id))
    assert table["short_url"] == f"{local_stack.api_url.rstrip('/')}/l/{link_id}"
    assert table["state"] == "active"
    assert table["tags"] == "email, spring"

    listed = [
        json.loads(line)
        for line in ok(local_stack, "link", "list", "--json", "--limit", "10000").splitlines()
    ]
    assert shown in listed
    assert len(ok(local_stack, "link", "list", "--json", "--limit", "1").splitlines()) == 1
    rows = ok(local_stack, "link", "list", "--limit", "10000").splitlines()
    assert rows[0].split() == ["ID", "STATE", "HITS", "MAX", "EXPIRES", "TAGS", "SHORT", "URL"]
    assert any(row.split()[:4] == [link_id, "active", "0", "10"] for row in rows[1:])
    assert any(row.split()[0] == link_id and row.split()[-2] == "yes" for row in rows[1:])

    updated = json.loads(
        ok(
            local_stack,
            "link",
            "update",
            link_id,
            "--url",
            "https://example.com/new",
            "--no-forward-query",
            "--tag",
            "summer",
            "--json",
        )
    )
    assert (updated["url"], updated["forward_query"], updated["tags"]) == (
        "https://example.com/new",
        False,
        ["summer"],
    )
    assert updated["max_hits"] == 10  # untouched fields stay
    # First hit on this link: no cached copy, the change is seen at once.
    assert get(redirect_url(local_stack, link_id), VISITOR_A) == Hit(302, "https://example.com/new")
    assert json.loads(ok(local_stack, "link", "show", link_id, "--json"))["hits"] == 1


def test_update_and_disable_then_404(local_stack: RunningStack) -> None:
    disabled = new_id("off")
    ok(local_stack, "link", "create", DESTINATION, "--id", disabled)
    url = redirect_url(local_stack, disabled)  # minted while the link can still be followed
    assert ok(local_stack, "link", "disable", disabled) == f"disabled link {disabled}\n"
    assert get(url, VISITOR_A).status == 404
    assert fields(ok(local_stack, "link", "show", disabled))["state"] == "disabled"

    expired = new_id("exp")
    ok(local_stack, "link", "create", DESTINATION, "--id", expired)
    url = redirect_url(local_stack, expired)
    past = (datetime.now(UTC) - timedelta(minutes=1)).isoformat()
    ok(local_stack, "link", "update", expired, "--expires-at", past)
    assert get(url, VISITOR_A).status == 404

    capped = new_id("cap")
    ok(local_stack, "link", "create", DESTINATION, "--id", capped)
    ok(local_stack, "link", "update", capped, "--max-hits", "1")
    url = redirect_url(local_stack, capped)
    assert get(url, VISITOR_A) == Hit(302, DESTINATION)
    assert get(url, VISITOR_A).status == 404

    fallback = new_id("fb")
    ok(
        local_stack,
        "link",
        "create",
        DESTINATION,
        "--id",
        fallback,
        "--fallback-url",
        "https://example.com/sorry",
    )
    url = redirect_url(local_stack, fallback)
    ok(local_stack, "link", "disable", fallback)
    assert get(url, VISITOR_A) == Hit(302, "https://example.com/sorry")


@pytest.mark.parametrize(
    "args",
    [
        ("link", "show", "no-such-link"),
        ("link", "update", "no-such-link", "--max-hits", "3"),
        ("link", "disable", "no-such-link"),
    ],
)
def test_missing_link(local_stack: RunningStack, args: tuple[str, ...]) -> None:
    assert one_line_error(local_stack, *args) == "webbugger: error: no link with id 'no-such-link'"


def test_stats_of_an_unused_link_are_zeros(local_stack: RunningStack) -> None:
    # A stored link nobody hit (one that does not exist is refused: test_no_silent_wrong_answers).
    ref = f"link:{local_stack.create_link('https://example.com/unused')}"
    data = stats_json(local_stack, ref)
    assert data["totals"] == {
        "unique_human_opens": 0,
        "unique_human_clicks": 0,
        "total": 0,
        "unique": 0,
        "human": 0,
        "machine": 0,
    }
    assert [day["total"] for day in data["days"]] == [0, 0]
    assert ok(local_stack, "export", "--target", ref, "--format", "jsonl") == ""
    header = ok(local_stack, "export", "--target", ref).strip()
    assert header.startswith("id,created_at,mode,method,target")


def test_a_range_beyond_the_retention_reads_what_the_table_holds(local_stack: RunningStack) -> None:
    # A newcomer's `--from 1900-01-01`: the admin API clamps a range to the retention and to now;
    # the local stack's export and relabel must too, not fail on the database (ids of times
    # before 1970) nor walk a century of empty day partitions.
    link_id = new_id("old-range")
    ok(local_stack, "link", "create", DESTINATION, "--id", link_id)
    assert get(redirect_url(local_stack, link_id), VISITOR_A) == Hit(302, DESTINATION)
    ref = f"link:{link_id}"
    wide = ("--from", "1900-01-01", "--to", "2999-12-31")
    exported = ok(local_stack, "export", "--target", ref, *wide, "--format", "jsonl").splitlines()
    assert [json.loads(line)["target"] for line in exported] == [ref]
    # Wholly before what the table holds: nothing to read, not an error.
    assert ok(local_stack, "export", "--from", "1900-01-01", "--to", "1970-01-02").startswith("id,")
    relabelled = json.loads(
        ok(local_stack, "relabel", "--from", "1900-01-01", "--to", "1970-01-02", "--json")
    )
    assert relabelled["examined"] == 0


# --- the admin API client against the local admin API (which, locally, does not check SigV4) ----------


@pytest.fixture
def admin(local_stack: RunningStack, monkeypatch: pytest.MonkeyPatch) -> AdminBackend:
    if not local_stack.admin_url:
        pytest.skip("the local stack serves no admin API")
    monkeypatch.setattr(admin_backend, "EXPORT_PAGE", 2)  # several pages from a few beacons
    client = AdminClient(local_stack.admin_url, "us-east-1", Credentials("local", "local"))
    return AdminBackend(client, local_stack.api_url)


def test_admin_backend_against_the_admin_api(local_stack: RunningStack, admin: AdminBackend) -> None:
    link_id = new_id("admin")
    expires = (datetime.now(UTC) + timedelta(days=1)).replace(microsecond=0)
    created = admin.create_link(
        DESTINATION, link_id, {"utm_source": "cli"}, {"max_hits": 5, "tags": ["a"], "expires_at": expires}
    )
    assert (created["id"], created["max_hits"], created["tags"]) == (link_id, 5, ["a"])
    assert created["expires_at"] == expires.isoformat()
    assert created["utm"] == {"utm_source": "cli"}
    assert admin.get_link(link_id)["short_url"] is None  # off until turned on
    turned_on = admin.update_link(link_id, {"short_url_enabled": True})
    assert turned_on["short_url"] == f"{local_stack.api_url.rstrip('/')}/l/{link_id}"
    assert (
        admin.update_link(link_id, {"url": "https://example.com/other"})["url"] == "https://example.com/other"
    )
    assert link_id in {record["id"] for record in admin.list_links(10_000)}
    assert len(list(admin.list_links(1))) == 1
    with pytest.raises(UsageError, match="no link with id 'nope'"):
        admin.get_link("nope")

    url = redirect_url(local_stack, link_id)
    for agent in (VISITOR_A, VISITOR_A, VISITOR_B):
        assert get(url, agent).status == 302
    assert admin.disable_link(link_id)["disabled"] is True

    ref = Ref("link", link_id)
    today = datetime.now(UTC).date()
    deadline = time.monotonic() + COUNTERS_TIMEOUT_S
    while (stats := admin.stats(Kind.TARGET, ref, today - timedelta(days=1), today)).totals.total < 3:
        assert time.monotonic() < deadline, stats
        time.sleep(0.5)
    assert (stats.totals.total, stats.totals.unique) == (3, 2)
    assert stats.as_dict() == stats_json(local_stack, str(ref))

    since = datetime.now(UTC) - timedelta(minutes=10)
    exported = list(admin.export(ExportQuery(since, datetime.now(UTC), Kind.TARGET, ref)))
    local = [
        json.loads(line)
        for line in ok(local_stack, "export", "--target", str(ref), "--format", "jsonl").splitlines()
    ]
    assert exported == local  # read over two pages of 2
    assert len(exported) == 3
