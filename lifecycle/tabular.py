"""Reading CSV and XLSX files row by row, and refusing them whole with row and column named.

Importers declare their columns as data (`Column` records); `read_table`
returns typed rows or raises `InputError` listing every bad cell, so one bad
row refuses the whole file and the database is never touched.
"""
from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any


class InputError(ValueError):
    """Bad input; `problems` holds one line per bad cell, each naming file, row and column."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source, self.problems = source, problems
        shown = problems[:20] + ([f"... and {len(problems) - 20} more"] if len(problems) > 20 else [])
        super().__init__(f"{source}: refused, nothing was imported\n  " + "\n  ".join(shown))


def _text(v: Any) -> str:
    return "" if v is None else str(v).strip()


def as_str(v: Any) -> str:
    return _text(v)


def as_int(v: Any) -> int:
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return int(_text(v).replace(",", "").replace("_", ""))


def as_float(v: Any) -> float:
    return float(_text(v))


def as_bool(v: Any) -> bool:
    t = _text(v).lower()
    if t in ("1", "true", "yes", "y", "是", "通过", "pass"):
        return True
    if t in ("0", "false", "no", "n", "否", "未通过", "fail"):
        return False
    raise ValueError("expected yes/no (true/false, 是/否)")


def as_list(v: Any) -> list[str]:
    t = _text(v).replace("；", ";").replace("，", ";").replace(",", ";")
    return [x.strip() for x in t.split(";") if x.strip()]


def as_datetime(v: Any) -> datetime:
    if isinstance(v, datetime):
        return v
    return datetime.fromisoformat(_text(v))


@dataclass(frozen=True)
class Column:
    name: str
    parse: Callable[[Any], Any] = as_str
    required: bool = True
    default: Any = None
    aliases: tuple[str, ...] = ()


def _raw_rows(path: Path) -> tuple[list[str], list[tuple[int, list[Any]]]]:
    """Header and (row number as a person counts it, cells) from a CSV or XLSX file."""
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        from openpyxl import load_workbook

        wb = load_workbook(path, read_only=True, data_only=True)
        rows = list(wb.active.iter_rows(values_only=True))
        wb.close()
        if not rows:
            return [], []
        header = [_text(h) for h in rows[0]]
        return header, [(i, list(r)) for i, r in enumerate(rows[1:], start=2)
                        if any(c not in (None, "") for c in r)]
    if path.suffix.lower() != ".csv":
        raise InputError(str(path), [f"{path}: unsupported file type {path.suffix!r} "
                                     "(use .csv or .xlsx)"])
    with path.open(newline="", encoding="utf-8-sig") as f:
        rows = list(csv.reader(f))
    if not rows:
        return [], []
    return [_text(h) for h in rows[0]], [(i, r) for i, r in enumerate(rows[1:], start=2)
                                          if any(_text(c) for c in r)]


def read_table(path: str | Path, columns: list[Column],
               problems: list[str] | None = None) -> list[tuple[int, dict[str, Any]]]:
    """Typed rows of a CSV/XLSX file, or InputError naming every bad row and column.

    With a `problems` list, bad cells are appended to it (their value set to
    None) instead of raising, so the caller can add its own checks and report
    everything wrong with the file at once.
    """
    collect = problems is not None
    problems = problems if problems is not None else []
    path = Path(path)
    source = str(path)
    if not path.exists():
        raise InputError(source, [f"{source}: no such file"])
    header, rows = _raw_rows(path)
    index: dict[str, int] = {}
    for col in columns:
        for name in (col.name, *col.aliases):
            if name in header:
                index[col.name] = header.index(name)
                break
    header_problems = [f"{source}: header: missing required column {c.name!r}"
                       for c in columns if c.required and c.name not in index]
    known = {n for c in columns for n in (c.name, *c.aliases)}
    header_problems += [f"{source}: header: unknown column {h!r}"
                        for h in header if h and h not in known]
    if header_problems:
        raise InputError(source, problems + header_problems)
    if not rows:
        raise InputError(source, [f"{source}: no data rows"])
    out = []
    for number, cells in rows:
        values: dict[str, Any] = {}
        for col in columns:
            raw = cells[index[col.name]] if col.name in index and index[col.name] < len(cells) else None
            if _text(raw) == "":
                if col.required:
                    problems.append(f"{source}: row {number}, column {col.name}: value is required")
                values[col.name] = col.default() if callable(col.default) else col.default
                continue
            try:
                values[col.name] = col.parse(raw)
            except (ValueError, TypeError) as e:
                values[col.name] = None
                problems.append(f"{source}: row {number}, column {col.name}: "
                                f"{_text(raw)!r} is not valid ({e})")
        out.append((number, values))
    if problems and not collect:
        raise InputError(source, problems)
    return out


def check_unique(source: str, rows: list[tuple[int, dict[str, Any]]], column: str) -> list[str]:
    """Problems for values of `column` repeated within the file."""
    seen: dict[Any, int] = {}
    problems = []
    for number, values in rows:
        v = values[column]
        if v in seen:
            problems.append(f"{source}: row {number}, column {column}: {v!r} repeats row {seen[v]}")
        else:
            seen[v] = number
    return problems
