"""`starfund config show`: every STARFUND_* setting, its value and where it came from.

The settings are those of `lifecycle.core.settings` (the one model the command
line reads); this command takes each setting's option too, so it shows what
any command would see given the same options. Secrets are masked, and so is
the password of a database URL.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import click

from lifecycle.console import (
    SETTING,
    Env,
    common,
    echo,
    emit_json,
    json_option,
    table,
)
from lifecycle.core import settings

SHARED = set(SETTING.values())  # db, actor, now: the shared options --db, --as, --now
PREFIX = "opt_"  # this command's own parameters, apart from the options `common` fills in


def _setting_options(fn: Callable) -> Callable:
    """One option per setting that has one, besides the shared ones (their values unchecked
    by click: the settings model checks them)."""
    for name, f in reversed(settings.Settings.model_fields.items()):
        option = settings.option_of(settings.Settings, name)
        if option is None or name in SHARED:
            continue
        if f.annotation is bool:
            flags = [f"{option}/--no-{option[2:]}"]
            fn = click.option(*flags, PREFIX + name, default=None,
                              help=f"{f.description}.")(fn)
        else:
            fn = click.option(option, PREFIX + name, default=None, metavar="VALUE",
                              help=f"{f.description}.")(fn)
    return fn


def _masked_url(value: Any) -> Any:
    """A database URL with its password hidden (a file path as it is)."""
    if not isinstance(value, str) or "://" not in value:
        return value
    from sqlalchemy.engine import make_url  # inside: only to show a URL
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(value).render_as_string(hide_password=True)
    except ArgumentError:
        return value


def show(ctx: click.Context, given: dict[str, Any]) -> tuple[list[dict[str, Any]], list[str]]:
    """Every setting's row (lifecycle.core.settings.rows) and what is wrong with bad values."""
    root = ctx.find_root().obj or {}
    for key, name in SETTING.items():
        value = ctx.params.get(key) if ctx.params.get(key) is not None else root.get(key)
        if value is not None:
            given[name] = value.isoformat(sep=" ") if hasattr(value, "isoformat") else value
    try:
        loaded = settings.load(given)
    except Exception as e:  # noqa: BLE001 - an option the model refuses
        from pydantic import ValidationError

        if not isinstance(e, ValidationError):
            raise
        bad = e.errors()[0]
        option = settings.option_of(settings.Settings, str(bad["loc"][0]))
        raise click.BadParameter(bad["msg"], ctx, param_hint=f"'{option}'") from None
    paths = settings.load(model=settings.KeyPaths)
    hooks = settings.load(model=settings.FaultHooks)
    rows = settings.rows([loaded, paths, hooks])
    for r in rows:
        if r["setting"] == "db":
            r["value"] = _masked_url(r["value"])
    return rows, [*loaded.bad.values(), *paths.bad.values(), *hooks.bad.values()]


@click.group("config")
def config_group() -> None:
    """The settings (STARFUND_* environment variables and their options)."""


@config_group.command("show")
@_setting_options
@json_option
@common
def config_show(env: Env, **given: Any) -> None:
    """Print every setting, its value and where it came from (option, environment, default).

    Secrets (the SMTP password, a database URL's password) are masked. Options
    given here count as they would for any command. A bad value in the
    environment is shown as bad, and the command exits 1.

    \b
    Example:  starfund config show
              STARFUND_SMTP_HOST=mail.example.org starfund config show --json
    """
    rows, bad = show(click.get_current_context(), {k.removeprefix(PREFIX): v
                                                   for k, v in given.items() if v is not None})
    if env.as_json:
        emit_json(rows)
    else:
        table("settings", ["setting", "variable", "option", "value", "source"],
              [[r["setting"], r["variable"], r["option"] or "",
                "" if r["value"] is None else r["value"], r["source"]] for r in rows])
    for problem in bad:
        echo(f"error: {problem}", err=True)
    if bad:
        raise SystemExit(1)
