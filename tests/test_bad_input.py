"""Bad input is refused with file, row and column named, a non-zero exit, and nothing written."""
from datetime import datetime

import pytest
from openpyxl import Workbook
from worlds import (
    EXAMPLE_CALL,
    Cli,
    applications,
    call_file,
    refused,
    societies,
    write_csv,
)


def test_csv_missing_required_value_names_row_and_column(small_call, tmp_path):
    rows = societies(3)
    rows[1]["email"] = ""
    out = refused(small_call, "society", "import", write_csv(tmp_path / "s.csv", rows))
    assert "s.csv: row 3, column email: value is required" in out


def test_csv_bad_email_and_bool(small_call, tmp_path):
    rows = societies(3)
    rows[0]["email"] = "not-an-email"
    rows[2]["annual_inspection_passed"] = "maybe"
    out = refused(small_call, "society", "import", write_csv(tmp_path / "s.csv", rows))
    assert "row 2, column email" in out and "row 4, column annual_inspection_passed" in out


def test_csv_missing_column_and_unknown_column(small_call, tmp_path):
    rows = [{"id": "S900", "name": "x", "mail": "a@b.org"}]
    out = refused(small_call, "society", "import", write_csv(tmp_path / "s.csv", rows))
    assert "missing required column 'email'" in out and "unknown column 'mail'" in out


def test_application_import_unknown_society_category_amount(small_call, tmp_path):
    rows = applications(3)
    for r in rows:
        r["id"] = "N" + r["id"]
    rows[0]["society_id"] = "S999"
    rows[1]["category"] = "space"
    rows[2]["requested_amount"] = "12万"
    out = refused(small_call, "application", "import", "2025-project",
                  write_csv(tmp_path / "a.csv", rows))
    assert "a.csv: row 2, column society_id: unknown society 'S999'" in out
    assert "a.csv: row 3, column category: 'space' is not a category" in out
    assert "a.csv: row 4, column requested_amount" in out


def test_application_import_one_bad_row_refuses_all(small_call, tmp_path):
    rows = applications(25)[20:]
    rows[-1]["requested_amount"] = "-5"
    out = refused(small_call, "application", "import", "2025-project",
                  write_csv(tmp_path / "a.csv", rows))
    assert "row 6, column requested_amount: must be positive" in out


def test_application_import_duplicate_and_existing_ids(small_call, tmp_path):
    rows = applications(2)  # A0001 and A0002 exist already
    out = refused(small_call, "application", "import", "2025-project",
                  write_csv(tmp_path / "a.csv", rows))
    assert "row 2, column id: application 'A0001' already exists" in out


def test_xlsx_bad_row_named(small_call, tmp_path):
    wb = Workbook()
    ws = wb.active
    ws.append(["id", "name", "email", "institution", "disciplines", "societies"])
    ws.append(["E100", "专家甲", "a@example.org", "Uni1", "物理", "S001"])
    ws.append(["E101", "专家乙", "b@example.org", "Uni1", "化学", "S404"])
    path = tmp_path / "experts.xlsx"
    wb.save(path)
    out = refused(small_call, "expert", "import", path)
    assert "experts.xlsx: row 3, column societies: unknown society 'S404'" in out


def test_unsupported_file_type(small_call, tmp_path):
    p = tmp_path / "s.txt"
    p.write_text("id,name\n")
    out = refused(small_call, "society", "import", p)
    assert "unsupported file type" in out


@pytest.mark.parametrize("patch, tail, expected", [
    ({"budget_total": "lots"}, "", "field budget_total"),
    ({"calendar": {"notice_days": 0}}, "", "field calendar.notice_days"),
    ({"calendar": {"review_due": datetime(2025, 3, 1, 17)}}, "", "field calendar"),
    ({"title": None}, "", "field title"),
    ({"review": {"min_reviewz": 3}}, "", "field review.min_reviewz"),
    ({"workflow": "lottery"}, "", "field workflow"),
    ({}, "\n[[[broken", "not valid TOML"),
])
def test_bad_call_toml(cli, tmp_path, patch, tail, expected):
    path = call_file(tmp_path, patch, name="bad-call.toml")
    path.write_text(path.read_text(encoding="utf-8") + tail, encoding="utf-8")
    out = refused(cli, "call", "create", path)
    assert "bad-call.toml" in out and expected in out


def test_duplicate_call_refused(small_call):
    out = refused(small_call, "call", "create", EXAMPLE_CALL)
    assert "a call '2025-project' already exists" in out


def test_missing_file(small_call, tmp_path):
    out = refused(small_call, "society", "import", tmp_path / "nope.csv")
    assert "nope.csv: no such file" in out


def test_commands_refuse_an_uninitialised_database(tmp_path):
    r = Cli(str(tmp_path / "empty.db"))("status", "2025-project", ok=False)
    assert r.exit_code == 1 and "run `starfund init` first" in r.output
