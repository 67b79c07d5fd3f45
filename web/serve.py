"""`starfund serve`: the portal on uvicorn, on the same database as the command line."""
from __future__ import annotations

import os

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


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (0.0.0.0: every interface; put HTTPS in front).")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="Worker processes (PostgreSQL: several; SQLite: one is plenty).")
@setting_option("--forwarded-allow-ips", setting="forwarded_allow_ips", metavar="IPS",
                help="The reverse proxies (comma-separated addresses or *) whose "
                     "X-Forwarded-For and X-Forwarded-Proto are believed: the client's address "
                     "(login throttling) and https (Secure cookies) come from them "
                     "[env STARFUND_FORWARDED_ALLOW_IPS; default 127.0.0.1].")
@click.option("--demo", "demo_", is_flag=True,
              help="First run the demo on a new simulation database (--db or demo.db), "
                   "with a password for each of its accounts, then serve it.")
@common
def serve(env: Env, host: str, port: int, workers: int, forwarded_allow_ips: str | None,
          demo_: bool) -> None:
    """Serve the portal (societies, experts, staff, the public 公示) on uvicorn.

    \b
    Example:  starfund serve --port 8000
              starfund --db postgresql://u@host/starfund serve --host 0.0.0.0 --workers 2
              starfund serve --demo
    """
    import uvicorn

    from lifecycle.core import clock

    if demo_:
        from lifecycle.demo.run import seed_portal

        url, logins = seed_portal(env)   # the demo's own database: served, not --db's default
        echo(f"demo database: {url}")
        for name, role, password in logins:
            echo(f"  login {name:<14} {role:<12} password {password}")
    else:
        _ = env.engine  # the database exists and the caller is staff
        url = env.db_arg or os.environ.get(ENV_DB) or ""
    if url:
        os.environ[ENV_DB] = url
    if clock.simulated():
        os.environ["STARFUND_NOW"] = clock.now().isoformat()
    echo(f"starfund portal: http://{host}:{port}/  (Ctrl-C stops it)")
    uvicorn.run("web.serve:app_factory", factory=True, host=host, port=port, workers=workers,
                log_level="warning", proxy_headers=True,
                forwarded_allow_ips=forwarded_allow_ips or "127.0.0.1")
