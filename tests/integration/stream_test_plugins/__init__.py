"""Plugins the integration tests load through ``WEBBUGGER_PLUGINS`` (never shipped)."""
