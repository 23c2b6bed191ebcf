"""Real-world user agents nobody here wrote (corpus/public_user_agents.py cites each set), through
``webbugger classify --jsonl`` as a user would run it: at least 97 % of the machines must get a
machine class, at least 99.5 % of the browsers ``human``.

Each set is sampled evenly (``bench/classify.py`` runs them whole); the per-set, per-class table
is printed (``pytest -s`` shows it).
"""

from __future__ import annotations

import contextlib
import io
import json
from collections import Counter
from typing import TYPE_CHECKING

import pytest
from corpus.public_user_agents import SETS, every_nth
from webbugger_cli.main import main

if TYPE_CHECKING:
    from pathlib import Path

MACHINE_TARGET = 0.97
BROWSER_TARGET = 0.995
# An even sample of each set keeps this test to a few seconds (~1.5 ms a user agent, uncached);
# bench/classify.py runs every user agent of every set.
PER_SET = {"machine": 800, "browser": 1000}

Labelled = list[tuple[str, str, str]]  # (kind, source, verdict class)


@pytest.fixture(scope="module")
def verdicts(tmp_path_factory: pytest.TempPathFactory) -> Labelled:
    """Every public user agent's class, from one `webbugger classify --jsonl` run."""
    cases = []
    for (kind, source), load in SETS.items():
        agents = every_nth(load(), PER_SET[kind])
        cases += [(kind, source, agent) for agent in agents]
    path: Path = tmp_path_factory.mktemp("public") / "agents.jsonl"
    path.write_text(
        "".join(json.dumps({"user_agent": agent}) + "\n" for _, _, agent in cases), encoding="utf-8"
    )
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["classify", "--jsonl", str(path)]) == 0
    lines = out.getvalue().splitlines()
    assert len(lines) == len(cases)
    return [
        (kind, source, json.loads(line)["classification"])
        for (kind, source, _), line in zip(cases, lines, strict=True)
    ]


def table(results: Labelled) -> str:
    """Per set: how many, the share labelled right, and the classes given."""
    lines = [f"{'set':<32} {'n':>6} {'right':>7}  classes"]
    for kind, source in SETS:
        given = Counter(cls for k, s, cls in results if (k, s) == (kind, source))
        total = sum(given.values())
        right = total - given["human"] if kind == "machine" else given["human"]
        classes = ", ".join(f"{cls} {n}" for cls, n in given.most_common())
        lines.append(f"{kind + 's: ' + source:<32} {total:>6} {right / total:>7.2%}  {classes}")
    return "\n".join(lines)


def share(results: Labelled, kind: str) -> float:
    found = [cls for k, _, cls in results if k == kind]
    right = sum(1 for cls in found if (cls == "human") == (kind == "browser"))
    return right / len(found)


def test_machines_get_a_machine_class_and_browsers_stay_human(
    verdicts: Labelled, capsys: pytest.CaptureFixture[str]
) -> None:
    with capsys.disabled():
        print("\n" + table(verdicts))
    machines, browsers = share(verdicts, "machine"), share(verdicts, "browser")
    assert machines >= MACHINE_TARGET, f"machines labelled a machine class: {machines:.2%}"
    assert browsers >= BROWSER_TARGET, f"browsers labelled human: {browsers:.2%}"


def test_every_set_is_real_sized_and_each_machine_set_is_mostly_caught(verdicts: Labelled) -> None:
    sizes = {key: len(load()) for key, load in SETS.items()}
    assert all(size >= 1000 for size in sizes.values()), sizes
    for kind, source in SETS:
        if kind == "machine":
            found = [cls for k, s, cls in verdicts if (k, s) == (kind, source)]
            assert sum(cls != "human" for cls in found) / len(found) >= MACHINE_TARGET, source


def test_the_verdict_lines_carry_the_documented_fields(tmp_path: Path) -> None:
    path = tmp_path / "one.jsonl"
    path.write_text(
        '{"user_agent": "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"}\n'
    )
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert main(["classify", "--jsonl", str(path)]) == 0
    record = json.loads(out.getvalue())
    assert set(record) == {"classification", "reasons", "browser", "os", "device"}
    assert record["classification"] == "crawler"
    assert record["reasons"] == ["ua:device-detector"]
