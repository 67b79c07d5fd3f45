"""Rendering messages from Jinja2 templates: sandboxed, and strict about missing values.

A template is one file per message kind and language,
`templates/<lang>/<kind>.txt`, with a `subject` block and a `body` block
(and optionally an `html` block). Administrators override any template by
putting a file of the same name in the folder named by STARFUND_TEMPLATES.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from jinja2 import ChoiceLoader, FileSystemLoader, StrictUndefined
from jinja2.sandbox import SandboxedEnvironment

BUILTIN = Path(__file__).parent / "templates"
LANGUAGES = ("zh", "en")


@dataclass
class Rendered:
    subject: str
    body: str
    html: str | None = None


def yuan(value: Any) -> str:
    """Amounts as people write them: 50,000 元."""
    return "—" if value is None else f"{int(value):,}"


@lru_cache(maxsize=8)
def environment(override: str | None = None) -> SandboxedEnvironment:
    loaders = [FileSystemLoader(override)] if override else []
    loaders.append(FileSystemLoader(str(BUILTIN)))
    env = SandboxedEnvironment(loader=ChoiceLoader(loaders), undefined=StrictUndefined,
                               autoescape=False, keep_trailing_newline=False)
    env.filters["yuan"] = yuan
    return env


def template_name(kind: str, language: str) -> str:
    return f"{language if language in LANGUAGES else 'zh'}/{kind}.txt"


def render(kind: str, language: str, context: dict[str, Any]) -> Rendered:
    """Render one message; raises jinja2 errors for unknown kinds or missing values."""
    env = environment(os.environ.get("STARFUND_TEMPLATES"))
    template = env.get_template(template_name(kind, language))
    ctx = template.new_context(dict(context))
    subject = "".join(template.blocks["subject"](ctx)).strip()
    body = "".join(template.blocks["body"](ctx)).strip() + "\n"
    html = "".join(template.blocks["html"](ctx)).strip() if "html" in template.blocks else None
    return Rendered(subject, body, html or None)
