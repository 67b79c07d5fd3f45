"""Jinja2 pages: one environment, autoescaped, with the language helpers in every page."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.responses import HTMLResponse

from lifecycle.core import clock
from states import roles

from . import i18n, session
from .words import Words

TEMPLATES = Path(__file__).parent / "templates"
_env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]),
                   trim_blocks=True, lstrip_blocks=True)


def _money(value: Any) -> str:
    return "" if value is None else f"{int(value):,}"


def _when(value: Any) -> str:
    return "" if value is None else f"{value:%Y-%m-%d %H:%M}"


_env.policies["json.dumps_kwargs"] = {"sort_keys": True, "ensure_ascii": False}
"""`tojson` (the trail's details) shows Chinese as written, not as \\u escapes; it still
escapes <, >, & and ' for HTML."""
_env.filters["money"] = _money
_env.filters["when"] = _when


_WHO = {act.name: act.who for act in roles.ACTS}


def _may(actor: Any):
    """Whether the page's reader holds a role that may do an act (which links to show)."""
    return lambda act: actor is not None and actor.holds(_WHO.get(act, ()))


def render(request, template: str, data: dict[str, Any], *, actor: Any,
           status: int = 200) -> HTMLResponse:
    lang = i18n.of(request)
    message, error = session.flash_of(request)
    csrf = data.pop("csrf", None) or session.csrf_of(request)
    html = _env.get_template(template).render(
        **data, csrf=csrf, request=request, actor=actor, lang=lang, tr=i18n.tr_for(lang),
        label=i18n.label_for(lang), w=Words(lang), may=_may(actor), now=clock.now(),
        flash=message, flash_error=error, path=request.url.path,
        here=request.url.path + (f"?{request.url.query}" if request.url.query else ""))
    return HTMLResponse(html, status_code=status)
