"""``webbugger recount`` pages through a deployed stack's ``POST /recount`` until no cursor is left,
and sums what each page did; a failed beacon makes the exit status 1."""

from __future__ import annotations

from typing import Any

import pytest
from webbugger_cli.commands import recount
from webbugger_cli.commands.admin_backend import AdminBackend
from webbugger_cli.main import main


class _Answer:
    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data

    def json(self) -> dict[str, Any]:
        return self.data


class _Client:
    """The admin API's answers to POST /recount, a page per call."""

    def __init__(self, pages: list[dict[str, Any]]) -> None:
        self.pages, self.payloads = pages, []

    def request(self, method: str, path: str, payload: Any = None) -> _Answer:
        assert (method, path) == ("POST", "/recount")
        self.payloads.append(payload)
        return _Answer(self.pages[len(self.payloads) - 1])


def _page(examined: int, unfinished: int, failed: int, cursor: str | None) -> dict[str, Any]:
    return {
        "examined": examined,
        "unfinished": unfinished,
        "recounted": unfinished - failed,
        "failed": failed,
        "next_cursor": cursor,
    }


@pytest.mark.parametrize(("failed", "status"), [(0, 0), (1, 1)])
def test_recount_follows_the_cursor_and_sums_the_pages(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], failed: int, status: int
) -> None:
    client = _Client([_page(1000, 3, 0, "01C"), _page(400, 2, failed, None)])
    backend = AdminBackend(client, "https://api.example.com")  # type: ignore[arg-type]
    monkeypatch.setattr(recount, "open_backend", lambda stack, region: backend)

    assert main(["--stack", "wb", "recount", "--from", "2026-12-01", "--to", "2026-12-02"]) == status

    assert capsys.readouterr().out.strip() == (
        f"recount: examined 1,400 beacons: 5 unfinished, {5 - failed} recounted, {failed} failed"
    )
    first, second = client.payloads
    assert first == {"from": "2026-12-01T00:00:00+00:00", "to": "2026-12-02T23:59:59.999999+00:00"}
    assert second == {**first, "cursor": "01C"}


def test_a_range_the_wrong_way_round_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["recount", "--from", "2026-12-02", "--to", "2026-12-01"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--from is after --to" in err
