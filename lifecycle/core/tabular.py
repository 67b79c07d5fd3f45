"""Reading CSV and XLSX files row by row, refusing them whole; writing them inert.

Reading. Importers declare their columns as data (`Column` records).
`iter_table` streams typed rows from the file (a csv reader over the open
file, or the XLSX sheet's XML parsed row by row), so memory stays flat as the
file grows; `read_table` is the same as a list. Nothing is dropped silently:

- the file must be what its name says (checked by its first bytes: an XLSX is
  a zip), a CSV is UTF-8 (with or without BOM) or GB18030/GBK, detected, or
  the encoding given (`encoding=`: `--encoding` or STARFUND_ENCODING, passed down);
- a column with values but no header, a header cell merged across columns,
  merged cells in the data, and a header given twice refuse the file, naming
  the column by letter and position;
- every text cell must be clean (no control characters, except line breaks in
  the columns declared `multiline`) and within its column's length limit.

Every problem names the file, the row and the column; one bad row refuses
the whole file (`InputError`), and importers that write while they read do so
in one transaction, so the database is left exactly as it was.

Writing. Every cell starfund writes into a CSV or XLSX file goes through
`csv_writer` / `DictWriter` / `xlsx_append`: text that a spreadsheet would
take as a formula (starting with = + - @, tab or carriage return) is written
as inert text (CSV: a leading ' that starfund's own readers strip again;
XLSX: a string cell with the quote-prefix style, never a formula cell).
Numbers stay numbers.
"""
from __future__ import annotations

import codecs
import csv
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from itertools import islice
from pathlib import Path
from typing import Annotated, Any, get_args

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, TypeAdapter, ValidationError
from pydantic.fields import FieldInfo

from lifecycle.core import progress as progress_sink
from lifecycle.core.errors import BadValue

CHUNK = 5000                      # rows validated and written at a time by streaming importers
ENCODING_ENV = "STARFUND_ENCODING"
ID_LIMIT = 64                     # ids are String(64) in the database
NAME_LIMIT = 200                  # names, institutions, single-line text
MAX_PROBLEMS = 1000               # problems kept for the message (all are counted)
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
XLSX_MAGIC = b"PK\x03\x04"
OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"  # Excel 97-2003 .xls, .doc ...
SUFFIXES = (".csv", ".xlsx", ".xlsm")


class InputError(BadValue):
    """Bad input; `problems` holds one line per bad cell, each naming file, row and column."""

    def __init__(self, source: str, problems: list[str]) -> None:
        self.source, self.problems = source, list(problems)
        total = max(getattr(problems, "total", 0), len(self.problems))
        shown = self.problems[:20]
        if total == 1:
            super().__init__(f"{shown[0]}; refused, nothing was imported")
            return
        if total > len(shown):
            shown.append(f"... and {total - len(shown)} more")
        super().__init__(f"{source}: refused, nothing was imported\n  " + "\n  ".join(shown))


class Problems(list):
    """A list of problem lines that keeps the first MAX_PROBLEMS and counts them all."""

    def __init__(self, limit: int = MAX_PROBLEMS) -> None:
        super().__init__()
        self.limit, self.total = limit, 0

    def append(self, line: str) -> None:  # type: ignore[override]
        self.total += 1
        if len(self) < self.limit:
            super().append(line)

    def extend(self, lines: Iterable[str]) -> None:  # type: ignore[override]
        for line in lines:
            self.append(line)

    def __iadd__(self, lines: Iterable[str]) -> Problems:  # type: ignore[override]
        self.extend(lines)
        return self


# --- cell values ------------------------------------------------------------------------

def _unquote(v: str) -> str:
    """Undo the writers' formula defence: a leading ' before = + - @ tab CR."""
    return v[1:] if v[:1] == "'" and v[1:2] and v[1] in "=+-@\t\r" else v


def _text(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float) and v.is_integer():
        return str(int(v))       # 1001.0 from a spreadsheet is the id 1001
    if isinstance(v, str):
        return _unquote(v).strip()
    return str(v).strip()


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
    """Items separated by ; , (half or full width) or line breaks, each at most NAME_LIMIT long."""
    t = _text(v)
    for sep in ("；", "，", ",", "\r\n", "\n", "\r"):
        t = t.replace(sep, ";")
    items = [x.strip() for x in t.split(";") if x.strip()]
    for x in items:
        if len(x) > NAME_LIMIT:
            raise ValueError(f"item {x[:20]!r}... is {len(x)} characters long; "
                             f"the limit is {NAME_LIMIT}")
    return items


def as_datetime(v: Any) -> datetime:
    if isinstance(v, datetime):
        return v
    return datetime.fromisoformat(_text(v))


@dataclass(frozen=True)
class Column:
    """One column an importer reads: how to parse it, and what text it accepts.

    `limit` is the longest text accepted (default NAME_LIMIT for text, 2000 for
    other kinds); `multiline` lets line breaks through (a summary, a comment);
    every other control character is refused in every column.
    """

    name: str
    parse: Callable[[Any], Any] = as_str
    required: bool = True
    default: Any = None
    aliases: tuple[str, ...] = ()
    limit: int | None = None
    multiline: bool = False
    about: str = ""

    def max_length(self) -> int:
        if self.limit is not None:
            return self.limit
        return NAME_LIMIT if self.parse is as_str else 2000


# --- rows described as pydantic models -------------------------------------------------

Int = Annotated[int, BeforeValidator(as_int)]
"""A whole number (1,000 and 1_000 too; 1001.0 from a spreadsheet is 1001)."""
Float = Annotated[float, BeforeValidator(as_float)]
Bool = Annotated[bool, BeforeValidator(as_bool)]
"""是/否, yes/no, true/false, 1/0, 通过/未通过, pass/fail."""
TextList = Annotated[list[str], BeforeValidator(as_list)]
"""Items separated by ; or , (half or full width) or line breaks."""


def cell(default: Any = ..., *, aliases: tuple[str, ...] = (), limit: int | None = None,
         multiline: bool = False, about: str = "", name: str | None = None) -> Any:
    """A column of a row model: its default (none: required), the other header names it is
    known by, its longest text, whether line breaks are allowed, what it holds, and (for a
    column whose header is not a Python name) its header."""
    extra = {"aliases": list(aliases), "limit": limit, "multiline": multiline}
    kw: dict[str, Any] = {"alias": name} if name else {}
    if isinstance(default, type) and default in (list, dict):
        return Field(default_factory=default, description=about, json_schema_extra=extra, **kw)
    return Field(default, description=about, json_schema_extra=extra, **kw)


class Row(BaseModel):
    """One row of an import file: each field a column (`cell`), its type checked by pydantic.

    Every import reads through `iter_table(path, TheRow, ...)`, so every bad cell gets the
    same message naming the file, the row and the column; docs/guide.md's table of columns
    is generated from these models (docs/make_reference.py).
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=False)


_ABOUT = {as_bool: "是/否, yes/no", as_list: "a list: items separated by ; or , or lines"}


def _parser(f: FieldInfo) -> Callable[[Any], Any]:
    """The cell parser of a field (Int, Float, Bool, TextList; plain text: as_str)."""
    inner = [getattr(a, "__metadata__", ()) for a in get_args(f.annotation)]
    for m in [*f.metadata, *(m for ms in inner for m in ms)]:
        if isinstance(m, BeforeValidator):
            return m.func  # type: ignore[return-value]
    return as_str


def _column(name: str, f: FieldInfo) -> Column:
    extra = f.json_schema_extra if isinstance(f.json_schema_extra, dict) else {}
    default = f.default_factory if f.default_factory is not None else f.default
    return Column(f.alias or name, _parser(f),
                  required=f.is_required(), default=None if f.is_required() else default,
                  aliases=tuple(extra.get("aliases") or ()), limit=extra.get("limit"),
                  multiline=bool(extra.get("multiline")),
                  about=f.description or _ABOUT.get(_parser(f), ""))


@cache
def columns_of(model: type[Row]) -> tuple[Column, ...]:
    """The columns a row model reads, in order."""
    return tuple(_column(n, f) for n, f in model.model_fields.items())


@cache
def _fields_of(model: type[Row]) -> dict[str, str]:
    """Column name -> field name (they differ only for columns with a header of their own)."""
    return {(f.alias or n): n for n, f in model.model_fields.items()}


@cache
def _adapter(model: type[Row], field: str) -> TypeAdapter:
    f = model.model_fields[field]
    return TypeAdapter(Annotated[f.annotation, *f.metadata] if f.metadata else f.annotation)


def _why(error: Any) -> str:
    message = str(error["msg"])
    return message[len("Value error, "):] if message.startswith("Value error, ") else message


def _validated(model: type[Row], given: dict[str, Any], texts: dict[str, str],
               unusable: set[str], where: str, problems: list[str]) -> dict[str, Any]:
    """The row's values by column, checked by the model; each bad cell one problem line (its
    value None). `unusable`: columns already reported, left out and not reported again."""
    fields = _fields_of(model)
    try:
        row = model.model_validate(given)
        return {c: None if c in unusable else getattr(row, f) for c, f in fields.items()}
    except ValidationError:
        pass
    values: dict[str, Any] = {}
    for column, name in fields.items():   # the slow path, for a bad row: field by field
        f = model.model_fields[name]
        if column in unusable:
            values[column] = None
        elif column not in given:
            if f.is_required():
                problems.append(f"{where}, column {column}: value is required")
            values[column] = None if f.is_required() else f.get_default(call_default_factory=True)
        else:
            try:
                values[column] = _adapter(model, name).validate_python(given[column])
            except ValidationError as e:
                values[column] = None
                problems.append(f"{where}, column {column}: {texts[column]!r} is not valid "
                                f"({_why(e.errors()[0])})")
    return values


def columns_markdown(kinds: list[tuple[str, str, type[Row]]]) -> str:
    """The table of import columns for docs/guide.md, from the row models: (file, command,
    model) per import kind."""
    lines = ["| file | command | required columns | optional columns (default) |",
             "| --- | --- | --- | --- |"]

    def named(c: Column) -> str:
        notes = ([f"or {', '.join(f'`{a}`' for a in c.aliases)}"] if c.aliases else []) + \
            ([c.about] if c.about else [])
        return f"`{c.name}`" + (f" ({'; '.join(notes)})" if notes else "")

    for what, command, model in kinds:
        cols = columns_of(model)
        required = ", ".join(named(c) for c in cols if c.required)
        optional = []
        for c in cols:
            if c.required:
                continue
            d = c.default() if callable(c.default) else c.default
            shown = "" if d in (None, "", []) else f" = {d!r}".replace("'", "")
            optional.append(named(c) + shown)
        lines.append(f"| {what} | `{command}` | {required} | {', '.join(optional)} |")
    return "\n".join(lines)


def _unsafe_pattern(allow: str = "") -> re.Pattern[str]:
    """What `names.clean_name` refuses (control characters, bidi overrides ...), as one regex."""
    from lifecycle.core import names

    chars = {chr(c) for c in [*range(0x20), *range(0x7F, 0xA0)]} | set(
        getattr(names, "_INVISIBLE", ()))
    return re.compile("[" + "".join(re.escape(c) for c in sorted(chars - set(allow))) + "]")


_UNSAFE = _unsafe_pattern()
_UNSAFE_MULTILINE = _unsafe_pattern("\n")


def _checked(text: str, col: Column) -> str:
    """The cell's text, or BadName (from `names.clean_name`) naming the character or the limit."""
    if col.multiline:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
        if not _UNSAFE_MULTILINE.search(text) and len(text) <= col.max_length():
            return text        # the common case, without a Python loop over the characters
    elif not _UNSAFE.search(text) and len(text) <= col.max_length():
        return text
    from lifecycle.core.names import BadName, clean_name

    if not col.multiline:
        return clean_name(text, "the value", col.max_length(), required=False)
    try:
        clean_name(text.replace("\n", " "), "the value", col.max_length(), required=False)
    except BadName as e:
        raise BadName(str(e).replace("on one line", "and line breaks")) from None
    return text


# --- which file is this -----------------------------------------------------------------

def column_letter(position: int) -> str:
    """'A' for 1, 'AA' for 27."""
    letters = ""
    while position:
        position, rest = divmod(position - 1, 26)
        letters = chr(65 + rest) + letters
    return letters


def _where(position: int) -> str:
    return f"column {column_letter(position)} (no. {position})"


def _refuse(source: str, message: str) -> InputError:
    return InputError(source, [f"{source}: {message}"])


def _encoding(path: Path, declared: str | None) -> str:
    """The CSV's text encoding: the declared one if any, else UTF-8 (BOM or not) or GB18030.

    The whole file is decoded strictly once, a megabyte at a time, before any row
    is read, so a file that is neither is refused before anything is written.
    """
    source = str(path)
    declared = declared or None
    if declared:
        try:
            codecs.lookup(declared)
        except LookupError:
            raise _refuse(source, f"unknown encoding {declared!r} (e.g. utf-8, gb18030, "
                                  "gbk)") from None
    failed: list[int] = []    # where each candidate failed (byte offset, within 3 bytes)
    for enc in [declared] if declared else ["utf-8-sig", "gb18030"]:
        decoder = codecs.getincrementaldecoder(enc)("strict")
        offset = 0
        try:
            with path.open("rb") as f:
                while block := f.read(1 << 20):
                    decoder.decode(block)
                    offset += len(block)
                decoder.decode(b"", final=True)
            return enc
        except UnicodeDecodeError as e:
            failed.append(offset + e.start)
    if declared:
        raise _refuse(source, f"not valid {declared} text (near byte {failed[0]})")
    raise _refuse(source, f"neither UTF-8 nor GB18030 text (not UTF-8 near byte {failed[0]}): "
                          "save it as CSV UTF-8, or name its encoding "
                          f"({ENCODING_ENV}, or --encoding where the command has it)")


def _kind(path: Path) -> str:
    """'csv' or 'xlsx': what the file is, checked against its name by its first bytes."""
    source = str(path)
    if not path.exists():
        raise _refuse(source, "no such file")
    if not path.is_file():
        raise _refuse(source, "not a file")
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise _refuse(source, f"unsupported file type {path.suffix!r} (use .csv or .xlsx)")
    with path.open("rb") as f:
        head = f.read(65536)
    if not head.strip():
        raise _refuse(source, "the file is empty")
    is_zip, is_ole = head.startswith(XLSX_MAGIC), head.startswith(OLE_MAGIC)
    binary = b"\x00" in head
    utf16 = head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE))
    if suffix == ".csv":
        if is_zip:
            raise _refuse(source, "is an XLSX workbook (a zip file), not CSV text: "
                                  "rename it to .xlsx")
        if is_ole:
            raise _refuse(source, "is an Excel 97-2003 (.xls) workbook, not CSV text: "
                                  "save it as CSV UTF-8 or as .xlsx")
        if utf16:
            raise _refuse(source, "is UTF-16 text (Excel's 'Unicode text'), not CSV: "
                                  "save it as CSV UTF-8")
        if binary:
            raise _refuse(source, "is binary, not CSV text")
        return "csv"
    if is_zip:
        return "xlsx"
    if is_ole:
        raise _refuse(source, "is an Excel 97-2003 (.xls) workbook, not XLSX: save it as .xlsx")
    if not binary:
        raise _refuse(source, "is text (CSV?), not an XLSX workbook: rename it to .csv")
    raise _refuse(source, "is not an XLSX workbook (not a zip file)")


# --- raw rows ---------------------------------------------------------------------------

class _Csv:
    """(row number, cells) of every record of a CSV file, read lazily."""

    def __init__(self, path: Path, encoding: str | None) -> None:
        self.path, self.source = path, str(path)
        self.encoding = _encoding(path, encoding)
        self.merged: list[tuple[str, int, int, int, int]] = []   # CSV has none

    def lines(self) -> int:
        """Lines in the file (a record with a line break in a cell counts them all): the
        rows to do a progress bar shows, counted only when one is drawn."""
        lines, last = 0, b"\n"
        with self.path.open("rb") as f:
            while block := f.read(1 << 20):
                lines, last = lines + block.count(b"\n"), block[-1:]
        return lines + (last != b"\n")

    def __iter__(self) -> Iterator[tuple[int, list[Any]]]:
        number = 0
        with self.path.open(newline="", encoding=self.encoding) as f:
            reader = csv.reader(f)
            try:
                for number, row in enumerate(reader, start=1):
                    yield number, row
            except csv.Error as e:
                raise _refuse(self.source, f"row {number + 1}: not readable as CSV ({e})") \
                    from None


class Uncomputed:
    """An XLSX formula cell saved without its value (written by a program, not an office suite)."""

    def __init__(self, formula: str) -> None:
        self.formula = formula

    def __str__(self) -> str:
        return self.formula


class _Xlsx:
    """(row number, cell values) of the first worksheet, parsed row by row (read-only).

    After the rows, `merged` holds the sheet's merged ranges (they come after the
    data in the file) as (ref, min_col, min_row, max_col, max_row).
    """

    def __init__(self, path: Path) -> None:
        self.path, self.source = path, str(path)
        self.merged: list[tuple[str, int, int, int, int]] = []

    def _broken(self, e: Exception) -> InputError:
        why = (str(e).strip().splitlines() or [""])[0][:120]
        return _refuse(self.source, f"is not a readable XLSX workbook ({type(e).__name__}"
                                    f"{': ' + why if why else ''})")

    def __iter__(self) -> Iterator[tuple[int, list[Any]]]:
        from openpyxl import load_workbook
        from openpyxl.worksheet._read_only import ReadOnlyWorksheet
        from openpyxl.worksheet._reader import FORMULA_TAG, WorkSheetParser
        from openpyxl.worksheet.cell_range import CellRange

        class Parser(WorkSheetParser):
            def parse_cell(self, element: Any) -> dict[str, Any]:
                cell = super().parse_cell(element)
                if cell["value"] is None and (f := element.find(FORMULA_TAG)) is not None:
                    cell["value"] = Uncomputed("=" + (f.text or ""))
                return cell

        try:
            wb = load_workbook(self.path, read_only=True, data_only=True)
        except Exception as e:  # noqa: BLE001 - any failure of the parser is a broken file
            raise self._broken(e) from None
        try:
            sheets = wb.worksheets
            if not sheets or not isinstance(sheets[0], ReadOnlyWorksheet):
                raise _refuse(self.source, "the first sheet is not a worksheet")
            ws = sheets[0]
            # the sheet's own parser, so that its merged ranges are seen (ReadOnlyWorksheet
            # drops them) and rows are not cut to a wrong <dimension> written by some tools
            try:
                src = ws._get_source()
            except Exception as e:  # noqa: BLE001
                raise self._broken(e) from None
            with src:
                parser = Parser(src, ws._shared_strings, data_only=True, epoch=wb.epoch,
                                date_formats=wb._date_formats,
                                timedelta_formats=wb._timedelta_formats)
                rows = parser.parse()
                while True:
                    try:
                        number, cells = next(rows)
                    except StopIteration:
                        break
                    except Exception as e:  # noqa: BLE001
                        raise self._broken(e) from None
                    values: list[Any] = [None] * max((c["column"] for c in cells), default=0)
                    for c in cells:
                        values[c["column"] - 1] = c["value"]
                    yield number, values
                for m in parser.merged_cells.mergeCell if parser.merged_cells else []:
                    r = CellRange(m.ref)
                    self.merged.append((m.ref, r.min_col, r.min_row, r.max_col, r.max_row))
        finally:
            wb.close()


def _reader(path: Path, encoding: str | None) -> _Csv | _Xlsx:
    return _Csv(path, encoding) if _kind(path) == "csv" else _Xlsx(path)


def _header_cell(v: Any) -> str:
    return _text(v).replace("\ufeff", "").replace("\u200b", "").strip()


def _blank(cells: list[Any]) -> bool:
    """No value in any cell (the same as every `_text(c)` being empty, but quicker)."""
    return not any(c.strip() if isinstance(c, str) else c is not None for c in cells)


def read_header(path: str | Path, encoding: str | None = None) -> list[str]:
    """The header row of a CSV/XLSX file (its first non-empty row), after the file checks."""
    path = Path(path)
    rows = iter(_reader(path, encoding))
    try:
        for _, cells in rows:
            if not _blank(cells):
                return [_header_cell(h) for h in cells]
        return []
    finally:
        rows.close()  # type: ignore[attr-defined]


def _index(source: str, header: list[str], columns: list[Column]) -> tuple[dict[str, int],
                                                                             list[str]]:
    """Which position each column is at, and the header's problems."""
    positions: dict[str, list[int]] = {}
    for i, h in enumerate(header):
        if h:
            positions.setdefault(h, []).append(i)
    index: dict[str, int] = {}
    problems = []
    for col in columns:
        found = [(name, i) for name in (col.name, *col.aliases) for i in positions.get(name, [])]
        if len(found) > 1:
            problems.append(f"{source}: header: " + " and ".join(
                f"{n!r} ({_where(i + 1)})" for n, i in sorted(found, key=lambda x: x[1]))
                + f" all give column {col.name}; keep one")
        if found:
            index[col.name] = min(found, key=lambda x: x[1])[1]
    problems += [f"{source}: header: missing required column {c.name!r}"
                 for c in columns if c.required and c.name not in index]
    known = {n for c in columns for n in (c.name, *c.aliases)}
    problems += [f"{source}: header: unknown column {h!r} ({_where(i + 1)})"
                 for i, h in enumerate(header) if h and h not in known]
    return index, problems


def iter_table(path: str | Path, model: type[Row], problems: list[str],
               encoding: str | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
    """Typed rows (row number as a person counts it, values by column), read lazily from a
    CSV/XLSX file and checked by the row model.

    Bad cells are appended to `problems` (their value set to None) and the row is
    still yielded, so the caller can check everything and report it at once; the
    caller refuses the file if `problems` is not empty once the rows are exhausted.
    A file that cannot be read at all, a bad header or a file without data rows
    raises InputError at once.
    """
    path = Path(path)
    source = str(path)
    reader = _reader(path, encoding)
    rows = iter(reader)
    try:
        yield from _typed(source, reader, rows, model, problems, progress_sink.current())
    finally:
        rows.close()  # type: ignore[attr-defined]


def _typed(source: str, reader: _Csv | _Xlsx, rows: Iterator[tuple[int, list[Any]]],
           model: type[Row], problems: list[str],
           progress: progress_sink.Progress) -> Iterator[tuple[int, dict[str, Any]]]:
    """The rows after the header, typed; each told to `progress` (of the CSV's lines after
    the header; an XLSX's rows to do are not known before they are read)."""
    columns = list(columns_of(model))
    header: list[str] = []
    header_row = 0
    for number, cells in rows:
        if not _blank(cells):
            header, header_row = [_header_cell(h) for h in cells], number
            break
    if not header:
        raise _refuse(source, "no header row (the file has no data)")
    index, header_problems = _index(source, header, columns)
    if header_problems:
        raise InputError(source, list(problems) + header_problems)
    width = len(header)
    unnamed = [i for i, h in enumerate(header) if not h]
    reported: set[int] = set()
    plan = [(col, index.get(col.name), col.parse is as_str) for col in columns]
    count = 0
    progress.step("importing", total=(lambda: reader.lines() - header_row)
                  if isinstance(reader, _Csv) else None)
    advance = progress.advance
    for number, cells in rows:
        advance(1)
        if _blank(cells):
            continue
        count += 1
        if unnamed or len(cells) > width:
            # values under no header would be dropped: refuse them, naming the column
            for i in [*unnamed, *range(width, len(cells))]:
                if i < len(cells) and i not in reported and _text(cells[i]):
                    reported.add(i)
                    problems.append(f"{source}: {_where(i + 1)} has values (first in row "
                                    f"{number}) but no header: name the column or delete it")
        given: dict[str, Any] = {}
        texts: dict[str, str] = {}
        unusable: set[str] = set()
        n = len(cells)
        for col, i, plain in plan:
            raw = cells[i] if i is not None and i < n else None
            if isinstance(raw, Uncomputed):
                unusable.add(col.name)
                problems.append(f"{source}: row {number}, column {col.name}: the formula "
                                f"{raw.formula!r} was saved without its value: open and save "
                                "the file in an office suite, or paste the values")
                continue
            text = _text(raw)
            if text == "":
                continue           # the model gives the default, or says it is required
            try:
                text = _checked(text, col)
            except ValueError as e:
                unusable.add(col.name)
                problems.append(f"{source}: row {number}, column {col.name}: {e}")
                continue
            given[col.name] = text if plain or isinstance(raw, str) else raw
            texts[col.name] = text
        yield number, _validated(model, given, texts, unusable, f"{source}: row {number}",
                                 problems)
    for ref, c1, r1, c2, r2 in reader.merged:
        if r2 < header_row:
            continue
        if r1 <= header_row and r2 == r1 and c2 > c1:
            problems.append(f"{source}: header cell {ref} is merged across columns "
                            f"{column_letter(c1)}-{column_letter(c2)}: give each column its "
                            "own header cell")
        elif r1 <= header_row:
            problems.append(f"{source}: cells {ref} are merged across the header and the data: "
                            "unmerge them")
        else:
            problems.append(f"{source}: cells {ref} are merged (rows {r1}-{r2}, "
                            f"{_where(c1)}{'' if c1 == c2 else ' to ' + _where(c2)}): "
                            "unmerge them and give every row its own value")
    if not count:
        raise InputError(source, list(problems) + [f"{source}: no data rows"])


def read_table(path: str | Path, model: type[Row], problems: list[str] | None = None,
               encoding: str | None = None) -> list[tuple[int, dict[str, Any]]]:
    """Typed rows of a CSV/XLSX file as a list, or InputError naming every bad row and column.

    With a `problems` list, bad cells are appended to it (their value set to
    None) instead of raising, so the caller can add its own checks and report
    everything wrong with the file at once.
    """
    collect = problems is not None
    problems = problems if problems is not None else Problems()
    out = list(iter_table(path, model, problems, encoding))
    if problems and not collect:
        raise InputError(str(path), problems)
    return out


def chunked(rows: Iterable[Any], size: int = CHUNK) -> Iterator[list[Any]]:
    """Lists of at most `size` items of `rows`, read lazily."""
    it = iter(rows)
    while chunk := list(islice(it, size)):
        yield chunk


def check_unique(source: str, rows: list[tuple[int, dict[str, Any]]], column: str,
                 seen: dict[Any, int] | None = None) -> list[str]:
    """Problems for values of `column` repeated within the file (`seen` carries across chunks)."""
    seen = {} if seen is None else seen
    problems = []
    for number, values in rows:
        v = values[column]
        if v is None:
            continue
        if v in seen:
            problems.append(f"{source}: row {number}, column {column}: {v!r} repeats row {seen[v]}")
        else:
            seen[v] = number
    return problems


# --- writing: never a live formula ----------------------------------------------------

_UNWRITABLE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def _visible(text: str) -> str:
    """Control characters a cell cannot hold (or a terminal should not get) as \\xNN text."""
    return _UNWRITABLE.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def formula_like(value: Any) -> bool:
    """Text a spreadsheet would take as a formula (or a DDE command) if typed or opened."""
    return isinstance(value, str) and value.startswith(FORMULA_START)


def csv_value(value: Any) -> Any:
    """A value as written to CSV: text that looks like a formula gets a leading '."""
    if not isinstance(value, str):
        return value
    value = _visible(value)
    return "'" + value if formula_like(value) else value


class CsvWriter:
    """csv.writer whose every text cell is inert (see `csv_value`)."""

    def __init__(self, f: Any, **kw: Any) -> None:
        self._writer = csv.writer(f, **kw)

    def writerow(self, row: Iterable[Any]) -> Any:
        return self._writer.writerow([csv_value(v) for v in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


def csv_writer(f: Any, **kw: Any) -> CsvWriter:
    return CsvWriter(f, **kw)


class DictWriter(csv.DictWriter):
    """csv.DictWriter whose every text cell is inert (see `csv_value`)."""

    def writerow(self, rowdict: dict[str, Any]) -> Any:
        return super().writerow({k: csv_value(v) for k, v in rowdict.items()})

    def writerows(self, rowdicts: Iterable[dict[str, Any]]) -> None:
        for r in rowdicts:
            self.writerow(r)


def new_workbook() -> Any:
    """A write-only openpyxl Workbook (rows go to disk as they come); add sheets, then save."""
    from openpyxl import Workbook

    return Workbook(write_only=True)


def xlsx_cell(ws: Any, value: Any) -> Any:
    """A value as written to XLSX: text is a string cell, never a formula; numbers stay numbers."""
    if not isinstance(value, str):
        return value
    value = _visible(value)
    if not formula_like(value):
        return value
    from openpyxl.cell import WriteOnlyCell

    cell = WriteOnlyCell(ws, value=value)
    cell.data_type = "s"       # openpyxl made it a formula ('f') because of the '='
    cell.quotePrefix = True    # and the office suite keeps it text when the cell is edited
    return cell


def xlsx_append(ws: Any, values: Iterable[Any]) -> None:
    """Append one row to a worksheet with every text cell inert."""
    ws.append([xlsx_cell(ws, v) for v in values])
