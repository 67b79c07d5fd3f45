"""Spreadsheet readers compared: openpyxl (starfund's streaming reader), python-calamine, fastexcel.

Two questions, printed as two tables:

1. Speed and memory on a big workbook (about 50 MB of XLSX, declarations-like
   rows, written once into bench/out/ and reused). Each reader runs in a fresh
   subprocess that reads every cell of the first sheet into Python values row
   by row, as an import needs them; printed: rows, seconds, rows/s and the
   subprocess's peak resident memory (ru_maxrss).
2. Faithfulness on small files with what office suites put in real sheets:
   merged cells, numbers stored as text (an id "00123", an amount "20000"
   typed as text), a date. The same content is saved by openpyxl (as Excel
   writes it) and, when LibreOffice is installed (`soffice`), re-saved by
   LibreOffice as XLSX, ODS and XLS. Printed per reader and file: whether it
   reports the merged range (starfund refuses merged cells: it must see them),
   keeps the text numbers as text, gives the date as a date, and sees a
   formula saved without its value (openpyxl's own file: starfund refuses such
   a cell rather than read it as empty).

openpyxl is the reader starfund uses (lifecycle/core/tabular.py): the figures
and the choice are in docs/performance.md ("Spreadsheet readers").

    .venv/bin/python bench/readers.py                 # 50 MB
    .venv/bin/python bench/readers.py --size 10       # a quicker run
    .venv/bin/pip install python-calamine fastexcel pyarrow   # the readers compared (bench only)
"""
from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
from datetime import date, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

OUT = Path(__file__).resolve().parent / "out"
READERS = ("openpyxl", "calamine", "fastexcel")
HEADER = ["id", "society_id", "category", "title", "title_en", "discipline",
          "requested_amount", "declared_on", "summary"]
SUMMARY = "本项目面向城市社区开展科学普及与学术交流活动，组织专家讲座、青少年科技营和学术沙龙。"


def make_big(size_mb: int) -> Path:
    """A declarations-like XLSX of about `size_mb` MB (written once with openpyxl, reused)."""
    from openpyxl import Workbook

    OUT.mkdir(exist_ok=True)
    path = OUT / f"readers-{size_mb}mb.xlsx"
    if path.exists():
        return path
    rows = size_mb * 19_000   # about 19,000 rows a MB at these widths (measured)
    wb = Workbook(write_only=True)
    ws = wb.create_sheet("applications")
    ws.append(HEADER)
    for i in range(rows):
        ws.append([f"B{i:07d}", f"S{i % 1000:06d}", ("academic", "policy", "popsci")[i % 3],
                   f"基准申报项目第{i}号", f"Bench project number {i}", "物理",
                   20000 + i % 50000, datetime(2025, 3, 1 + i % 28), f"{SUMMARY}{i}"])
    tmp = path.with_suffix(".tmp.xlsx")
    wb.save(tmp)
    tmp.replace(path)
    return path


# --- reading, one reader per subprocess ------------------------------------------------

def read_openpyxl(path: Path) -> tuple[int, list[list], list[str]]:
    """starfund's own reader: the sheet's XML parsed row by row (lifecycle/core/tabular.py)."""
    from lifecycle.core.tabular import _Xlsx

    reader = _Xlsx(path)
    n, first = 0, []
    for _, cells in reader:
        if n < 3:
            first.append(cells)
        n += 1
    return n, first, [m[0] for m in reader.merged]


def read_calamine(path: Path) -> tuple[int, list[list], list[str]]:
    from python_calamine import CalamineWorkbook

    wb = CalamineWorkbook.from_path(str(path))
    sheet = wb.get_sheet_by_index(0)
    n, first = 0, []
    for cells in sheet.iter_rows():
        if n < 3:
            first.append(list(cells))
        n += 1
    merged = [f"{_ref(a)}:{_ref(b)}" for a, b in (sheet.merged_cell_ranges or [])]
    return n, first, merged


def read_fastexcel(path: Path) -> tuple[int, list[list], list[str]]:
    """fastexcel gives typed columns (Arrow, each typed as fastexcel infers it from the rows
    under the header), turned into rows here, the header first."""
    import fastexcel

    sheet = fastexcel.read_excel(str(path)).load_sheet(0, header_row=0)
    table = sheet.to_arrow()
    columns = [c.to_pylist() for c in table.columns]
    n, first = 0, []
    for cells in [tuple(table.column_names), *zip(*columns)]:
        if n < 3:
            first.append(list(cells))
        n += 1
    return n, first, []   # fastexcel does not report merged ranges


def _ref(cell: tuple[int, int]) -> str:
    from lifecycle.core.tabular import column_letter

    row, col = cell
    return f"{column_letter(col + 1)}{row + 1}"


def child(reader: str, path: str) -> None:
    """Run in the subprocess: read, and print the figures as one JSON line."""
    fn = {"openpyxl": read_openpyxl, "calamine": read_calamine, "fastexcel": read_fastexcel}
    started = time.perf_counter()
    n, first, merged = fn[reader](Path(path))
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"rows": n, "seconds": seconds, "peak_mb": peak, "merged": merged,
                      "first": [[_plain(v) for v in r] for r in first]}, ensure_ascii=False))


def _plain(v):
    if isinstance(v, (datetime, date)):
        return {"date": v.isoformat()}
    return v if v is None or isinstance(v, (str, int, float, bool)) else str(v)


def measure(reader: str, path: Path) -> dict:
    r = subprocess.run([sys.executable, __file__, "--child", reader, str(path)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        return {"error": (r.stderr.strip().splitlines() or ["failed"])[-1][:120]}
    return json.loads(r.stdout)


# --- the faithfulness files ------------------------------------------------------------

def make_fixtures() -> list[Path]:
    """The same small sheet saved by openpyxl and, if soffice is installed, by LibreOffice."""
    from openpyxl import Workbook

    OUT.mkdir(exist_ok=True)
    base = OUT / "faithful-openpyxl.xlsx"
    wb = Workbook()
    ws = wb.active
    ws.append(["id", "name", "requested_amount", "declared_on", "note", "total"])
    ws.append(["00123", "学会甲", "20000", date(2025, 3, 14), "merged", "=1+1"])  # text numbers
    ws.append(["00124", "学会乙", 30000, date(2025, 3, 15), None, 2])
    ws["D2"].number_format = ws["D3"].number_format = "yyyy-mm-dd"
    ws.merge_cells("E2:E3")
    wb.save(base)
    files = [base]
    soffice = shutil.which("soffice") or shutil.which("libreoffice")
    if soffice:
        for fmt in ("xlsx", "ods", "xls"):
            out = OUT / "lo"
            subprocess.run([soffice, "--headless", "--convert-to", fmt, "--outdir", str(out),
                            str(base)], capture_output=True, timeout=120)
            made = out / f"{base.stem}.{fmt}"
            if made.exists():
                target = OUT / f"faithful-libreoffice.{fmt}"
                made.replace(target)
                files.append(target)
    return files


def judge(result: dict) -> dict[str, str]:
    """What a reader made of the faithfulness sheet (row 2 is the data row under test)."""
    if "error" in result:
        return {"merged seen": "error", "text numbers kept": "error", "date is a date": "error",
                "formula": "error"}
    rows = result["first"]
    row = rows[1] if len(rows) > 1 else []
    kept = row[:1] == ["00123"] and len(row) > 2 and row[2] == "20000"
    is_date = len(row) > 3 and isinstance(row[3], dict)
    return {"merged seen": "yes" if result["merged"] else "no",
            "text numbers kept": "yes" if kept else f"no ({row[0]!r}, {row[2]!r})" if
            len(row) > 2 else "no",
            "date is a date": "yes" if is_date else f"no ({row[3]!r})" if len(row) > 3 else "no",
            # F2 is =1+1: openpyxl saves it without a value, an office suite with its value 2
            "formula": "value" if len(row) > 5 and row[5] in (2, 2.0) else
            "seen" if len(row) > 5 and str(row[5]).startswith("=") else
            f"lost ({row[5]!r})" if len(row) > 5 else "lost"}


def main(argv: list[str]) -> int:
    if argv[:1] == ["--child"]:
        child(argv[1], argv[2])
        return 0
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=50, help="MB of the big workbook (default 50)")
    args = p.parse_args(argv)
    big = make_big(args.size)
    print(f"big workbook: {big.name}, {big.stat().st_size / 2**20:.1f} MB")
    print(f"{'reader':<10} {'rows':>9} {'seconds':>8} {'rows/s':>9} {'peak MB':>8}")
    for reader in READERS:
        r = measure(reader, big)
        if "error" in r:
            print(f"{reader:<10} {r['error']}")
            continue
        print(f"{reader:<10} {r['rows']:>9,} {r['seconds']:>8.1f} "
              f"{r['rows'] / r['seconds']:>9,.0f} {r['peak_mb']:>8.0f}")
    print()
    files = make_fixtures()
    if len(files) == 1:
        print("LibreOffice (soffice) is not installed: only the openpyxl-written file is judged")
    print(f"{'reader':<10} {'file':<28} {'merged seen':<12} {'text numbers kept':<18} "
          f"{'date is a date':<15} formula saved without its value")
    for path in files:
        for reader in READERS:
            j = judge(measure(reader, path))
            formula = j["formula"] if path.name.endswith("openpyxl.xlsx") else \
                f"(n/a: the suite saved {j['formula']})"
            print(f"{reader:<10} {path.name:<28} {j['merged seen']:<12} "
                  f"{j['text numbers kept']:<18} {j['date is a date']:<15} {formula}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
