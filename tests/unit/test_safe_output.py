"""The two output rules, over arbitrary text: a CSV cell never starts a formula and keeps the text
behind one quote; terminal text holds only printable characters, escapes each control, format and
separator character visibly, and is unchanged by a second escaping."""

from __future__ import annotations

import logging
import sys

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from webbugger.csv_cells import FORMULA_STARTS, csv_cell, csv_row
from webbugger_cli.terminal import TerminalFormatter, terminal_text

PURE = settings(max_examples=200, deadline=2000, database=None)
any_text = st.text(st.characters(exclude_categories=()), max_size=200)


@PURE
@given(any_text)
@example("=1+1")
@example("\t=cmd")
def test_a_csv_cell_never_starts_a_formula(text: str) -> None:
    cell = csv_cell(text)
    assert isinstance(cell, str)
    assert not cell.startswith(FORMULA_STARTS)
    assert cell in (text, "'" + text)


def test_csv_rows_quote_text_only() -> None:
    row = csv_row({"user_agent": "@SUM(A1)", "referer": "https://r.example/", "minted": -5, "ip": None})
    assert row == {"user_agent": "'@SUM(A1)", "referer": "https://r.example/", "minted": -5, "ip": None}


@PURE
@given(any_text)
@example("\x1b]8;;https://evil.example/\x07x\x1b]8;;\x07\r\n\x9b2J\u202e\u2066\u2069\ud800")
def test_terminal_text_is_printable_and_stable(text: str) -> None:
    shown = terminal_text(text)
    assert shown.isprintable()
    assert terminal_text(shown) == shown
    if text.isprintable():
        assert shown == text


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("\x1b[2J", "\\x1b[2J"),
        ("a\r\nb\tc", "a\\r\\nb\\tc"),
        ("\x9b31m", "\\x9b31m"),
        ("\u202eevil\u2066x\u2069", "\\u202eevil\\u2066x\\u2069"),
        ("caf\u00e9 \u65e5\u672c", "caf\u00e9 \u65e5\u672c"),
        ("\U000e0041", "\\U000e0041"),
    ],
)
def test_terminal_escapes(text: str, shown: str) -> None:
    assert terminal_text(text) == shown


def test_the_log_formatter_escapes_messages() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "GET %s", ("/\x1b[2J\u202e",), None)
    assert TerminalFormatter("%(levelname)s %(message)s").format(record) == "INFO GET /\\x1b[2J\\u202e"


def test_the_log_formatter_indents_a_traceback_under_its_message() -> None:
    try:
        raise ValueError('quoted\n{"level":"ERROR","message":"beacon write failed"}')
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    lines = TerminalFormatter("%(message)s").format(record).splitlines()
    assert lines[0] == "failed"
    assert all(line.startswith("    ") for line in lines[1:])


def test_function_log_records_are_ascii_json() -> None:
    from webbugger.observability import logger

    record = logging.LogRecord("webbugger", logging.ERROR, __file__, 1, "beacon write failed", (), None)
    record.user_agent = "ua\x1b[2J\x9b31m\u202eedoc caf\u00e9"
    line = logger.registered_formatter.format(record)
    assert line.isascii() and line.isprintable(), line
    assert '"user_agent":"ua\\u001b[2J\\u009b31m\\u202eedoc caf\\u00e9"' in line


@pytest.mark.parametrize("text", [" =1+1", "  @SUM(A1)", "\u00a0+1", "\u3000-2+3", " \t=cmd"])
def test_a_formula_after_leading_spaces_is_quoted(text: str) -> None:
    """Spreadsheets that trim a cell's spaces on import (LibreOffice's "Trim spaces", cleanup
    tools) would otherwise find the formula behind them."""
    assert csv_cell(text) == "'" + text


def test_a_traceback_in_the_log_is_escaped_too() -> None:
    """An exception's message may quote a visitor: its ESC and CR must not reach the terminal, and
    a CR must not start a line that ``replay`` (which reads universal newlines) takes as a record."""
    from webbugger.spill import record_from_log_line

    planted = '{"level":"ERROR","message":"beacon write failed","spilled_beacon":{}}'
    try:
        raise ValueError(f"bad agent \x1b]8;;https://evil.example/\x07\u202e\r{planted}")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", (), sys.exc_info())
    shown = TerminalFormatter("%(message)s").format(record)
    lines = shown.split("\n")
    assert all(line.isprintable() for line in lines), shown
    assert all(line.startswith("    ") for line in lines[1:])
    assert [line for line in shown.splitlines() if record_from_log_line(line) is not None] == []
