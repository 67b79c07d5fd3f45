"""The portal's processing rules (个人信息处理规则): the version in force and its text.

The text is data: one Markdown document per version and language,
`web/templates/privacy/<version>.<lang>.md`, and VERSION names the one in force. To change
the rules, add the new version's two files and set VERSION to it: every society contact and
expert then meets the new rules and agrees again before any other page (`web.http.page`);
the old files stay, as the text each earlier agreement was given to.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from markdown_it import MarkdownIt
from markupsafe import Markup

from lifecycle.core.accounts import Actor
from states.roles import EXPERT, SOCIETY

from . import i18n

VERSION = "2026-12-01"
FOLDER = Path(__file__).parent / "templates" / "privacy"
ASKED = (SOCIETY, EXPERT)
"""Who agrees: the outside people who use the portal. Staff (the 科协's employees) do not:
their data are processed for their employment and the office's statutory duties (PIPL art.
13 (2), (3)), not on consent; they read the same rules from every page's footer."""


def needs_consent(actor: Actor | None) -> bool:
    """Whether the portal asks `actor` to agree to the rules (a society contact or expert)."""
    return actor is not None and actor.holds(ASKED)


def path(lang: str, version: str | None = None) -> Path:
    """The document of `version` (default: the one in force) in `lang`."""
    lang = lang if lang in i18n.LANGS else "zh"
    return FOLDER / f"{version or VERSION}.{lang}.md"


@lru_cache(maxsize=16)
def _html(file: Path) -> Markup:
    md = MarkdownIt("commonmark", {"html": False, "typographer": False}).enable("table")
    return Markup(md.render(file.read_text(encoding="utf-8")))  # raw HTML in the text is off


def html(lang: str, version: str | None = None) -> Markup:
    """The rules as HTML (Markdown rendered with raw HTML disabled, so the page stays safe)."""
    return _html(path(lang, version))
