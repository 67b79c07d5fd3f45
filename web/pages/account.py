"""Logging in and out, the language switch, and a copy of one's own data."""
from __future__ import annotations

import io
import urllib.parse

from starlette.responses import Response
from starlette.routing import Route

from lifecycle.acts import persons
from lifecycle.core import accounts
from lifecycle.core.accounts import Refused

from .. import i18n, session
from ..http import Ctx, Page, Redirect, consent_missing, cookie_options, page, rules_first
from . import people
from .landing import home_of


def next_path(value: str | None) -> str:
    """Only a path on this site (never another host)."""
    value = value or ""
    parsed = urllib.parse.urlsplit(value)
    if parsed.scheme or parsed.netloc or not value.startswith("/") or value.startswith("//"):
        return ""
    return value


@page(login=False)
def login_form(ctx: Ctx):
    """The login page; it sets the pre-login cookie its CSRF token is made from."""
    if ctx.actor is not None:
        return Redirect(home_of(ctx.actor))
    pre = ctx.request.cookies.get(session.PRE_COOKIE)
    if not pre:
        pre = session.new_pre_token()
        ctx.cookies.append((session.PRE_COOKIE, pre, cookie_options(ctx.request, 3600)))
    return Page("login.html", {"next": next_path(ctx.request.query_params.get("next")),
                               "csrf": session.csrf_for(pre), "error": ""})


@page(login=False, consent=False, before=session.verify)
def login(ctx: Ctx):
    name = ctx.form.get("name", "").strip()[:100]
    try:
        actor, token = session.log_in(ctx.conn, name, ctx.before, session.address_of(ctx.request))
    except Refused as e:
        return Page("login.html", {"next": next_path(ctx.form.get("next")), "error": ctx.w.say(e),
                                   "name": name}, status=401)
    second = people.second_factor_due(ctx, actor)
    if second is not None:                  # no session until the second factor is given
        accounts.end_token(ctx.conn, token)
        return Redirect(second)
    ctx.cookies.append((session.COOKIE, token, cookie_options(
        ctx.request, int(session.lifetime(actor).total_seconds()))))
    target = next_path(ctx.form.get("next")) or home_of(actor)
    if consent_missing(ctx.conn, actor):  # the rules first (the session is the new account's)
        target = rules_first(target)
    return Redirect(target, ctx.tr(f"欢迎，{actor.name}", f"Welcome, {actor.name}"))


@page(consent=False)
def logout(ctx: Ctx):
    token = ctx.request.cookies.get(session.COOKIE)
    if token:
        accounts.end_token(ctx.conn, token)
    ctx.cookies.append((session.COOKIE, "", {**cookie_options(ctx.request, 0)}))
    return Redirect("/", ctx.tr("已退出", "Logged out"))


@page(consent=False)   # a copy of one's data is a right, consent or not
def my_data(ctx: Ctx):
    """A copy of everything held about the signed-in person (PIPL), as `person export` writes
    it; audited. A POST (with its CSRF token): a download that writes an audit event."""
    buffer = io.BytesIO()
    persons.export(ctx.conn, ctx.actor, f"account:{ctx.actor.name}", buffer, ctx.lang)
    return Response(buffer.getvalue(), media_type="application/zip", headers={
        "content-disposition": "attachment; filename*=UTF-8''"
                               + urllib.parse.quote(f"starfund-{ctx.actor.name}.zip"),
        "x-content-type-options": "nosniff", "cache-control": "no-store"})


@page(login=False, csrf=False, consent=False)
def language(ctx: Ctx):
    """Switch the language (a preference cookie; nothing in the database changes)."""
    lang = ctx.params["lang"]
    if lang not in i18n.LANGS:
        return Redirect("/")
    ctx.cookies.append((i18n.COOKIE, lang, cookie_options(ctx.request, 365 * 86400)))
    return Redirect(next_path(ctx.request.query_params.get("next")) or "/")


routes = [
    Route("/login", login_form, methods=["GET"]),
    Route("/login", login, methods=["POST"]),
    Route("/logout", logout, methods=["POST"]),
    Route("/lang/{lang}", language, methods=["GET"]),
    Route("/me/data.zip", my_data, methods=["POST"]),
]
