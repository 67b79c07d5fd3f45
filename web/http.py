"""How a page runs: one wrapper around every route.

`page` does, in order: read the form (bounded in size), check the CSRF token of a
POST, find the account from the session cookie (or send a stranger to the login
page), send a society contact or expert who has not agreed to the processing rules in
force to read them first (`consent_missing`), run the handler in a worker thread inside one database transaction, and
turn what it returns into a response. A user's mistake becomes a message on the
page it came from (the transaction rolled back, so nothing was written); a
refusal is 403 and an unknown or foreign object 404, with the same page for
"not there" and "not yours" so ids cannot be probed.
"""
from __future__ import annotations

import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import DataError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.types import Message, Receive

from lifecycle.acts import consents
from lifecycle.core import db as database
from lifecycle.core import uploads
from lifecycle.core.accounts import Actor, Refused
from lifecycle.core.errors import BadValue, NotFound, UserError

from . import i18n, processing_rules, session
from .render import render
from .session import FLASH
from .words import Words


@dataclass
class Ctx:
    """What a handler gets: the request, its form, the account, the open transaction."""

    request: Request
    conn: Any
    actor: Actor | None
    lang: str
    form: dict[str, str] = field(default_factory=dict)
    files: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    cookies: list[tuple[str, str, dict]] = field(default_factory=list)
    before: Any = None
    """What the page's `before` step found (see `page`)."""

    def tr(self, zh: str, en: str) -> str:
        return en if self.lang == "en" else zh

    @property
    def w(self) -> Words:
        """Labels and the engine's messages in the reader's language (`web.words`)."""
        return Words(self.lang)

    @property
    def params(self) -> dict[str, str]:
        return self.request.path_params

    def number(self, name: str, default: int = 0, lowest: int = 0) -> int:
        """A whole-number query parameter (an offset, a page): BadValue (a 400 page naming
        it) when it is not one, never Python's own error."""
        text = self.request.query_params.get(name, "").strip()
        if not text:
            return default
        if not text.isascii() or not text.isdigit() or len(text) > 9:
            raise BadValue(self.tr(f"参数 {name} 应为非负整数，收到 {text[:20]!r}",
                                   f"{name} must be a whole number, not {text[:20]!r}"))
        return max(lowest, int(text))


@dataclass
class Page:
    """A page to render: its template and what it shows."""

    template: str
    data: dict[str, Any] = field(default_factory=dict)
    status: int = 200


@dataclass
class Redirect:
    """Where to go after a POST, with a message for the next page."""

    to: str
    message: str = ""


def _flash_cookie(response: Response, message: str, error: bool = False) -> None:
    if message:
        value = urllib.parse.quote(("!" if error else "") + message[:600])
        response.set_cookie(FLASH, value, max_age=60, httponly=True, samesite="lax", path="/")


MAX_BODY = uploads.MAX_BYTES + 2**20
"""The largest request body any page reads (a file and its form), whatever its transfer
encoding: counted as it arrives (`bounded`), never trusted from Content-Length."""
MAX_PUBLIC_BODY = 64 * 2**10
"""The largest body of a form sent without a session (login, forgotten password, a link's
password): none carries a file."""


class BodyTooLarge(Exception):
    """The request's body went past its limit while it was being read (answered 413)."""


def bounded(receive: Receive, limit: int) -> Receive:
    """`receive` that raises BodyTooLarge once more than `limit` bytes of body arrived: a
    chunked request has no Content-Length to refuse it by, and Starlette spools a form's
    files to disk as they come, so the count is kept on every piece."""
    seen = 0

    async def counted() -> Message:
        nonlocal seen
        message = await receive()
        if message["type"] == "http.request":
            seen += len(message.get("body", b""))
            if seen > limit:
                raise BodyTooLarge(limit)
        return message
    return counted


async def _read_form(request: Request, limit: int = MAX_BODY
                     ) -> tuple[dict[str, str], dict[str, tuple[str, bytes]]]:
    request = Request(request.scope, bounded(request.receive, limit))
    form = await request.form(max_files=10, max_fields=200, max_part_size=uploads.MAX_BYTES)
    fields: dict[str, str] = {}
    files: dict[str, tuple[str, bytes]] = {}
    for key, value in form.multi_items():
        if isinstance(value, UploadFile):
            data = await value.read(uploads.MAX_BYTES + 1)
            if value.filename:
                files[key] = (value.filename, data)
        else:
            fields.setdefault(key, value)
    await form.close()
    return fields, files


def _back(request: Request, ctx_form: dict[str, str]) -> str:
    """Where a failed POST returns: the form's `back`, else the page it was posted from."""
    back = ctx_form.get("back") or request.headers.get("referer") or "/"
    parsed = urllib.parse.urlsplit(back)
    if parsed.netloc and parsed.netloc != request.url.netloc:
        return "/"  # never redirect off the site
    return urllib.parse.urlunsplit(("", "", parsed.path or "/", parsed.query, ""))


def page(handler: Callable[[Ctx], Any] | None = None, *, login: bool = True,
         csrf: bool = True, reads_only: bool | None = None, consent: bool = True,
         before: Callable[[Any, Request, dict[str, str]], Any] | None = None) -> Callable:
    """Wrap a handler (see the module docstring); `login=False` for public pages;
    `consent=False` for the few a signed-in person may reach before agreeing to the rules
    (the rules themselves, logging in and out, the language switch).

    A GET runs in a transaction that only reads (`db.reading`: on SQLite it never waits for
    the write lock); `reads_only=False` for a GET that writes (a dry run). `before(database,
    request, form)` runs first, outside the handler's transaction (slow work that must not
    hold SQLite's write lock: a login's Argon2); its result is `ctx.before`."""
    def wrap(fn: Callable[[Ctx], Any]) -> Callable:
        async def endpoint(request: Request) -> Response:
            fields: dict[str, str] = {}
            files: dict[str, tuple[str, bytes]] = {}
            if request.method == "POST":
                try:
                    fields, files = await _read_form(
                        request, MAX_BODY if login else MAX_PUBLIC_BODY)
                except BodyTooLarge as e:
                    return too_large(request, e.args[0])
                except HTTPException as e:  # the form's own limits (files, fields, parts)
                    return _error(request, 400, _tr(request)(
                        f"表单无法读取：{e.detail}", f"the form could not be read: {e.detail}"))
                if csrf and not session.csrf_ok(request, fields.get("csrf")):
                    return _error(request, 403, _tr(request)(
                        "表单已过期或并非从本站提交（CSRF 校验未通过）：请返回、刷新页面后重试",
                        "the form was out of date or not sent from this site (CSRF check "
                        "failed); go back, reload and try again"))
            read = request.method in ("GET", "HEAD") if reads_only is None else reads_only
            return await run_in_threadpool(_run, fn, request, fields, files, login, read,
                                           before, consent)
        endpoint.__name__ = fn.__name__
        endpoint.__doc__ = fn.__doc__
        return endpoint
    return wrap(handler) if handler is not None else wrap


def _run(fn: Callable[[Ctx], Any], request: Request, fields: dict[str, str],
         files: dict[str, tuple[str, bytes]], login: bool, read: bool,
         before: Callable | None, consent: bool) -> Response:
    db = request.app.state.db
    lang = i18n.of(request)
    tr = i18n.tr_for(lang)
    try:
        found = before(db, request, fields) if before is not None else None
        with (database.reading(db) if read else db.begin()) as conn:
            actor = session.actor_of(conn, request)
            request.state.account = actor.name if actor else None  # the access log's
            if actor is None and request.cookies.get(session.COOKIE):
                request.state.stale_session = True   # forms now carry the pre-login token
            if login and actor is None:
                if request.method == "POST":
                    return _error(request, 403, tr("请先登录", "log in first"))
                nxt = urllib.parse.quote(request.url.path)
                return _drop_stale(request, RedirectResponse(f"/login?next={nxt}", status_code=303))
            if consent and consent_missing(conn, actor):
                return _to_rules(request, fields, lang)
            ctx = Ctx(request, conn, actor, lang, fields, files, before=found)
            result = fn(ctx)
            response = _respond(request, ctx, result)
    except DataError:  # a value the database cannot hold (a NUL byte in a query parameter)
        return _error(request, 400, "bad request: a value the database cannot hold")
    except NotFound:  # not there, or not the caller's: the same 404 either way
        return _error(request, 404, tr("未找到（或无权查看）", "not found (or not yours to see)"))
    except Refused as e:
        return _error(request, 403, Words(lang).say(e))
    except UserError as e:
        if request.method == "POST":
            response = RedirectResponse(_back(request, fields), status_code=303)
            _flash_cookie(response, Words(lang).say(e), error=True)
            return _drop_stale(request, response)
        return _error(request, 400, Words(lang).say(e))
    return _drop_stale(request, response)


def _drop_stale(request: Request, response: Response) -> Response:
    """A session cookie the server does not know (ended, expired, another database's) is
    deleted, so it no longer stands in for the pre-login cookie of the login form."""
    if getattr(request.state, "stale_session", False):
        response.delete_cookie(session.COOKIE, path="/")
    return response


def consent_missing(conn: Any, actor: Actor | None) -> bool:
    """Whether `actor` must agree to the processing rules in force before going on: a society
    contact or expert (`processing_rules.needs_consent`) with no consent to this version."""
    return processing_rules.needs_consent(actor) and \
        consents.given(conn, actor.name, processing_rules.VERSION) is None


def rules_first(target: str) -> str:
    """The rules page, with where to go once they are agreed to."""
    return "/privacy?next=" + urllib.parse.quote(target, safe="/")


def _to_rules(request: Request, fields: dict[str, str], lang: str) -> Response:
    """The rules before anything else: a page is asked for again once they are agreed to; a
    form is not carried out (nothing is written) and its page is asked for again."""
    if request.method in ("GET", "HEAD"):
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        return RedirectResponse(rules_first(target), status_code=303)
    response = RedirectResponse(rules_first(_back(request, fields)), status_code=303)
    _flash_cookie(response, i18n.tr_for(lang)(
        "个人信息处理规则已更新或尚未同意：请先阅读并同意，再重新提交（本次未提交）",
        "The processing rules are new to you: read and agree to them, then send the form "
        "again (nothing was sent)"), error=True)
    return response


def _respond(request: Request, ctx: Ctx, result: Any) -> Response:
    if isinstance(result, Response):
        response = result
    elif isinstance(result, Redirect):
        response = RedirectResponse(result.to, status_code=303)
        _flash_cookie(response, result.message)
    else:
        response = render(request, result.template, result.data, actor=ctx.actor,
                          status=result.status)
    for name, value, options in ctx.cookies:
        response.set_cookie(name, value, **options)
    if request.cookies.get(FLASH) and not isinstance(result, Redirect):
        response.delete_cookie(FLASH, path="/")
    return response


def _tr(request: Request) -> Callable[[str, str], str]:
    return i18n.tr_for(i18n.of(request))


def _error(request: Request, status: int, message: str) -> HTMLResponse:
    return _drop_stale(request, render(request, "error.html",
                                       {"status": status, "message": message},
                                       actor=None, status=status))


def error_page(request: Request, status: int, message: str = "") -> HTMLResponse:
    """The error page of `status` in the reader's language (for the doors outside `page`:
    an unknown address, a method not allowed, a body too large, a failure)."""
    return render(request, "error.html", {"status": status, "message": message},
                  actor=None, status=status)


def too_large(request: Request, limit: int) -> HTMLResponse:
    size = f"{limit // 2**20} MB" if limit >= 2**20 else f"{limit // 2**10} KB"
    return error_page(request, 413, _tr(request)(
        f"提交的内容超过 {size} 的上限，未被接收", f"the request is larger than {size}: "
        "it was not taken"))


def cookie_options(request: Request, max_age: int | None = None) -> dict[str, Any]:
    """HttpOnly, SameSite=Lax, and Secure when the site is served over HTTPS."""
    return {"httponly": True, "samesite": "lax", "secure": request.url.scheme == "https",
            "path": "/", "max_age": max_age}



async def _http_exception(request: Request, exc: Exception) -> Response:
    """Starlette's own refusals (no such address, a method not allowed) as the error page."""
    status = getattr(exc, "status_code", 500)
    tr = _tr(request)
    message = {404: tr("未找到该页面", "no such page"),
               405: tr("该页面不接受这种请求", "this page does not take that kind of request")
               }.get(status, tr("请求无法处理", "the request could not be handled"))
    response = error_page(request, status, message)
    if status == 405 and getattr(exc, "headers", None):
        response.headers.update(exc.headers)
    return response


HANDLERS = {HTTPException: _http_exception}
"""The app's exception handlers (`web.app.create_app`)."""
