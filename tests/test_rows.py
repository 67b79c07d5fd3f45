"""Import rows checked by pydantic row models (lifecycle/core/tabular.Row): one mechanism
gives every import the same messages naming file, row and column; the column table in the
guide is generated from the models (tests/test_docs.py keeps it current)."""
from __future__ import annotations

import importlib.util
from pathlib import Path

from worlds import CALL, refused, write_csv

from lifecycle.core import tabular

ROOT = Path(__file__).resolve().parent.parent


def test_every_import_kind_reads_through_a_row_model():
    spec = importlib.util.spec_from_file_location("make_reference",
                                                  ROOT / "docs" / "make_reference.py")
    make_reference = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_reference)
    kinds = make_reference.import_kinds()
    assert len(kinds) == 10 and all(issubclass(m, tabular.Row) for _, _, m in kinds)
    declared = {c.name: c for c in tabular.columns_of(kinds[2][2])}
    assert declared["requested_amount"].required and declared["summary"].multiline
    assert declared["excluded_experts"].default() == []


def test_bad_cells_of_any_kind_get_the_same_messages(small_call, tmp_path):
    soc = write_csv(tmp_path / "soc.csv", [
        {"id": "S901", "name": "甲", "email": "a@example.org", "penalty": "maybe"},
        {"id": "S902", "name": "乙", "email": ""}])
    out = refused(small_call, "society", "import", soc)
    assert f"{soc}: row 2, column penalty: 'maybe' is not valid (expected yes/no" in out
    assert f"{soc}: row 3, column email: value is required" in out
    apps = write_csv(tmp_path / "apps.csv", [
        {"society_id": "S001", "category": "academic", "title": "题", "requested_amount": "12万"},
        {"society_id": "S001", "category": "academic", "title": "题\x07",
         "requested_amount": "1,000"}])
    out = refused(small_call, "application", "import", CALL, apps)
    assert f"{apps}: row 2, column requested_amount: '12万' is not valid (invalid literal" in out
    assert f"{apps}: row 3, column title: the value contains the control character \\x07" in out
    assert "row 3, column requested_amount" not in out  # 1,000 is a whole number
