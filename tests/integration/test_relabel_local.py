"""``webbugger relabel`` against the real local stack: after a list update, stored beacons get
their new class and their counts move between human and machine, once however often it runs.

The "list update" is our data file with one more user-agent entry, given to the classifier of
this process (where the command runs), after the stream function labelled and counted the hits.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import secrets
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest
from test_erase_local import request
from webbugger import classify
from webbugger.counters import daily_stats
from webbugger.machine_table import UserAgentRule
from webbugger.modes import Mode
from webbugger.refs import Ref
from webbugger.registry import Kind
from webbugger.tokens import TokenClaims
from webbugger_cli.main import main

if TYPE_CHECKING:
    from conftest import RunningStack

pytestmark = pytest.mark.ddblocal

LABELLED_WITHIN_S = 15.0


def classes_of(stack: RunningStack, user_agent: str) -> list[str]:
    """The stored classes of the beacons of ``user_agent``."""
    return sorted(item.get("class", {}).get("S", "-") for item in stack.beacons(user_agent))


def counted_as(link: Ref, expected: tuple[int, int]) -> None:
    """Wait until the stream function has counted ``link``'s hits as ``(human, machine)``."""
    deadline = time.monotonic() + LABELLED_WITHIN_S
    while counts(link) != expected:
        assert time.monotonic() < deadline, f"{link}: {counts(link)}, not {expected}"
        time.sleep(0.3)


def relabel(stack: RunningStack, monkeypatch: pytest.MonkeyPatch, *args: str) -> dict[str, Any]:
    monkeypatch.setenv("WEBBUGGER_STATE_DIR", str(stack.state_dir))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["relabel", *args, "--json"]) == 0
    answer: dict[str, Any] = json.loads(out.getvalue())
    return answer


def counts(ref: Ref) -> tuple[int, int]:
    """Today's counts of ``ref`` as a target (read in this process: create_link bound the tables)."""
    today = datetime.now(UTC).date()
    totals = daily_stats(Kind.TARGET, ref, today, today).totals
    return totals.human, totals.machine


def test_relabel_moves_counts_once_after_a_list_update(
    local_stack: RunningStack, monkeypatch: pytest.MonkeyPatch
) -> None:
    agent = f"Mozilla/5.0 (X11; Linux x86_64) RelabelProbe/{secrets.token_hex(4)}"
    link = Ref("link", local_stack.create_link("https://example.org/relabel"))
    entity = f"recipient:relabel-{secrets.token_hex(4)}"
    for claims in (
        TokenClaims(mode=Mode.PIXEL, target=link),
        TokenClaims(mode=Mode.PIXEL, target=link, entity=Ref.parse(entity)),
    ):
        assert request("GET", local_stack.mint(claims), agent)[0] == 200
    counted_as(link, (2, 0))
    assert classes_of(local_stack, agent) == ["human", "human"]

    listed = UserAgentRule("relabel-probe", "crawler", exact=False, pattern="RelabelProbe/")
    table = classify.machines()
    updated = dataclasses.replace(table, user_agents=(*table.user_agents, listed))
    monkeypatch.setattr(classify, "machines", lambda: updated)
    today = datetime.now(UTC).date().isoformat()

    first = relabel(local_stack, monkeypatch, "--from", today)
    assert first["by_change"] == {"human -> crawler": 2}
    assert classes_of(local_stack, agent) == ["crawler", "crawler"]
    assert counts(link) == (0, 2)

    again = relabel(local_stack, monkeypatch, "--from", today)
    assert again["changed"] == 0 and again["examined"] >= 2
    assert counts(link) == (0, 2)


def test_relabel_refuses_a_deployed_stack_in_one_line(local_stack: RunningStack) -> None:
    result = local_stack.cli("relabel", "--stack", "prod")
    assert (result.returncode, result.stdout) == (1, "")
    assert len(result.stderr.splitlines()) == 1 and "local stack only" in result.stderr
