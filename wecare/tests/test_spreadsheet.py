import pytest

from wecare.spreadsheet import safe_cell, safe_row


@pytest.mark.parametrize("value", ["=1+1", "+44 20", "-2", "@SUM(A1)", "\t=cmd", "\r=cmd", '=HYPERLINK("x")'])
def test_a_cell_a_spreadsheet_would_run_is_shown_as_text(value):
    assert safe_cell(value) == "'" + value


@pytest.mark.parametrize("value", ["Asha", "", "a=b", "x-1", 42, None, True])
def test_other_cells_are_unchanged(value):
    assert safe_cell(value) == value


def test_a_row_is_made_safe_cell_by_cell():
    assert safe_row(["=1", "ok", 3]) == ["'=1", "ok", 3]
