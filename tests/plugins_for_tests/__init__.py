"""Small plugins the plugin-layer tests load through ``WEBBUGGER_PLUGINS`` (never shipped).

Imported by their absolute name ``tests.plugins_for_tests.<module>``: ``tests`` has no
``__init__.py`` (a namespace package), so the repository root must be on ``sys.path``; the tests
put it there (``monkeypatch.syspath_prepend`` in-process, ``PYTHONPATH`` for subprocesses).
"""

PACKAGE = __name__
GOOD = f"{PACKAGE}.good"
BROKEN_IMPORT = f"{PACKAGE}.broken_import"
NO_REGISTER = f"{PACKAGE}.no_register"
RAISING_REGISTER = f"{PACKAGE}.raising_register"
CLASHING = f"{PACKAGE}.clashing"
RAISING_HOOK = f"{PACKAGE}.raising_hook"
SLOW_HOOK = f"{PACKAGE}.slow_hook"
