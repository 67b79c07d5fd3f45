"""Setting up: create the database, or upgrade it to the newest schema (`starfund init`)."""
from __future__ import annotations

import click

from lifecycle.core import db
from lifecycle.core.console import Env, common, echo, open_database


@click.command()
@common
def init(env: Env) -> None:
    """Create the database, or upgrade an existing one to the newest schema.

    \b
    Example:  starfund init --db programme.db
              starfund init --db postgresql://postgres@127.0.0.1/starfund
    """
    e = open_database(env.db_arg)
    done = db.upgrade(e)
    echo(f"database {done}: {e.url.render_as_string()}")
