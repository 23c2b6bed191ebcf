"""Small plugins the plugin-layer tests load through ``WEBBUGGER_PLUGINS`` (never shipped).

Imported by their absolute name ``tests.plugins_for_tests.<module>``: ``tests`` has no
``__init__.py`` (a namespace package), so the repository root must be on ``sys.path``; the tests
put it there (``monkeypatch.syspath_prepend`` in-process, ``PYTHONPATH`` for subprocesses).
"""
