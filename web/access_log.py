"""The portal's access log and request metrics: one ASGI middleware around everything.

Each request is logged once it is answered (logger `starfund.access`, info): method, route
(the pattern, `/app/{app}`), path, status, duration in ms, and the account signed in (the
page wrapper notes it, `web.http`). Never the query string, headers, cookies or form: they
can carry tokens and personal values. The same numbers feed `/metrics` (`web.metrics`).
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("starfund.access")


def route_of(scope: Scope) -> str:
    """The route's pattern (bounded: one label per route), or "unmatched"."""
    route = scope.get("route")
    return getattr(route, "path", None) or "unmatched"


class Observed:
    """Times every HTTP request, logs it and hands it to `observe(method, route, status, s)`."""

    def __init__(self, app: ASGIApp, observe: Callable[[str, str, int, float], None]) -> None:
        self.app, self.observe = app, observe

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            took = time.perf_counter() - started
            route = route_of(scope)
            self.observe(scope["method"], route, status, took)
            account = (scope.get("state") or {}).get("account")
            log.info("%s %s %s %.1fms route=%s account=%s", scope["method"], scope["path"],
                     status, took * 1000, route, account or "-",
                     extra={"fields": {"method": scope["method"], "route": route,
                                       "path": scope["path"], "status": status,
                                       "ms": round(took * 1000, 2), "account": account}})
