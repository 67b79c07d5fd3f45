"""Chinese by default, English by a switch: the language of a request.

Templates write both texts side by side (`tr("申报", "Declare")`), so a page
never shows a key instead of words and the two stay together when edited. The
engine's labels ("草稿 draft") carry both already; `label` picks one half.
"""
from __future__ import annotations

LANGS = ("zh", "en")
COOKIE = "starfund_lang"


def of(request) -> str:
    lang = request.cookies.get(COOKIE, "zh")
    return lang if lang in LANGS else "zh"


def tr_for(lang: str):
    def tr(zh: str, en: str) -> str:
        return en if lang == "en" else zh
    return tr


def label_for(lang: str):
    """A bilingual label "草稿 draft" as one language: the part before the first space is zh."""
    def label(text: str | None) -> str:
        if not text:
            return ""
        zh, _, en = str(text).partition(" ")
        if not en or zh.isascii():
            return str(text)
        return en if lang == "en" else zh
    return label
