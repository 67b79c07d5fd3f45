"""`/metrics` in Prometheus' text format (prometheus-client).

Requests are counted and timed per method, route pattern and status (`web.access_log` feeds
them). At each scrape a few indexed reads add the programme's state: the outbox per status,
deadlines overdue and due within a day, the last move an advance wrote, the scheduler's last
heartbeat and pass. With several uvicorn workers `serve` sets PROMETHEUS_MULTIPROC_DIR and the
counts of every worker are added up (prometheus-client's multiprocess mode).

Who may read /metrics: on the portal's address, only a request bearing the token
STARFUND_METRICS_TOKEN (`Authorization: Bearer ...`); or, with `serve --metrics-listen
HOST:PORT`, anyone reaching that separate address (and the portal's own /metrics is then
off).
"""
from __future__ import annotations

import hmac
import os
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram
from prometheus_client import generate_latest as exposition
from prometheus_client.core import GaugeMetricFamily, Metric
from sqlalchemy import Engine, and_, func, select
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from lifecycle.core import clock, db, health
from lifecycle.core.models import AuditEvent, Deadline, Notification

MULTIPROCESS = "PROMETHEUS_MULTIPROC_DIR"
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
STATUSES = ("pending", "sending", "held", "failed")
"""The outbox statuses counted (sent messages are history, not work)."""


def _epoch(t: datetime | None) -> float:
    return t.replace(tzinfo=clock.zone()).timestamp() if t is not None else float("nan")


class State:
    """The programme's state at scrape time, read from the database (a prometheus collector)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily("starfund_database_up", "1 if the database answered the scrape")
        try:
            gauges = self._read()
        except SQLAlchemyError:
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from gauges

    def _read(self) -> list[Metric]:
        now = clock.now()
        out: list[Metric] = []
        with db.reading(self.engine) as conn:
            _, _, same = db.schema_state(conn)
            schema = GaugeMetricFamily("starfund_schema_at_head",
                                       "1 if the schema is this release's")
            schema.add_metric([], 1 if same else 0)
            out.append(schema)
            if not same:
                return out
            counts = dict(conn.execute(select(Notification.status, func.count())
                                       .where(Notification.status.in_(STATUSES))
                                       .group_by(Notification.status)).all())
            outbox = GaugeMetricFamily(
                "starfund_outbox_messages", "Messages in the outbox by status (queued to a "
                "person: the channel is chosen at delivery)", labels=["status"])
            for status in STATUSES:
                outbox.add_metric([status], counts.get(status, 0))
            out.append(outbox)
            pending = Deadline.fired_at.is_(None)
            overdue = conn.execute(select(func.count()).where(
                and_(pending, Deadline.due_at <= now))).scalar()
            soon = conn.execute(select(func.count()).where(
                and_(pending, Deadline.due_at > now,
                     Deadline.due_at <= now + timedelta(days=1)))).scalar()
            due = GaugeMetricFamily("starfund_deadlines", "Deadlines not fired yet: overdue "
                                    "(due, not fired) and due within a day", labels=["standing"])
            due.add_metric(["overdue"], overdue or 0)
            due.add_metric(["due_1d"], soon or 0)
            out.append(due)
            moved = conn.execute(
                select(AuditEvent.written_at)
                .where(AuditEvent.application_id.is_not(None), AuditEvent.to_state.is_not(None))
                .order_by(AuditEvent.seq.desc()).limit(1)).scalar()
            beat, passed = health.last_run(conn)
        for name, text, t in (
                ("starfund_last_advance_timestamp_seconds",
                 "When the last move of an application was written (an advance)", moved),
                ("starfund_scheduler_heartbeat_timestamp_seconds",
                 "The latest heartbeat of a running scheduler", beat),
                ("starfund_scheduler_last_run_timestamp_seconds",
                 "When a scheduler last ended a pass over the due deadlines", passed)):
            g = GaugeMetricFamily(name, text)
            g.add_metric([], _epoch(t))
            out.append(g)
        return out


class Metrics:
    """The portal's metrics: request counts and latency per route, and the programme's state."""

    def __init__(self, engine: Engine) -> None:
        self.multiprocess = bool(os.environ.get(MULTIPROCESS))
        own = None if self.multiprocess else CollectorRegistry()
        self.requests = Counter("starfund_http_requests", "HTTP requests answered",
                                ["method", "route", "status"], registry=own)
        self.latency = Histogram("starfund_http_request_duration_seconds",
                                 "Time to answer an HTTP request", ["method", "route"],
                                 buckets=BUCKETS, registry=own)
        self.state = State(engine)
        if own is not None:
            own.register(self.state)  # type: ignore[arg-type]
        self.own = own

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def registry(self) -> CollectorRegistry:
        """What a scrape reads (every worker's counts, in multiprocess mode)."""
        if self.own is not None:
            return self.own
        from prometheus_client import multiprocess

        merged = CollectorRegistry()
        multiprocess.MultiProcessCollector(merged)
        merged.register(self.state)  # type: ignore[arg-type]
        return merged

    def text(self) -> bytes:
        return exposition(self.registry())


def scrape_allowed(request: Request, token: str | None, separate: bool) -> bool:
    """The portal's own /metrics: off when a separate address serves it, else only with the
    token (compared in constant time)."""
    if separate or not token:
        return False
    given = request.headers.get("authorization", "")
    return given.startswith("Bearer ") and hmac.compare_digest(given[7:].encode(),
                                                               token.encode())


async def metrics_endpoint(request: Request) -> Response:
    conf: dict[str, Any] = request.app.state.operations
    if not scrape_allowed(request, conf.get("metrics_token"), bool(conf.get("metrics_listen"))):
        return PlainTextResponse("not found", 404)
    body = await run_in_threadpool(request.app.state.metrics.text)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
