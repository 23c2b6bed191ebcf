"""A plugin whose import fails: it needs a dependency nobody installed."""

import webbugger_test_missing_dependency  # noqa: F401


def register(types: object) -> None:  # never reached
    raise AssertionError("unreachable")
