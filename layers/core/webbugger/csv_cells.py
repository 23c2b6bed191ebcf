"""CSV cells a spreadsheet will not run: the one rule both CSV exports (the CLI's and the admin
API's) apply to every text cell.

A beacon's User-Agent, Referer and Accept-Language are the visitor's own text, and its ``device``
is derived from the User-Agent. A spreadsheet that opens the export treats a cell that starts with
``=``, ``+``, ``-`` or ``@`` (or a tab, CR, LF or NUL before one) as a formula, and one that trims
leading spaces on import (LibreOffice's "Trim spaces", cleanup tools) finds it behind spaces too:
``=HYPERLINK(...)`` leaks the sheet, ``=cmd|...`` runs a program. As OWASP's "CSV Injection" and
ASVS 1.2.10 advise, such a cell is written with a leading single quote, which spreadsheets show as
text. Numbers are left alone (a number is not a formula), and so is every other text: the export
stays lossless apart from that one quote.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

# OWASP's list, ASVS's NUL and LF, and the full-width forms some spreadsheets also read as signs.
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r", "\n", "\0", "\uff1d", "\uff0b", "\uff0d", "\uff20")


def csv_cell(value: object) -> object:
    """``value`` as a CSV cell: text that a spreadsheet would read as a formula gets a leading
    ``'``; anything else is returned as it is."""
    if isinstance(value, str) and (
        value.startswith(FORMULA_STARTS) or value.lstrip().startswith(FORMULA_STARTS)
    ):
        return "'" + value
    return value


def csv_row(record: Mapping[str, object]) -> dict[str, object]:
    """Every cell of ``record`` through :func:`csv_cell` (for ``csv.DictWriter.writerow``)."""
    return {name: csv_cell(value) for name, value in record.items()}
