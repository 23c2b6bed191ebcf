"""Raw beacon items with their labels, wherever the stream stored them.

An entity's beacon is mostly labelled on its entity's day item (``b#ID`` on ``p#e#ENTITY`` /
day, :mod:`webbugger.day_labels`), not on the beacon item. Tests that read the tables directly
merge that entry into the item under the beacon's own attribute names (``class``, ``reasons``,
``lg``, ``tally``, ``ver``), as the product's readers do (:func:`webbugger.day_labels.overlay`).
"""

from __future__ import annotations

from typing import Any

# Entry field → the beacon item's attribute of the same meaning.
_NAMES = {"c": "class", "r": "reasons", "lg": "lg", "t": "tally", "v": "ver"}


def with_day_labels(client: Any, counters_table: str, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``items`` (raw beacon items), each with the label its entity's day item keeps for it."""
    days: dict[tuple[str, str], dict[str, Any]] = {}
    merged = []
    for item in items:
        entity = item.get("entity", {}).get("S")
        if entity is None or "class" in item:
            merged.append(item)
            continue
        key = (f"p#e#{entity}", item["ts"]["S"][:10])
        if key not in days:
            answer = client.get_item(
                TableName=counters_table, Key={"pk": {"S": key[0]}, "sk": {"S": key[1]}}, ConsistentRead=True
            )
            days[key] = answer.get("Item", {})
        entry = days[key].get(f"b#{item['id']['S']}", {}).get("M", {})
        merged.append({**item, **{_NAMES[name]: value for name, value in entry.items()}})
    return merged
