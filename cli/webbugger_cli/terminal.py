"""Stored text made safe to print on a terminal: the one escaping every table, field listing and
the local server's log use.

Beacons, links and sources hold what visitors (and API callers) sent: a User-Agent can carry
``ESC [2J`` (clear the screen), an OSC 8 hyperlink, a CR that overwrites a table row, a C1 control
(U+009B is a one-byte CSI) or a bidi override (U+202E) that shows text in another order. Every
character Python does not call printable (categories Cc, Cf, Cs, Co, Cn, Zl, Zp, and Zs but the
space) is written as a visible escape (``\\x1b``, ``\\r``, ``\\u202e``); what remains of an escape
sequence is then plain text. The result holds only printable characters, so escaping it again
changes nothing.
"""

from __future__ import annotations

import logging

_NAMED = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}


def _escape(char: str) -> str:
    if char.isprintable():
        return char
    named = _NAMED.get(char)
    if named is not None:
        return named
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def terminal_text(text: object) -> str:
    """``text`` (as ``str``) with every control, format and separator character escaped."""
    shown = str(text)
    if shown.isprintable():  # the usual case, checked in C
        return shown
    return "".join(_escape(char) for char in shown)


class TerminalFormatter(logging.Formatter):
    """A log formatter whose messages are escaped with :func:`terminal_text`; a traceback after
    the message keeps its lines, indented, so that no text of a record (an exception's message
    may quote a visitor, line breaks and all) starts a line of the log. ``webbugger replay``
    reads records only from the start of a line."""

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        record.message = terminal_text(record.message)
        return super().formatMessage(record)

    def format(self, record: logging.LogRecord) -> str:
        """The record as one line, or several with every line after the first indented; the
        traceback's lines escaped as the message is (a CR in them would start a line too)."""
        return "\n    ".join(terminal_text(line) for line in super().format(record).split("\n"))
