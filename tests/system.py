"""The system packages some tests need beyond pip (Debian's chromium, fonts-noto-cjk, pango for
WeasyPrint, poppler-utils, openssl): on a machine without one those tests skip with the
reason; in CI (`CI` set: `.ci/run` installs them) a missing one fails instead of hiding a
test."""
from __future__ import annotations

import ctypes.util
import os
import shutil

import pytest

CHROMIUM = "/usr/bin/chromium"
NEEDS = {
    "chromium": (lambda: os.path.exists(CHROMIUM), "apt-get install chromium fonts-noto-cjk"),
    "pango": (lambda: bool(ctypes.util.find_library("pango-1.0")),
              "apt-get install libpango-1.0-0 libpangoft2-1.0-0 (WeasyPrint's PDFs)"),
    "poppler": (lambda: bool(shutil.which("pdftoppm")), "apt-get install poppler-utils"),
    "openssl": (lambda: bool(shutil.which("openssl")),
                "apt-get install openssl (checks starfund's SM2 signatures independently)"),
    "fonts": (lambda: _cjk_fonts(), "apt-get install fonts-noto-cjk (the charts' Chinese text)"),
}


def _cjk_fonts() -> bool:
    """Whether a Noto CJK font file is installed (as matplotlib finds the system's fonts)."""
    from matplotlib import font_manager

    return any("NotoSansCJK" in os.path.basename(p) for p in font_manager.findSystemFonts())


def missing(*what: str) -> str | None:
    """Why a test cannot run here (the packages missing and how to install them), or None."""
    lacking = [f"{w} ({NEEDS[w][1]})" for w in what if not NEEDS[w][0]()]
    if not lacking or os.environ.get("CI"):
        return None
    return "not installed: " + "; ".join(lacking) + " (.ci/run installs them)"


def need(*what: str) -> None:
    """Skip the calling test, with the reason, when a system package it needs is missing."""
    why = missing(*what)
    if why:
        pytest.skip(why)
