"""Cells that are safe to open in a spreadsheet.

Excel, LibreOffice and Google Sheets run a cell that starts with `=`, `+`, `-` or `@` as a formula
(and a leading tab or carriage return can hide one). Contact names arrive from WhatsApp profiles, so
every CSV the platform writes passes its cells through `safe_cell` (OWASP "CSV injection").
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """The value, with a leading apostrophe when a spreadsheet would read it as a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_TRIGGERS):
        return "'" + value
    return value


def safe_row(values: Iterable[Any]) -> list[Any]:
    return [safe_cell(value) for value in values]
