"""What an uploaded file is, told by its content, never by its name.

A declaration's files (申报书, budget sheet), progress reports and objection
evidence come from outside; before one is stored its first bytes (and, for the
Office formats, the parts inside the zip) must say it is one of the types the
call accepts. A renamed executable or an HTML page called `.pdf` is refused.
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


def _office(data: bytes) -> str | None:
    """docx or xlsx by the parts inside the zip (an Office file is a zip of XML parts)."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            names = set(z.namelist())
    except (zipfile.BadZipFile, ValueError):
        return None
    if "[Content_Types].xml" not in names:
        return None
    if "word/document.xml" in names:
        return "docx"
    if "xl/workbook.xml" in names:
        return "xlsx"
    return None


def sniff(data: bytes) -> str | None:
    """The type name the content shows, or None when it is none of TYPES."""
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
    found = sniff(data)
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
