"""`starfund serve`: the portal on uvicorn, on the same database as the command line.

Run by a member of staff, or by the service user (deploy/starfund-portal.service) with no
account: the OS user that owns the database's chain key file (states.roles SERVICE). Logs go to
standard error, as text or JSON (`--log-format`), the access log among them (`web.access_log`).
"""
from __future__ import annotations

import os
import shutil
import tempfile

import click

from lifecycle.console import Env, common, echo, setting_option

ENV_DB = "STARFUND_DB"


def app_factory():
    """The ASGI app for a uvicorn worker: the database from STARFUND_DB (set by `serve`), the
    frozen time of a simulation from STARFUND_NOW, as the command line reads them."""
    from lifecycle.core import clock, db

    from .app import create_app

    if os.environ.get("STARFUND_NOW"):
        clock.set_now(os.environ["STARFUND_NOW"])
    if os.environ.get("STARFUND_TZ"):
        clock.use_zone(os.environ["STARFUND_TZ"])
    engine = db.make_engine(os.environ.get(ENV_DB) or None)
    db.require_schema(engine)
    return create_app(engine)


def _metrics_server(listen: str, url: str) -> None:
    """/metrics alone on its own address, in this (the supervising) process: every worker's
    counts (multiprocess mode) and the programme's state."""
    from prometheus_client import start_http_server

    from lifecycle.core import db

    from .metrics import Metrics

    host, _, port = listen.rpartition(":")
    metrics = Metrics(db.make_engine(url or None))
    start_http_server(int(port), host.strip("[]") or "127.0.0.1", registry=metrics.registry())


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (0.0.0.0: every interface; put HTTPS in front).")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Worker processes (PostgreSQL: several; SQLite: one is plenty).")
@setting_option("--log-format", setting="log_format", type=click.Choice(["text", "json"]),
                default=None, help="Logs (the access log among them) as text lines or JSON "
                                   "lines, on standard error [env STARFUND_LOG_FORMAT; default "
                                   "text].")
@setting_option("--trusted-proxies", setting="trusted_proxies", metavar="ADDRESSES",
                default=None, help="Reverse proxies whose X-Forwarded-For/-Proto are believed "
                                   "(comma-separated addresses, or *) [env "
                                   "STARFUND_TRUSTED_PROXIES; default 127.0.0.1].")
@setting_option("--metrics-listen", setting="metrics_listen", metavar="HOST:PORT",
                default=None, help="Serve /metrics on this separate address only (default: on "
                                   "the portal, to a scraper bearing STARFUND_METRICS_TOKEN) "
                                   "[env STARFUND_METRICS_LISTEN].")
@click.option("--demo", "demo_", is_flag=True,
              help="First run the demo on a new simulation database (--db or demo.db), "
                   "with a password for each of its accounts, then serve it.")
@common
def serve(env: Env, host: str, port: int, workers: int, log_format: str,
          trusted_proxies: str, metrics_listen: str | None, demo_: bool) -> None:
    """Serve the portal (societies, experts, staff, the public 公示) on uvicorn.

    Also answers GET /healthz (JSON; 503 when a part is wrong) and GET /metrics
    (Prometheus; see --metrics-listen). SIGTERM or Ctrl-C stops it: requests in
    hand are answered first. Run it as a member of staff, or as the service user
    that owns the chain key (deploy/, docs/operations.md).

    \b
    Example:  starfund serve --port 8000
              starfund --db postgresql://u@host/starfund serve --host 0.0.0.0 --workers 2
              starfund serve --log-format json --metrics-listen 127.0.0.1:9108
              starfund serve --demo
    """
    import uvicorn

    from lifecycle.core import clock, logs
    from lifecycle.engine import permissions

    env.service = True
    if demo_:
        from lifecycle.demo.run import seed_portal

        url, logins = seed_portal(env)   # the demo's own database: served, not --db's default
        echo(f"demo database: {url}")
        for name, role, password in logins:
            echo(f"  login {name:<14} {role:<12} password {password}")
    else:
        permissions.check(env.engine, env.actor, "portal.serve")
        url = env.db_arg or os.environ.get(ENV_DB) or ""
    if url:
        os.environ[ENV_DB] = url
    if clock.simulated():
        os.environ["STARFUND_NOW"] = clock.now().isoformat()
    counts = None
    if workers > 1 or metrics_listen:  # every worker's counts in files, added up at a scrape
        counts = tempfile.mkdtemp(prefix="starfund-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = counts
    try:
        logs.configure(log_format)
        if metrics_listen:
            _metrics_server(metrics_listen, url)
            echo(f"starfund metrics: http://{metrics_listen}/metrics")
        echo(f"starfund portal: http://{host}:{port}/  (Ctrl-C stops it)")
        uvicorn.run("web.serve:app_factory", factory=True, host=host, port=port,
                    workers=workers, log_config=logs.uvicorn_config(log_format),
                    access_log=False, proxy_headers=True, forwarded_allow_ips=trusted_proxies,
                    timeout_graceful_shutdown=10)
    finally:
        if counts:
            shutil.rmtree(counts, ignore_errors=True)
