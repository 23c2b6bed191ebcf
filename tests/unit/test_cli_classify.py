"""``webbugger classify``: one request explained or as JSON, many as JSON lines; every mistake is
one line on stderr and exit status 2 (no database, no AWS: nothing is started here)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import pytest
from webbugger_cli.main import main

if TYPE_CHECKING:
    from pathlib import Path

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/131.0.0.0 Safari/537.36"
)
# A click two seconds after an email mint, from a person's own browser at home.
CLICK = ["--user-agent", CHROME, "--mode", "redirect", "--seconds-after-mint", "2", "--for", "email"]


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    status = main(["classify", *args])
    out, err = capsys.readouterr()
    return status, out, err


def test_one_request_is_explained_reason_by_reason(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = run(capsys, *CLICK, "--ip", "40.107.22.0", "--language", "en")
    assert status == 0
    lines = out.splitlines()
    assert lines[0] == "class:    security-scanner"
    assert any("range:microsoft-eop" in line and "published ranges" in line for line in lines)
    assert any("timing:2s" in line for line in lines)
    assert "browser:  Chrome" in lines


def test_the_same_click_from_home_is_human_and_json_carries_the_documented_fields(
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, out, _ = run(capsys, *CLICK, "--ip", "81.2.69.0", "--language", "en-GB", "--json")
    assert status == 0
    assert json.loads(out) == {
        "classification": "human",
        "reasons": [],
        "browser": "Chrome",
        "os": "Windows",
        "device": None,
    }


def test_jsonl_answers_one_verdict_per_line_in_order(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    lines = [
        {"user_agent": "Mozilla/5.0", "mode": "pixel"},
        {
            "user_agent": CHROME,
            "ip": "205.139.110.0",
            "seconds_after_mint": 1,
            "for": "email",
            "mode": "redirect",
        },
        {"user_agent": CHROME, "language": "fr"},
        {},
    ]
    path = tmp_path / "hits.jsonl"
    path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    status, out, _ = run(capsys, "--jsonl", str(path))
    assert status == 0
    classes = [json.loads(line)["classification"] for line in out.splitlines()]
    assert classes == ["privacy-prefetch", "security-scanner", "human", "unknown-machine"]


@pytest.mark.parametrize(
    ("args", "stdin", "message"),
    [
        (["--ip", "not-an-address"], None, "ip is not an IPv4 or IPv6 address"),
        (["--method", "GE T"], None, "method must be an HTTP method"),
        (["--jsonl", "-"], '{"user_agent": "x"}\nnot json\n', "line 2: not JSON"),
        (["--jsonl", "-"], '{"user_agnet": "x"}\n', "line 1: unknown field 'user_agnet'"),
        (["--jsonl", "-"], '{"seconds_after_mint": "soon"}\n', "line 1: seconds_after_mint must be a number"),
        (["--jsonl", "-"], '["x"]\n', "line 1: not a JSON object"),
        (["--jsonl", "-", "--ip", "1.2.3.4"], "", "give no other option"),
        (["--jsonl", "/no/such/file.jsonl"], None, "cannot read /no/such/file.jsonl"),
        (["--seconds-after-mint", "nan"], None, "not a finite number"),
        (["--for", "print"], None, "invalid choice"),
    ],
)
def test_a_mistake_is_one_line_and_exit_status_2(
    args: list[str],
    stdin: str | None,
    message: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import io

    if stdin is not None:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    try:
        status = main(["classify", *args])
    except SystemExit as exc:  # argparse's own refusals
        status = int(exc.code or 0)
    _, err = capsys.readouterr()
    assert status == 2
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err
