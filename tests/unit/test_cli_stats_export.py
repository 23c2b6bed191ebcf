"""``webbugger link|stats|export`` without a database: mistakes refused in one line, the chart, the
CSV and JSON-lines writers, the progress shown only on a terminal, and the SigV4 admin API client
(against a small HTTP server on 127.0.0.1 that checks each request's signature).
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
import threading
from datetime import UTC, date, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import parse_qs, urlsplit

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from moto import mock_aws
from webbugger.campaigns import fold
from webbugger.counters import DayCounts, Stats
from webbugger.refs import Ref
from webbugger.registry import Kind, Registry
from webbugger.service.beacons import BeaconQuery as ExportQuery
from webbugger_cli import main as cli_main
from webbugger_cli.admin_client import AdminApiError, AdminClient, default_credentials, region_of
from webbugger_cli.commands import UsageError
from webbugger_cli.commands.admin_backend import AdminBackend, stats_from_dict
from webbugger_cli.commands.export import (
    CsvWriter,
    JsonlWriter,
    Progress,
    export_columns,
    write_records,
)
from webbugger_cli.commands.links import state
from webbugger_cli.commands.options import parse_time
from webbugger_cli.commands.stats import chosen_kind, infer_kind, render_chart, totals_line, uncounted_note

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

RING = {"current": "t1", "t1": "k" * 40}
API_URL = "http://127.0.0.1:45678"
ACCESS_KEY = "AKIDTESTTESTTEST"
SECRET_KEY = "test-secret-key"
REGION = "eu-west-1"


# --- mistakes: one line on stderr, never a traceback ---------------------------------------------


def webbugger(*args: str, state_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "WEBBUGGER_STATE_DIR": str(state_dir),
        "AWS_EC2_METADATA_DISABLED": "true",
        "COLUMNS": "80",
    }
    return subprocess.run(
        [sys.executable, "-m", "webbugger_cli.main", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


@pytest.fixture
def running_stack(tmp_path: Path) -> Path:
    """A state dir announcing a local stack run by this process; nothing listens at its endpoint."""
    (tmp_path / "signing-keys.json").write_text(json.dumps(RING))
    stack = {
        "api_url": API_URL,
        "dynamodb_endpoint": "http://127.0.0.1:9",
        "pid": os.getpid(),
        "outputs": {"ApiUrl": API_URL, "BeaconsTableName": "beacons", "LinksTableName": "links"},
    }
    (tmp_path / "stack.json").write_text(json.dumps(stack))
    return tmp_path


MISTAKES = [
    (("stats", "link"), 1, "expected TYPE:ID, got 'link'"),
    (("stats", "gadget:1"), 1, "no type named 'gadget' is registered (pass --kind"),
    (("stats", "Link:1"), 1, "invalid type name 'Link'"),
    (("stats", "link:a", "--days", "0"), 2, "argument --days: must be from 1 to 366, got 0"),
    (("stats", "link:a", "--days", "many"), 2, "argument --days: not a whole number: 'many'"),
    (("stats", "link:a", "--kind", "visitor"), 2, "argument --kind: invalid choice: 'visitor'"),
    (("export", "--from", "yesterday"), 2, "argument --from: not an ISO 8601 date or time"),
    (
        ("export", "--from", "2025-02-01", "--to", "2025-01-31"),
        1,
        "--from 2025-02-01T00:00:00+00:00 is later",
    ),
    (("export", "--format", "xml"), 2, "argument --format: invalid choice: 'xml'"),
    (("export", "--target", "link:a", "--entity", "ip:b"), 2, "not allowed with argument --target"),
    (("export", "--source", "campaign"), 1, "expected TYPE:ID, got 'campaign'"),
    (("link", "update", "abc"), 1, "nothing to change: give --url"),
    (("link", "update", "abc", "--url", "javascript:alert(1)"), 1, "URL"),
    (("link", "update", "abc", "--fallback-url", "ftp://example.com/"), 1, "URL"),
    (("link", "update", "abc", "--max-hits", "0"), 2, "argument --max-hits: must be from 1"),
    (("link", "update", "abc", "--expires-at", "soon"), 2, "argument --expires-at: not an ISO 8601"),
    (("link", "update", "abc", "--tag", " "), 1, "--tag needs a non-empty value"),
    (
        ("link", "update", "abc", "--valid-from", "2025-03-01", "--expires-at", "2025-02-01"),
        1,
        "--expires-at must be later than --valid-from",
    ),
    (("link", "create", "https://example.com/", "--valid-from", "x"), 2, "argument --valid-from"),
    (("link", "create", "https://example.com/", "--utm", "utm_x=1"), 1, "unknown UTM parameter 'utm_x'"),
    (("link", "show", "x" * 2000), 1, "longer than 1900 bytes"),
    (("link", "disable"), 2, "the following arguments are required: ID"),
    (("link", "list", "--limit", "0"), 2, "argument --limit: must be from 1"),
    (("link", "frobnicate"), 2, "argument COMMAND: invalid choice: 'frobnicate'"),
]


@pytest.mark.parametrize(("args", "status", "message"), MISTAKES, ids=[" ".join(m[0])[:40] for m in MISTAKES])
def test_mistakes_are_one_line(running_stack: Path, args: tuple[str, ...], status: int, message: str) -> None:
    result = webbugger(*args, state_dir=running_stack)
    assert result.returncode == status, result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert message in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(
    "args",
    [("link", "list"), ("link", "show", "abc"), ("stats", "link:abc"), ("export",), ("link", "disable", "a")],
)
def test_no_local_stack(tmp_path: Path, args: tuple[str, ...]) -> None:
    result = webbugger(*args, state_dir=tmp_path)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "webbugger: error: no local stack is running: start it with `make run`"
    ]


def test_parse_time() -> None:
    assert parse_time("2025-01-31") == datetime(2025, 1, 31, tzinfo=UTC)
    assert parse_time("2025-01-31", end_of_day=True) == datetime(2025, 2, 1, tzinfo=UTC) - timedelta(
        microseconds=1
    )
    assert parse_time("2025-01-31T12:00:00Z") == datetime(2025, 1, 31, 12, tzinfo=UTC)
    assert parse_time("2025-01-31T14:00:00+02:00") == datetime(2025, 1, 31, 12, tzinfo=UTC)
    assert parse_time("2025-01-31T12:00:00") == datetime(2025, 1, 31, 12, tzinfo=UTC)  # UTC by default


# --- the kind of a reference ------------------------------------------------------------------------


def test_kind_from_the_registry() -> None:
    registry = Registry()
    registry.register_target("link", lambda _id: None)
    registry.register_source("campaign", lambda _id: None)
    registry.register_target("thing", lambda _id: None)
    registry.register_source("thing", lambda _id: None)
    assert infer_kind(registry, "link") is Kind.TARGET
    assert infer_kind(registry, "campaign") is Kind.SOURCE
    with pytest.raises(UsageError, match=r"'thing' is registered as target and source: pass --kind"):
        infer_kind(registry, "thing")
    with pytest.raises(UsageError, match="no type named 'nope' is registered"):
        infer_kind(registry, "nope")


def test_a_kind_the_type_is_not_registered_as_is_refused() -> None:
    # `stats campaign:x --kind target` read a target's counters that cannot exist: zeros, exit 0.
    registry = Registry()
    registry.register_source("campaign", lambda _id: None)
    registry.register_target("thing", lambda _id: None)
    registry.register_source("thing", lambda _id: None)
    with pytest.raises(UsageError, match="'campaign' is registered as source, not target"):
        chosen_kind(registry, "campaign", "target")
    assert chosen_kind(registry, "campaign", "source") is Kind.SOURCE
    assert chosen_kind(registry, "thing", "target") is Kind.TARGET
    assert chosen_kind(registry, "gone", "entity") is Kind.ENTITY  # a removed plugin's counts
    assert chosen_kind(registry, "campaign", None) is Kind.SOURCE


def test_a_note_for_the_counts_of_a_kind_the_stack_does_not_keep() -> None:
    # `stats recipient:ID` on the default stack printed zeros with nothing to say why.
    assert "keeps no entity counters" in (uncounted_note(Kind.ENTITY, "target,source") or "")
    assert uncounted_note(Kind.ENTITY, "target, entity") is None
    assert uncounted_note(Kind.SOURCE, "none") is not None
    assert uncounted_note(Kind.ENTITY, None) is None  # a deployed stack: the CLI cannot tell


# --- the chart -------------------------------------------------------------------------------------

STATS = Stats(
    "link:abc",
    Kind.TARGET,
    [
        DayCounts("2025-01-01", 0, 0),
        DayCounts("2025-01-02", 10, 4, human=7, machine=3, unique_human_opens=2, unique_human_clicks=1),
        DayCounts("2025-01-03", 5, 5, human=5, unique_human_clicks=3),
        DayCounts("2025-01-04", 1, 0, machine=1),
    ],
)


def test_totals_line() -> None:
    assert totals_line(STATS) == (
        "link:abc (target), 2025-01-01 to 2025-01-04: unique human opens 2, unique human clicks 4; "
        "total 16, unique 9, human 12, machine 4"
    )


def test_chart_rows_and_scale() -> None:
    lines = render_chart(STATS, width=80)
    assert lines[0].split()[:3] == ["DAY", "TOTAL", "UNIQUE"]
    assert "█ unique" in lines[0]
    assert "░ total" in lines[0]
    rows = lines[1:]
    assert [row[:10] for row in rows] == ["2025-01-01", "2025-01-02", "2025-01-03", "2025-01-04"]
    assert all(len(line) <= 80 for line in lines)
    bars = [row.split("  ")[-1] if row.count(" ") > 3 else "" for row in rows]
    # An empty day has no bar; the busiest day's bar fills the width left after the numbers.
    assert rows[0].split() == ["2025-01-01", "0", "0"]
    prefix = len("2025-01-02  TOTAL  UNIQUE  ")
    assert len(bars[1]) == 80 - prefix - 1
    assert set(bars[1]) == {"█", "░"}
    assert bars[1].count("█") == round(4 * len(bars[1]) / 10)
    # All unique: no light part; half the busiest day's total: half the length.
    assert set(bars[2]) == {"█"}
    assert abs(len(bars[2]) - len(bars[1]) / 2) <= 1
    assert bars[3] == "░" * round(len(bars[1]) / 10)


def test_a_day_with_hits_gets_at_least_one_cell() -> None:
    stats = Stats("link:abc", Kind.TARGET, [DayCounts("2025-01-01", 1000, 10), DayCounts("2025-01-02", 1, 1)])
    assert render_chart(stats, width=80)[2].endswith("  █")


def test_chart_follows_the_width() -> None:
    narrow = render_chart(STATS, width=40)
    wide = render_chart(STATS, width=200)
    assert all(len(line) <= 40 for line in narrow[1:])
    assert max(len(line) for line in wide) > 150
    # A terminal too narrow still gets a minimal bar rather than none.
    assert "█" in render_chart(STATS, width=5)[2]


def test_chart_of_an_empty_range() -> None:
    empty = Stats("link:abc", Kind.TARGET, [])
    assert render_chart(empty, width=80)[1:] == []
    assert "no days" in totals_line(empty)


# --- writers ----------------------------------------------------------------------------------------

RECORD = {
    "id": "01J0000000000000000000000A",
    "created_at": "2025-01-02T03:04:05+00:00",
    "mode": "redirect",
    "method": "GET",
    "target": "link:abc",
    "entity": None,
    "source": "campaign:spring",
    "ip": "192.0.2.0",
    "user_agent": 'Agent "quoted", with comma',
    "referer": None,
    "language": "en",
    "country": None,
    "minted": 1767225000,
    "hints": None,
    "opted_out": None,
    "classification": "human",
    "reasons": "ua:browser",
    "browser": "Firefox",
    "os": "Linux",
    "device": "Other",
    "expires": 1767225600,
    "rule": "ios",
    "variant": None,
}


def test_csv_columns_are_the_record_keys() -> None:
    assert export_columns() == list(RECORD)


def test_csv_writer() -> None:
    out = io.StringIO()
    writer = CsvWriter(out, export_columns())
    writer.write(RECORD)
    writer.write({**RECORD, "id": "2", "extra": "ignored"})
    rows = list(csv.reader(io.StringIO(out.getvalue())))
    assert out.getvalue().count("\n") == out.getvalue().count("\r\n") == 3  # RFC 4180: CRLF
    assert rows[0] == list(RECORD)
    assert rows[1][rows[0].index("user_agent")] == 'Agent "quoted", with comma'
    assert rows[1][rows[0].index("entity")] == ""  # None is an empty cell
    assert rows[2][0] == "2"
    assert len(rows) == 3


def test_csv_header_even_when_empty() -> None:
    out = io.StringIO()
    CsvWriter(out, export_columns())
    assert out.getvalue().strip() == ",".join(RECORD)


def test_jsonl_writer() -> None:
    out = io.StringIO()
    writer = JsonlWriter(out)
    writer.write(RECORD)
    writer.write({**RECORD, "id": "2"})
    lines = out.getvalue().splitlines()
    assert [json.loads(line) for line in lines] == [RECORD, {**RECORD, "id": "2"}]


# --- progress: only on a terminal -------------------------------------------------------------------


class FakeStream(io.StringIO):
    def __init__(self, *, tty: bool) -> None:
        super().__init__()
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


UNTIL = datetime(2025, 1, 31, tzinfo=UTC)
SINCE = UNTIL - timedelta(days=30)


def _records(count: int) -> Iterator[dict[str, Any]]:
    # Newest first, spread evenly over the range.
    for index in range(count):
        moment = UNTIL - (UNTIL - SINCE) * (index + 1) / count
        yield {**RECORD, "id": str(index), "created_at": moment.isoformat()}


def test_no_progress_when_stderr_is_not_a_terminal() -> None:
    err, out = FakeStream(tty=False), io.StringIO()
    count = write_records(_records(250), JsonlWriter(out), Progress(err, SINCE, UNTIL))
    assert count == 250
    assert err.getvalue() == "exported 250 beacons\n"
    assert len(out.getvalue().splitlines()) == 250


def test_progress_bar_on_a_terminal() -> None:
    ticks = iter(range(10_000))
    err, out = FakeStream(tty=True), io.StringIO()
    progress = Progress(err, SINCE, UNTIL, clock=lambda: float(next(ticks)), refresh=0.5)
    write_records(_records(4), JsonlWriter(out), progress)
    shown = err.getvalue()
    frames = [frame for frame in shown.split("\r") if frame]
    assert frames[0].startswith("█" * 8)
    assert " 25%  1 beacon" in frames[0]
    assert "100%  4 beacons" in frames[3]
    assert shown.endswith("\r\x1b[Kexported 4 beacons\n")


def test_progress_redraws_at_most_every_refresh() -> None:
    err = FakeStream(tty=True)
    progress = Progress(err, SINCE, UNTIL, clock=lambda: 1.0, refresh=0.5)
    write_records(_records(100), JsonlWriter(io.StringIO()), progress)
    assert err.getvalue().count("beacon") == 2  # the first frame, and the summary


def test_progress_line_ends_before_an_error() -> None:
    err = FakeStream(tty=True)

    def failing() -> Iterator[dict[str, Any]]:
        yield RECORD
        raise OSError("boom")

    with pytest.raises(OSError, match="boom"):
        write_records(failing(), JsonlWriter(io.StringIO()), Progress(err, SINCE, UNTIL))
    assert err.getvalue().endswith("\n")
    assert "exported" not in err.getvalue()


def test_link_state() -> None:
    now = datetime(2025, 1, 15, tzinfo=UTC)
    base = {"id": "a", "disabled": False, "hits": 0, "max_hits": None, "valid_from": None, "expires_at": None}
    assert state(base, now) == "active"
    assert state({**base, "disabled": True}, now) == "disabled"
    assert state({**base, "valid_from": "2025-02-01T00:00:00+00:00"}, now) == "scheduled"
    assert state({**base, "expires_at": "2025-01-01T00:00:00+00:00"}, now) == "expired"
    assert state({**base, "max_hits": 3, "hits": 3}, now) == "used-up"


# --- the admin API client, against a local server that checks SigV4 ---------------------------------


class AdminStub(BaseHTTPRequestHandler):
    """Canned admin API answers; refuses any request whose SigV4 signature does not verify."""

    requests: ClassVar[list[dict[str, Any]]] = []
    # Access key -> secret key of the identities the stub accepts.
    identities: ClassVar[dict[str, str]] = {ACCESS_KEY: SECRET_KEY}
    export_pages: ClassVar[dict[str, tuple[list[dict[str, Any]], str | None]]] = {}

    def log_message(self, format: str, *args: Any) -> None:  # the base class's names
        pass

    def _verify(self, body: bytes) -> str | None:
        authorization = self.headers.get("Authorization", "")
        if not authorization.startswith("AWS4-HMAC-SHA256 "):
            return "no AWS4-HMAC-SHA256 Authorization header"
        fields = dict(
            part.strip().split("=", 1) for part in authorization[len("AWS4-HMAC-SHA256 ") :].split(",")
        )
        access_key, _day, region, service, _ = fields["Credential"].split("/")
        if access_key not in AdminStub.identities or (region, service) != (REGION, "execute-api"):
            return f"wrong credential scope {fields['Credential']}"
        signed = fields["SignedHeaders"].split(";")
        headers = {name: self.headers[name] for name in signed if name != "host"}
        url = f"http://{self.headers['Host']}{self.path}"
        request = AWSRequest(method=self.command, url=url, data=body, headers=headers)
        request.context["timestamp"] = self.headers["X-Amz-Date"]
        auth = SigV4Auth(Credentials(access_key, AdminStub.identities[access_key]), "execute-api", REGION)
        expected = auth.signature(auth.string_to_sign(request, auth.canonical_request(request)), request)
        return None if expected == fields["Signature"] else "signature does not match"

    def _answer(self, status: int, data: object, headers: dict[str, str] | None = None) -> None:
        body = data if isinstance(data, bytes) else json.dumps(data).encode()
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def _route(self, body: bytes) -> None:
        problem = self._verify(body)
        parts = urlsplit(self.path)
        query = {key: values[0] for key, values in parse_qs(parts.query).items()}
        AdminStub.requests.append({"method": self.command, "path": parts.path, "query": query, "body": body})
        if problem:
            self._answer(403, {"message": problem})
        elif parts.path == "/stats":
            first, last = date.fromisoformat(query["from"]), date.fromisoformat(query["to"])
            days = [
                DayCounts((first + timedelta(days=n)).isoformat()) for n in range((last - first).days + 1)
            ]
            days[-1] = DayCounts(last.isoformat(), 5, 2, 5, 0, unique_human_opens=1, unique_human_clicks=2)
            self._answer(200, Stats(query["ref"], Kind(query["kind"]), days).as_dict())
        elif parts.path == "/links/abc" and self.command in ("GET", "PATCH"):
            link = {"id": "abc", "url": "https://example.com/", "disabled": False, "hits": 0, "tags": []}
            link["short_url_enabled"] = True
            self._answer(200, {**link, **(json.loads(body) if body else {})})
        elif parts.path.startswith("/links/"):
            self._answer(404, {"error": {"code": "not_found", "message": "no link with id 'nope'"}})
        elif parts.path == "/export":
            records, cursor = AdminStub.export_pages[query.get("cursor", "")]
            lines = b"".join(json.dumps(record).encode() + b"\n" for record in records)
            self._answer(200, lines, {"X-Next-Cursor": cursor} if cursor else {})
        elif parts.path == "/stats/campaign":
            figures = fold(query["ref"], [], sent=4).as_dict()
            self._answer(200, figures | {"from": query["from"], "to": query["to"]})
        elif parts.path == "/sends":
            entities = json.loads(body)["entities"]
            self._answer(200, {"source": "s", "recorded": len(entities) - 1, "sent": 0})
        elif parts.path == "/broken":
            self._answer(500, b"<html>Internal error</html>")
        else:
            self._answer(400, {"error": {"code": "bad_request", "message": f"no route {parts.path}"}})

    def do_GET(self) -> None:
        self._route(b"")

    def do_PATCH(self) -> None:
        self._route(self.rfile.read(int(self.headers.get("Content-Length") or 0)))

    def do_POST(self) -> None:
        self._route(self.rfile.read(int(self.headers.get("Content-Length") or 0)))


@pytest.fixture
def fake_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def admin_url() -> Iterator[str]:
    AdminStub.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), AdminStub)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def client(admin_url: str, fake_credentials: None) -> AdminClient:
    return AdminClient(admin_url, REGION, default_credentials(REGION))


def test_signed_request_gets_json(client: AdminClient) -> None:
    stats = stats_from_dict(
        client.get_json(
            "/stats", {"ref": "link:abc", "kind": "target", "from": "2025-01-01", "to": "2025-01-03"}
        )
    )
    assert stats.totals.total == 5
    assert stats.totals.unique == 2
    assert [day.day for day in stats.days] == ["2025-01-01", "2025-01-02", "2025-01-03"]
    assert AdminStub.requests[-1]["query"]["ref"] == "link:abc"


def test_unsigned_request_is_refused_by_the_stub(admin_url: str, fake_credentials: None) -> None:
    wrong = AdminClient(admin_url, REGION, Credentials(ACCESS_KEY, "not-the-secret"))
    with pytest.raises(AdminApiError, match="HTTP 403"):
        wrong.get_json(
            "/stats", {"ref": "link:abc", "kind": "target", "from": "2025-01-01", "to": "2025-01-01"}
        )


def test_signed_body_and_query_with_odd_characters(client: AdminClient) -> None:
    # A url: reference in the query, a JSON body: both must be signed as sent.
    ref = "url:https://example.com/a b?x=1&y=é"
    client.get_json("/stats", {"ref": ref, "kind": "target", "from": "2025-01-01", "to": "2025-01-01"})
    assert AdminStub.requests[-1]["query"]["ref"] == ref
    answer = client.request("PATCH", "/links/abc", payload={"tags": ["a", "ü"], "max_hits": 3}).json()
    assert answer["tags"] == ["a", "ü"]
    assert json.loads(AdminStub.requests[-1]["body"]) == {"tags": ["a", "ü"], "max_hits": 3}


def test_error_answers_are_the_api_message(client: AdminClient) -> None:
    with pytest.raises(AdminApiError, match=r"\Ano link with id 'nope'\Z") as caught:
        client.get_json("/links/nope")
    assert caught.value.status == 404
    assert caught.value.code == "not_found"
    with pytest.raises(AdminApiError, match=r"answered HTTP 500: <html>Internal error</html>"):
        client.get_json("/broken")


def test_unreachable_api(fake_credentials: None) -> None:
    unreachable = AdminClient("http://127.0.0.1:9", REGION, default_credentials(REGION), timeout=2)
    with pytest.raises(AdminApiError, match=r"cannot reach the admin API at http://127\.0\.0\.1:9"):
        unreachable.get_json("/links")


def test_export_follows_the_cursor(client: AdminClient) -> None:
    AdminStub.export_pages = {
        "": ([{**RECORD, "id": "3"}, {**RECORD, "id": "2"}], "c1"),
        "c1": ([{**RECORD, "id": "1"}], None),
    }
    backend = AdminBackend(client, "https://api.example.com")
    query = ExportQuery(SINCE, UNTIL, Kind.TARGET, Ref("link", "abc"))
    assert [record["id"] for record in backend.export(query)] == ["3", "2", "1"]
    first, second = (r["query"] for r in AdminStub.requests if r["path"] == "/export")
    assert first["target"] == "link:abc"
    assert first["format"] == "jsonl"
    assert "cursor" not in first
    assert second["cursor"] == "c1"


def test_campaign_figures_and_sends_through_the_backend(client: AdminClient) -> None:
    backend = AdminBackend(client, "https://api.example.com")
    figures = backend.campaign(Ref("campaign", "spring"), SINCE.date(), UNTIL.date())
    assert (figures["sent"], figures["open_rate"], figures["from"]) == (4, 0.0, SINCE.date().isoformat())
    recipients = [Ref("recipient", f"r{n}") for n in range(2500)]
    assert backend.record_sends(Ref("campaign", "spring"), recipients) == 2497  # the stub: one old a call
    posted = [json.loads(r["body"]) for r in AdminStub.requests if r["path"] == "/sends"]
    assert [len(payload["entities"]) for payload in posted] == [1000, 1000, 500]
    assert posted[0]["source"] == "campaign:spring" and posted[2]["entities"][-1] == "recipient:r2499"


def test_missing_link_through_the_backend(client: AdminClient) -> None:
    backend = AdminBackend(client, "https://api.example.com")
    with pytest.raises(UsageError, match="no link with id 'nope'"):
        backend.get_link("nope")
    assert backend.update_link("abc", {"max_hits": 2})["max_hits"] == 2


def test_region_of_an_execute_api_url() -> None:
    assert region_of("https://abc123.execute-api.eu-central-1.amazonaws.com/prod") == "eu-central-1"
    assert region_of("http://127.0.0.1:3000") is None


# --- a deployed stack end to end: moto's CloudFormation names the stub as the admin API ------------------


@pytest.fixture
def deployed(admin_url: str, fake_credentials: None) -> Iterator[str]:
    import boto3

    template = {
        "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
        "Outputs": {
            "ApiUrl": {"Value": "https://abc.execute-api.eu-west-1.amazonaws.com"},
            "AdminApiUrl": {"Value": admin_url},
        },
    }
    with mock_aws():
        # moto swaps in its own fake credentials while it mocks: the stub must accept them too.
        AdminStub.identities = {
            ACCESS_KEY: SECRET_KEY,
            os.environ["AWS_ACCESS_KEY_ID"]: os.environ["AWS_SECRET_ACCESS_KEY"],
        }
        boto3.client("cloudformation", region_name=REGION).create_stack(
            StackName="wb", TemplateBody=json.dumps(template)
        )
        try:
            yield "wb"
        finally:
            AdminStub.identities = {ACCESS_KEY: SECRET_KEY}


def test_deployed_stats_json(deployed: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main.main(["stats", "link:abc", "--days", "3", "--json", "--stack", deployed]) == 0
    data = json.loads(capsys.readouterr().out)
    assert set(data) == {"ref", "kind", "from", "to", "totals", "days"}
    assert data["totals"] == {
        "unique_human_opens": 1,
        "unique_human_clicks": 2,
        "total": 5,
        "unique": 2,
        "human": 5,
        "machine": 0,
    }
    assert data["kind"] == "target"
    assert len(data["days"]) == 3
    assert data["to"] == datetime.now(UTC).date().isoformat()


def test_deployed_stats_chart(
    deployed: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "60")
    assert cli_main.main(["stats", "link:abc", "--days", "2", "--stack", deployed]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].endswith(
        "unique human opens 1, unique human clicks 2; total 5, unique 2, human 5, machine 0"
    )
    today = datetime.now(UTC).date().isoformat()
    assert re.match(rf"{today}  +5  +2  █+░+\Z", lines[-1])
    assert all(len(line) <= 60 for line in lines[1:])


def test_deployed_link_show_has_the_short_url(deployed: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main.main(["link", "show", "abc", "--json", "--stack", deployed]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["short_url"] == "https://abc.execute-api.eu-west-1.amazonaws.com/l/abc"


def test_deployed_error_is_one_line(deployed: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli_main.main(["link", "disable", "nope", "--stack", deployed]) == 1
    captured = capsys.readouterr()
    assert captured.err.splitlines() == ["webbugger: error: no link with id 'nope'"]
    assert captured.out == ""


def test_deployed_stack_without_admin_api(fake_credentials: None, capsys: pytest.CaptureFixture[str]) -> None:
    import boto3

    template = {"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}}, "Outputs": {"ApiUrl": {"Value": "x"}}}
    with mock_aws():
        boto3.client("cloudformation", region_name=REGION).create_stack(
            StackName="old", TemplateBody=json.dumps(template)
        )
        assert cli_main.main(["export", "--stack", "old"]) == 1
    assert capsys.readouterr().err.splitlines() == [
        "webbugger: error: stack 'old' has no AdminApiUrl output: deploy a version with the admin API"
    ]
