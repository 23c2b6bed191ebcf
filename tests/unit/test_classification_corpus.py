"""Precision and recall of the classifier on a labelled corpus of hits (``corpus/requests.json``).

Each fixture is a hit as a beacon stores it (user agent, mode, method, hints from the request's
headers, seconds since its URL was minted and what for, email or web, the anonymised address,
the Accept-Language header where known) with the class a person reading the cited source would
give it. The table is printed (``pytest -s`` shows it) and every class must reach 0.95
precision and 0.95 recall. The corpus includes hits no signal can catch (a gateway re-checking
a link at click time from a cloud address), so it is not 100 % by design.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from webbugger.classify import CLASSES, Hit, classify_hit

if TYPE_CHECKING:
    import pytest

CORPUS = Path(__file__).resolve().parent / "corpus" / "requests.json"
TARGET = 0.95


def fixtures() -> list[dict[str, Any]]:
    loaded: list[dict[str, Any]] = json.loads(CORPUS.read_text(encoding="utf-8"))["fixtures"]
    return loaded


def hit_of(fixture: dict[str, Any]) -> Hit:
    return Hit(
        mode=fixture["mode"],
        method=fixture["method"],
        user_agent=fixture["user_agent"],
        ip=fixture["ip"],
        hints=frozenset(fixture["hints"]),
        seconds_after_mint=fixture["seconds_after_mint"],
        opted_out=fixture["opted_out"],
        language=fixture.get("language"),
        purpose=fixture["for"],
    )


def scores(pairs: list[tuple[str, str]]) -> dict[str, tuple[int, float, float]]:
    """Per class: (fixtures labelled so, precision, recall)."""
    expected = Counter(label for label, _ in pairs)
    predicted = Counter(guess for _, guess in pairs)
    right = Counter(label for label, guess in pairs if label == guess)
    return {
        cls: (
            expected[cls],
            right[cls] / predicted[cls] if predicted[cls] else 1.0,
            right[cls] / expected[cls] if expected[cls] else 1.0,
        )
        for cls in CLASSES
    }


def table(results: dict[str, tuple[int, float, float]], total: int, wrong: list[str]) -> str:
    lines = [f"classification corpus: {total} hits", f"{'class':<18} {'n':>4} {'precision':>9} {'recall':>7}"]
    lines += [f"{cls:<18} {n:>4} {p:>9.3f} {r:>7.3f}" for cls, (n, p, r) in results.items()]
    lines += [f"  missed: {line}" for line in wrong]
    return "\n".join(lines)


def test_every_fixture_cites_a_public_source_and_a_known_class() -> None:
    for fixture in fixtures():
        assert fixture["source"].startswith("https://"), fixture
        assert fixture["label"] in CLASSES, fixture


def test_the_corpus_covers_every_class_with_real_browsers_and_mail_clients() -> None:
    labels = Counter(fixture["label"] for fixture in fixtures())
    assert all(labels[cls] >= 15 for cls in CLASSES), labels
    human_agents = " ".join(f["user_agent"] or "" for f in fixtures() if f["label"] == "human")
    for client in ("Chrome/", "Safari/", "Firefox/", "Edg/", "Microsoft Outlook", "GmailApp", "Thunderbird"):
        assert client in human_agents


def test_precision_and_recall_per_class(capsys: pytest.CaptureFixture[str]) -> None:
    cases = fixtures()
    pairs = [(fixture["label"], classify_hit(hit_of(fixture)).classification) for fixture in cases]
    results = scores(pairs)
    wrong = [
        f"{fixture['label']} taken for {guess}: {fixture['mode']} {fixture['user_agent']!r} {fixture['ip']}"
        for fixture, (_, guess) in zip(cases, pairs, strict=True)
        if fixture["label"] != guess
    ]
    with capsys.disabled():
        print("\n" + table(results, len(cases), wrong))
    for cls, (_, precision, recall) in results.items():
        assert precision >= TARGET, f"{cls}: precision {precision:.3f}"
        assert recall >= TARGET, f"{cls}: recall {recall:.3f}"


def test_scores_count_what_a_reader_expects() -> None:
    pairs = [("human", "human"), ("human", "crawler"), ("crawler", "crawler"), ("mail-proxy", "human")]
    results = scores(pairs)
    assert results["human"] == (2, 0.5, 0.5)
    assert results["crawler"] == (1, 0.5, 1.0)
    assert results["mail-proxy"] == (1, 1.0, 0.0)
