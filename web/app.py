"""The portal's ASGI application: routes, security headers, a bounded body, static files."""
from __future__ import annotations

from pathlib import Path

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Receive, Scope, Send

from . import access_log, health, http, i18n, metrics
from .pages import (
    account,
    accounts,
    application,
    charts,
    expert,
    people,
    privacy,
    public,
    society,
    staff,
)

STATIC = Path(__file__).parent / "static"
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
       "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'")
HEADERS = [(b"content-security-policy", CSP.encode()),
           (b"x-content-type-options", b"nosniff"),
           (b"x-frame-options", b"DENY"),
           (b"referrer-policy", b"same-origin"),
           (b"cross-origin-opener-policy", b"same-origin")]
MAX_BODY = http.MAX_BODY


class Guard:
    """Security headers on every response, error pages included (no-store on pages); a body
    cap counted as the body arrives, whatever its transfer encoding; a failure answered by
    the error page (and raised on, to be logged)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        static = scope["path"].startswith("/static/")
        started = False

        async def send_with_headers(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = list(message.get("headers", []))
                given = {k.lower() for k, _ in headers}
                headers += [(k, v) for k, v in HEADERS if k not in given]
                if not static:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > MAX_BODY:
            await http.too_large(Request(scope), MAX_BODY)(scope, receive, send_with_headers)
            return
        try:
            await self.app(scope, http.bounded(receive, MAX_BODY), send_with_headers)
        except ClientDisconnect:
            return   # the client went away mid-request: nobody to answer
        except http.BodyTooLarge:
            if started:
                raise
            await http.too_large(Request(scope), MAX_BODY)(scope, receive, send_with_headers)
        except Exception:
            if not started:
                await _failed(scope, receive, send_with_headers)
            raise


async def _failed(scope: Scope, receive: Receive, send: Send) -> None:
    """The 500 page, in the reader's language, with the headers."""
    request = Request(scope)
    try:
        response = http.error_page(request, 500, i18n.tr_for(i18n.of(request))(
            "服务器内部出错，操作未完成；请稍后重试，或联系管理员",
            "the server failed; nothing was done: try again later, or tell the administrator"))
    except Exception:  # the page itself failed: plain text, still with the headers
        response = PlainTextResponse("500", 500)
    await response(scope, receive, send)


def create_app(database, operations: dict | None = None) -> Starlette:
    """The portal on an open database (a SQLAlchemy Engine); `operations`: the health limits
    and who may read /metrics (`operations_from`; default: from the environment)."""
    routes = [Route("/healthz", health.healthz), Route("/metrics", metrics.metrics_endpoint),
              *account.routes, *people.routes, *privacy.routes, *public.routes, *application.routes, *society.routes,
              *expert.routes, *accounts.routes, *staff.routes, *charts.routes,  # charts last: its {kind}.{fmt}
              Mount("/static", StaticFiles(directory=STATIC), name="static")]
    observed = metrics.Metrics(database)
    app = Starlette(routes=routes, middleware=[
        Middleware(access_log.Observed, observe=observed.observe), Middleware(Guard)],
        exception_handlers=http.HANDLERS)
    app.state.db = database
    app.state.metrics = observed
    app.state.operations = operations if operations is not None else operations_from()
    return app


def operations_from(loaded=None) -> dict:
    """The health limits and the /metrics settings, from the run's settings (else the
    environment's)."""
    from lifecycle.core import health as checks
    from lifecycle.core import settings

    get = (loaded or settings.load()).get
    return {"limits": checks.Limits(get("health_scheduler_age"), get("health_failed"),
                                    get("health_held_hours")),
            "metrics_token": get("metrics_token"), "metrics_listen": get("metrics_listen")}
