"""What an uploaded file is, told by its content, never by its name.

A declaration's files (申报书, budget sheet), progress reports and objection
evidence come from outside; before one is stored its first bytes (and, for the
Office formats, the parts inside the zip) must say it is one of the types the
call accepts. A renamed executable or an HTML page called `.pdf` is refused, and so is a zip
that would expand too far (entries counted and their expansion measured first).
"""
from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass

from lifecycle.core.errors import BadValue

MAX_BYTES = 20 * 2**20
"""The largest file the portal takes (20 MB); the server refuses a larger body as it reads."""


@dataclass(frozen=True)
class FileType:
    name: str
    content_type: str
    extension: str


TYPES = {t.name: t for t in (
    FileType("pdf", "application/pdf", ".pdf"),
    FileType("docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
             ".docx"),
    FileType("xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
             ".xlsx"),
    FileType("png", "image/png", ".png"),
    FileType("jpeg", "image/jpeg", ".jpg"),
)}


MAX_ENTRIES = 5000
"""The most parts an Office file may hold (a long report with its images has a few hundred)."""
MAX_EXPANDED = 200 * 2**20
"""The most an Office file's parts may expand to together (200 MB; real ones expand 2 to 20
times their size): beyond, it is a decompression bomb, refused before it is stored."""


class ArchiveRefused(BadValue):
    """A zip whose entries are too many or expand too far (or that is broken)."""


def _office(data: bytes) -> str | None:
    """docx or xlsx by the parts inside the zip (an Office file is a zip of XML parts), once
    the zip is shown to be safe to open (`archive_check`)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            archive_check(z)
            names = set(z.namelist())
    except ArchiveRefused:
        raise
    except (zipfile.BadZipFile, ValueError):
        return None
    if "[Content_Types].xml" not in names:
        return None
    if "word/document.xml" in names:
        return "docx"
    if "xl/workbook.xml" in names:
        return "xlsx"
    return None


def archive_check(z: zipfile.ZipFile) -> None:
    """ArchiveRefused unless the zip has at most MAX_ENTRIES entries expanding to at most
    MAX_EXPANDED bytes, and each entry, read in pieces against that budget, is what its
    header says (a header may lie about its size; reading stops at the budget, never after)."""
    entries = z.infolist()
    if len(entries) > MAX_ENTRIES:
        raise ArchiveRefused(f"it holds {len(entries):,} parts, more than the {MAX_ENTRIES:,} "
                             "an Office file may have")
    declared = sum(e.file_size for e in entries)
    if declared > MAX_EXPANDED:
        raise ArchiveRefused(f"it would expand to {declared:,} bytes, more than the "
                             f"{MAX_EXPANDED // 2**20} MB an Office file may have "
                             "(a decompression bomb?)")
    budget = MAX_EXPANDED
    try:
        for entry in entries:
            with z.open(entry) as part:
                while chunk := part.read(2**20):
                    budget -= len(chunk)
                    if budget < 0:
                        raise ArchiveRefused(f"it expands to more than {MAX_EXPANDED // 2**20} "
                                             "MB (a decompression bomb?)")
    except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError, RuntimeError) as e:
        raise ArchiveRefused(f"the archive inside it is damaged or encrypted ({e})") from None


def sniff(data: bytes) -> str | None:
    """The type name the content shows, or None when it is none of TYPES (ArchiveRefused for
    a zip unsafe to open)."""
    if data.startswith(b"%PDF-"):
        return "pdf"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith(b"PK\x03\x04"):
        return _office(data)
    return None


def check(filename: str, data: bytes, accepted: list[str] | tuple[str, ...],
          limit: int = MAX_BYTES) -> FileType:
    """The file's type if its content is one of `accepted`; else BadValue naming the file."""
    if not data:
        raise BadValue(f"{filename}: the file is empty")
    if len(data) > limit:
        raise BadValue(f"{filename}: {len(data):,} bytes, more than the {limit // 2**20} MB "
                       "a file may have")
    try:
        found = sniff(data)
    except ArchiveRefused as e:
        raise BadValue(f"{filename}: {e}; it was not stored") from None
    if found not in accepted:
        shown = f"its content is {found.upper()}" if found else \
            "its content is not a PDF, Word, Excel or image file"
        raise BadValue(f"{filename}: {shown}; accepted here: "
                       f"{', '.join(a.upper() for a in accepted)} (told by content, not by name)")
    return TYPES[found]


def safe_name(filename: str) -> str:
    """The file's own name without folders or control characters, at most 200 characters."""
    name = filename.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(ch for ch in name if ch.isprintable() and ch not in '"<>|:*?')
    return name.strip()[:200] or "file"
