"""`GET /healthz`: is this starfund well (`lifecycle.core.health`), as JSON; 503 when a part is
wrong. No session needed, nothing secret said: parts, their state and counts."""
from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from lifecycle.core import health


async def healthz(request: Request) -> Response:
    limits: health.Limits = request.app.state.operations["limits"]
    found = await run_in_threadpool(health.check, request.app.state.db, limits)
    return JSONResponse(found.as_dict(), status_code=200 if found.ok else 503)
