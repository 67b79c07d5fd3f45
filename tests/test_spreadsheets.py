"""Spreadsheets in and out: never a live formula written, never data dropped on import,
the files offices really produce read, the wrong file refused in one line, imports streamed,
and names clean at the door."""
from __future__ import annotations

import csv
import io
import json
import tracemalloc
import zipfile
from datetime import datetime
from pathlib import Path

import pytest
from openpyxl import Workbook, load_workbook
from worlds import (
    CALL,
    CRITERIA,
    applications,
    db_rows,
    experts,
    in_review,
    refused,
    score,
    societies,
    write_csv,
)

from lifecycle.core import tabular

EVIL = '=HYPERLINK("http://evil.example/x","click me")'


def one_line(out: str) -> str:
    lines = [x for x in out.splitlines() if x.strip()]
    assert len(lines) == 1, out
    return lines[0]


def xlsx(path: Path, rows: list[list], merge: tuple[str, ...] = ()) -> Path:
    wb = Workbook()
    ws = wb.active
    for r in rows:
        ws.append(r)
    for m in merge:
        ws.merge_cells(m)
    wb.save(path)
    return path


# --- 5. written spreadsheets never carry live formulas ----------------------------------

def _in_review_with_evil_title(cli, tmp_path):
    apps = applications(4, ("academic",))
    apps[0]["title"] = EVIL
    apps[1]["title"] = "-5 ways to @win +more"
    return in_review(cli, tmp_path, apps=apps)


def test_score_sheet_title_is_inert_text_and_the_sheet_round_trips(cli, tmp_path):
    got = _in_review_with_evil_title(cli, tmp_path)
    expert = got["A0001"][0]
    out = tmp_path / "blank.xlsx"
    cli("review", "sheet", CALL, expert, "--out", out)
    wb = load_workbook(out)
    ws = wb["scores"]
    title = next(row[2] for row in ws.iter_rows(min_row=2) if row[1].value == "A0001")
    assert title.value == EVIL and title.data_type == "s", "a live formula was written"
    assert title.quotePrefix
    for i in range(2, ws.max_row + 1):  # the expert fills it in
        for j, (_c, m) in enumerate(CRITERIA.items(), start=5):
            ws.cell(i, j, m * 0.8)
    wb.save(out)
    r = cli("review", "import", CALL, out, now="2025-04-20")
    assert "sheet(s) scored" in r.output


def test_ranking_workbook_text_is_inert_and_numbers_stay_numbers(cli, tmp_path):
    got = _in_review_with_evil_title(cli, tmp_path)
    score(cli, tmp_path, {(x, a): 80 for a, xs in got.items() for x in xs})
    out = tmp_path / "ranking.xlsx"
    cli("rank", CALL, "--xlsx", out)
    ws = load_workbook(out).active
    header = [c.value for c in ws[1]]
    cells = {row[header.index("application")].value: row for row in ws.iter_rows(min_row=2)}
    for app, expected in (("A0001", EVIL), ("A0002", "-5 ways to @win +more")):
        title = cells[app][header.index("title")]
        assert title.value == expected and title.data_type == "s"
    assert not [c.coordinate for row in ws.iter_rows() for c in row if c.data_type == "f"]
    assert cells["A0001"][header.index("score")].data_type == "n"


def test_writers_make_every_formula_like_text_inert_and_readers_undo_it(tmp_path):
    values = [EVIL, "+1+1", "-2+3", "@SUM(A1)", "\tTAB", "\rCR", "plain", "'kept"]
    path = tmp_path / "out.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        w = tabular.csv_writer(f)
        w.writerow(["text", "number"])
        for v in values:
            w.writerow([v, -5])
    with path.open(newline="", encoding="utf-8") as f:
        raw = list(csv.reader(f))[1:]
    assert [r[0] for r in raw] == ["'" + v for v in values[:6]] + ["plain", "'kept"]
    assert {r[1] for r in raw} == {"-5"}  # a negative number is a number, not text
    class Cols(tabular.Row):
        text: str = tabular.cell(limit=100, multiline=True)
        number: tabular.Int = tabular.cell()

    back = tabular.read_table(path, Cols)
    assert [v["text"] for _, v in back] == ["=HYPERLINK(\"http://evil.example/x\",\"click me\")",
                                            "+1+1", "-2+3", "@SUM(A1)", "TAB", "CR", "plain",
                                            "'kept"]
    assert {v["number"] for _, v in back} == {-5}
    buf = io.StringIO()
    d = tabular.DictWriter(buf, fieldnames=["a", "b"])
    d.writeheader()
    d.writerows([{"a": "=1", "b": -1.5}])
    assert buf.getvalue().splitlines()[1] == "'=1,-1.5"
    wb = tabular.new_workbook()
    ws = wb.create_sheet("x")
    tabular.xlsx_append(ws, ["=1+1", -7, 2.5, "ok", None, "bell\x07"])
    wb.save(tmp_path / "x.xlsx")
    row = next(load_workbook(tmp_path / "x.xlsx")["x"].iter_rows())
    assert [(c.value, c.data_type) for c in row[:4]] == [("=1+1", "s"), (-7, "n"), (2.5, "n"),
                                                          ("ok", "s")]
    assert row[5].value == "bell\\x07"


# --- 7. imports never drop data silently ----------------------------------------------

def test_merged_header_cell_is_refused_naming_the_column(small_call, tmp_path):
    # "institution" merged over B:C, the second institution in column C had no header
    path = xlsx(tmp_path / "experts.xlsx",
                [["id", "institution", None, "name", "email"],
                 ["E100", "Uni1", "Uni9", "专家甲", "a@example.org"]], merge=("B1:C1",))
    out = refused(small_call, "expert", "import", path)
    assert "experts.xlsx: column C (no. 3) has values (first in row 2) but no header" in out
    assert "experts.xlsx: header cell B1:C1 is merged across columns B-C" in out


def test_merged_data_cells_are_refused(small_call, tmp_path):
    # one institution merged over three experts: rows 3 and 4 would lose it
    rows = [["id", "name", "email", "institution"]] + [
        [f"E10{i}", f"专家{i}", f"e{i}@example.org", "Uni1" if i == 0 else None]
        for i in range(3)]
    path = xlsx(tmp_path / "experts.xlsx", rows, merge=("D2:D4",))
    out = refused(small_call, "expert", "import", path)
    assert "experts.xlsx: cells D2:D4 are merged (rows 2-4, column D (no. 4))" in out


def test_csv_column_without_header_is_refused(small_call, tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("id,name,email,\nS900,新学会,n@example.org,Inst7\n", encoding="utf-8")
    out = refused(small_call, "society", "import", path)
    assert "s.csv: column D (no. 4) has values (first in row 2) but no header" in out
    extra = tmp_path / "t.csv"  # a value beyond the header
    extra.write_text("id,name,email\nS900,新学会,n@example.org\nS901,另一,m@example.org,Inst7\n",
                     encoding="utf-8")
    out = refused(small_call, "society", "import", extra)
    assert "t.csv: column D (no. 4) has values (first in row 3) but no header" in out


def test_duplicate_header_is_refused(small_call, tmp_path):
    path = tmp_path / "s.csv"
    path.write_text("id,name,email,institution,institution\n"
                    "S900,新学会,n@example.org,Inst1,Inst2\n", encoding="utf-8")
    out = refused(small_call, "society", "import", path)
    assert "'institution' (column D (no. 4)) and 'institution' (column E (no. 5))" in out
    assert "keep one" in out


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gb18030", "gbk"])
def test_csv_in_the_encodings_chinese_offices_save(small_call, tmp_path, encoding):
    rows = societies(12)[10:]
    rows[0]["name"], rows[1]["name"] = "北京市物理学会", "上海市化学化工学会（筹）"
    path = tmp_path / f"s-{encoding}.csv"
    with path.open("w", newline="", encoding=encoding) as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    small_call("society", "import", path, now="2025-03-10")
    got = dict(db_rows(small_call.db,
                       "SELECT id, name FROM societies WHERE id IN ('S011', 'S012')"))
    assert got == {"S011": "北京市物理学会", "S012": "上海市化学化工学会（筹）"}


def test_undecodable_csv_is_refused_and_a_declared_encoding_is_used(small_call, tmp_path,
                                                                    monkeypatch):
    path = tmp_path / "latin.csv"
    path.write_bytes("id,name,email\nS900,Société de physique,p@example.org\n".encode("latin-1"))
    out = one_line(refused(small_call, "society", "import", path))
    assert "latin.csv: neither UTF-8 nor GB18030 text" in out
    monkeypatch.setenv("STARFUND_ENCODING", "nonsense-8")
    assert "unknown encoding 'nonsense-8'" in refused(small_call, "society", "import", path)
    monkeypatch.setenv("STARFUND_ENCODING", "latin-1")
    small_call("society", "import", path, now="2025-03-10")
    assert db_rows(small_call.db, "SELECT name FROM societies WHERE id = 'S900'") == \
        [("Société de physique",)]


def _wrong_dimension(path: Path, ref: str) -> None:
    """Rewrite the sheet's <dimension> as some office tools write it: wrong."""
    import re

    with zipfile.ZipFile(path) as z:
        parts = {n: z.read(n) for n in z.namelist()}
    name = "xl/worksheets/sheet1.xml"
    parts[name] = re.sub(rb'<dimension ref="[^"]*"\s*/>', f'<dimension ref="{ref}"/>'.encode(),
                         parts[name])
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for n, data in parts.items():
            z.writestr(n, data)


def test_office_style_xlsx_is_read_whole(small_call, tmp_path):
    """Numbers stored as text, numeric cells for text columns, dates, and a wrong <dimension>."""
    header = ["id", "society_id", "category", "title", "title_en", "discipline",
              "requested_amount", "summary", "excluded_experts"]
    rows = [header] + [[f"N{i:03d}", f"S{i % 10 + 1:03d}", "academic", f"项目{i}",
                        datetime(2025, 3, 1 + i % 20), 2025 + i,
                        "20000" if i % 2 else 15000.0, f"第一行\n第二行 {i}", None]
                       for i in range(1, 11)]
    path = xlsx(tmp_path / "wps.xlsx", rows)
    _wrong_dimension(path, "A1:I3")  # claims 2 data rows; there are 10
    small_call("application", "import", CALL, path, now="2025-03-10")
    got = db_rows(small_call.db, "SELECT id, title_en, discipline, requested_amount FROM "
                              "applications WHERE id LIKE 'N%' ORDER BY id")
    assert len(got) == 10
    assert got[0] == ("N001", "2025-03-02 00:00:00", "2026", 20000)
    assert got[1][3] == 15000


def test_formula_saved_without_its_value_is_refused_not_read_as_empty(small_call, tmp_path):
    # a program (here openpyxl) writes formulas without values; optional institution would be ""
    path = xlsx(tmp_path / "s.xlsx", [["id", "name", "email", "institution"],
                                      ["S900", "新学会", "n@example.org", '=CONCAT("Uni", 1)']])
    out = refused(small_call, "society", "import", path)
    assert "s.xlsx: row 2, column institution: the formula '=CONCAT(\"Uni\", 1)' was saved " \
           "without its value" in out


@pytest.mark.parametrize("make, expected", [
    (lambda p: p.write_text("id,name,email\nS900,x,x@example.org\n"),
     "is text (CSV?), not an XLSX workbook: rename it to .csv"),
    (lambda p: p.write_bytes(b""), "the file is empty"),
    (lambda p: p.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(600)),
     "is an Excel 97-2003 (.xls) workbook, not XLSX"),
    (lambda p: p.write_bytes(bytes(range(256)) * 4), "is not an XLSX workbook"),
    (lambda p: zipfile.ZipFile(p, "w").writestr("hello.txt", "not a workbook"),
     "is not a readable XLSX workbook"),
])
def test_xlsx_named_file_that_is_not_one_gets_one_line(small_call, tmp_path, make, expected):
    path = tmp_path / "societies.xlsx"
    make(path)
    line = one_line(refused(small_call, "society", "import", path))
    assert str(path) in line and expected in line


@pytest.mark.parametrize("make, expected", [
    (lambda p: xlsx(p, [["id", "name", "email"], ["S900", "x", "x@example.org"]]),
     "is an XLSX workbook (a zip file), not CSV text: rename it to .xlsx"),
    (lambda p: p.write_bytes(b"\x00\x01\x02binary\x00" * 50), "is binary, not CSV text"),
    (lambda p: p.write_bytes(b""), "the file is empty"),
    (lambda p: p.write_bytes("id,name\n".encode("utf-16")), "is UTF-16 text"),
])
def test_csv_named_file_that_is_not_one_gets_one_line(small_call, tmp_path, make, expected):
    path = tmp_path / "societies.csv"
    make(path)
    line = one_line(refused(small_call, "society", "import", path))
    assert str(path) in line and expected in line


def test_score_sheet_that_is_not_a_workbook_gets_one_line(small_call, tmp_path):
    path = tmp_path / "scores.xlsx"
    path.write_text("expert_id,application_id,content\nE001,A0001,20\n")
    line = one_line(refused(small_call, "review", "import", CALL, path))
    assert "scores.xlsx: is text (CSV?), not an XLSX workbook" in line


def test_a_bad_row_after_the_first_chunks_leaves_the_database_as_it_was(small_call, tmp_path):
    n = tabular.CHUNK + 200
    rows = [{"id": f"B{i:05d}", "society_id": f"S{i % 10 + 1:03d}", "category": "academic",
             "title": f"项目 {i}", "requested_amount": 1000} for i in range(n)]
    rows[-1]["requested_amount"] = "0"
    path = write_csv(tmp_path / "big.csv", rows)
    out = refused(small_call, "application", "import", CALL, path)
    assert f"big.csv: row {n + 1}, column requested_amount: must be positive" in out
    rows[-1]["requested_amount"] = "1000"
    rows[3]["id"] = rows[n - 5]["id"]  # a repeat across chunks is still caught
    out = refused(small_call, "application", "import", CALL, write_csv(tmp_path / "r.csv", rows))
    assert f"r.csv: row {n - 3}, column id: '{rows[3]['id']}' repeats row 5" in out


def _peak_validating(cli, tmp_path: Path, n: int) -> int:
    """Peak Python memory of importing n declarations whose first row is bad (all checked)."""
    from lifecycle.acts import declarations
    from lifecycle.core import db

    path = tmp_path / f"apps-{n}.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "society_id", "category", "title", "requested_amount", "summary"])
        w.writerow(["X0", "S999", "academic", "无此学会", 1000, ""])
        for i in range(1, n):
            w.writerow([f"X{i}", f"S{i % 10 + 1:03d}", "academic", f"项目 {i}", 1000,
                        "本项目面向城市社区开展科学普及与学术交流活动" * 3])
    engine = db.make_engine(cli.db)
    try:
        tracemalloc.start()
        try:
            with db.transaction(engine) as s:
                declarations.import_applications(s.connection(), CALL, path, "admin-test")
        except tabular.InputError as e:
            assert "unknown society 'S999'" in str(e)
        else:
            raise AssertionError("the bad file was imported")
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    finally:
        engine.dispose()
    return peak


def test_imports_stream_memory_stays_flat_as_the_file_grows(small_call, tmp_path):
    small = _peak_validating(small_call, tmp_path, 10_000)
    big = _peak_validating(small_call, tmp_path, 40_000)
    assert big < small * 1.6, f"peak {small / 2**20:.1f} MB -> {big / 2**20:.1f} MB for 4x rows"


# --- 13. names are clean at the door -------------------------------------------------------

@pytest.mark.parametrize("field, value, expected", [
    ("name", "红色\x1b[31m学会", "row 2, column name: the value contains the control character "
                                "\\x1b"),
    ("name", "两行\n名称", "row 2, column name: the value contains the control character \\x0a"),
    ("institution", "In\x85st", "row 2, column institution: the value contains the control "
                                "character \\x85"),
    ("name_en", "x" * 201, "row 2, column name_en: the value is 201 characters long; the limit "
                           "is 200"),
    ("id", "S" * 65, "row 2, column id: the value is 65 characters long; the limit is 64"),
])
def test_society_names_with_control_characters_or_too_long_are_refused(small_call, tmp_path,
                                                                       field, value, expected):
    rows = societies(12)[10:]
    rows[0][field] = value
    out = refused(small_call, "society", "import", write_csv(tmp_path / "s.csv", rows))
    assert f"s.csv: {expected}" in out


def test_expert_and_application_text_is_clean(small_call, tmp_path):
    rows = experts(9)[8:]
    rows[0]["name"] = "专家\u202e乙"  # a bidi override: displays as something it is not
    out = refused(small_call, "expert", "import", write_csv(tmp_path / "e.csv", rows))
    assert "e.csv: row 2, column name: the value contains the control character \\u202e" in out
    apps = applications(22)[20:]
    for r in apps:
        r["id"] = "N" + r["id"]
    apps[0]["title"] = "标题\r\n第二行"
    apps[1]["summary"] = "第一段\n第二段\x07"
    out = refused(small_call, "application", "import", CALL, write_csv(tmp_path / "a.csv", apps))
    assert "a.csv: row 2, column title: the value contains the control character \\x0d" in out
    assert "a.csv: row 3, column summary: the value contains the control character \\x07" in out
    apps[0]["title"], apps[1]["summary"] = "标题", "第一段\r\n第二段"  # line breaks: summary only
    small_call("application", "import", CALL, write_csv(tmp_path / "b.csv", apps),
               now="2025-03-10")
    fields = db_rows(small_call.db, "SELECT fields FROM applications WHERE id = 'NA0022'")[0][0]
    fields = json.loads(fields) if isinstance(fields, str) else fields
    assert fields["summary"] == "第一段\n第二段"


def test_xlsx_cell_with_a_line_break_in_a_name_is_refused(small_call, tmp_path):
    path = xlsx(tmp_path / "s.xlsx", [["id", "name", "email"],
                                      ["S900", "第一行\n第二行", "n@example.org"]])
    out = refused(small_call, "society", "import", path)
    assert "s.xlsx: row 2, column name: the value contains the control character \\x0a" in out


def test_encoding_option_beats_the_environment(small_call, tmp_path, monkeypatch):
    path = tmp_path / "latin.csv"
    path.write_bytes("id,name,email\nS901,Société de chimie,c@example.org\n".encode("latin-1"))
    monkeypatch.setenv("STARFUND_ENCODING", "nonsense-8")
    small_call("society", "import", path, "--encoding", "latin-1", now="2025-03-10")
    assert db_rows(small_call.db, "SELECT name FROM societies WHERE id = 'S901'") == \
        [("Société de chimie",)]
