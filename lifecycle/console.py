"""The command line's shared plumbing: what every area's click commands use.

cli.py is the root (the group and the registry of commands); each area's
commands live beside their act (`lifecycle/acts/*`, `lifecycle/scheduling/commands.py`,
`lifecycle/demo/run.py`) and take from here:

- the shared options --db, --as, --now and --quiet, declared once (`SHARED_OPTIONS`), on the
  root group (`shared_options(root=True)`) and on every command (`common`), resolved
  option after the command > option before it > environment variable > default;
- `Env`, what every command receives: the database (opened on first use), the actor, --json;
- the parameter types that refuse bad values at the door (`ISO_TIME`, `SafePath`,
  `OutputPath`, `ROW_ID`) and the options several areas share (`json_option`,
  `encoding_option`, `channel_options`);
- the output helpers, which escape what a terminal cannot show safely (`echo`, `table`,
  `emit_json`, `csv_cell`);
- the user-error handler: a `lifecycle.core.errors.UserError` is one line on stderr and
  exit 1, and so is running out of disk, memory or connections
  (`lifecycle.core.resources`); anything else is a bug and keeps its traceback.

Start-up: `starfund --help` imports this module and click only, so SQLAlchemy, the
database module (Alembic) and rich are imported inside the functions that need them.
"""
from __future__ import annotations

import functools
import getpass
import json
import os
import re
import sys
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import click

from lifecycle.core import clock
from lifecycle.core.errors import BadValue, NotFound, UserError
from lifecycle.core.names import clean_name, printable

# Typed user mistakes only (InputError and ConfigError are UserErrors too): a bare ValueError
# or LookupError is a bug and shows its traceback.
EXPECTED_ERRORS = (UserError,)
ACTOR_LIMIT = 100
TEXT_LIMIT = 200  # ids, names and other short values given on the command line
LONG_TEXT = {"reason": 2000, "contact": 500}  # free text options (still one line)
PATH_LIMIT = 4096
MAX_COUNT = 1_000_000  # --limit and --page: their product stays a 64-bit offset
ROW_ID = click.IntRange(1, 2**31 - 1)  # a numbered row (notification, objection)
INTERRUPTED = ("stopped by Ctrl-C; the transaction under way was rolled back (what it had "
               "written is gone), what committed before it stays")


class TimeError(click.ClickException):
    """A bad time given to an option: one line naming the option and the accepted form (exit 2,
    as click's usage errors)."""

    exit_code = 2


class IsoTime(click.ParamType):
    """An ISO 8601 date or date-time, as programme-local time; names the accepted form when wrong."""

    name = "ISO-TIME"

    def convert(self, value: Any, param: click.Parameter | None,
                ctx: click.Context | None) -> datetime:
        if isinstance(value, datetime):
            return value
        try:
            return clock.parse(value)
        except BadValue as e:  # one line, naming the option and the accepted form
            opt = param.opts[0] if param is not None and param.opts else "the time"
            raise TimeError(f"{opt}: {e}") from None


ISO_TIME = IsoTime()


class SafePath(click.Path):
    """click.Path that refuses control characters and overlong names before touching the disk
    (a NUL byte would otherwise reach os.stat as a ValueError)."""

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, str):
            try:
                clean_name(value, "the path", PATH_LIMIT, required=False)
            except BadValue as e:
                self.fail(str(e), param, ctx)
        return super().convert(value, param, ctx)


class OutputPath(SafePath):
    """A file (or, with `folder`, a folder) starfund will write: checked before any work is done,
    so a command that would fail to write refuses at the door and changes nothing."""

    def __init__(self, folder: bool = False) -> None:
        super().__init__(file_okay=not folder, dir_okay=folder)
        self.folder = folder

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        value = super().convert(value, param, ctx)
        target = Path(os.fsdecode(value))
        if not self.folder and target.is_dir():
            self.fail(f"{target} is a folder; accepted: a file name to write", param, ctx)
        where = target if self.folder else target.parent
        while not where.exists() and where != where.parent:  # a folder is made with its parents
            if not self.folder:
                self.fail(f"the folder {where} does not exist; accepted: a file in an existing "
                          "folder", param, ctx)
            where = where.parent
        if not where.is_dir():
            self.fail(f"{where} is not a folder", param, ctx)
        if not os.access(where, os.W_OK) or (target.is_file() and not os.access(target, os.W_OK)):
            self.fail(f"cannot write to {target}: permission denied", param, ctx)
        return value


# --- the database -------------------------------------------------------------------------

class Env:
    """What every command receives: the database, who acts, --json and the run's settings.

    Who acts is found when the database is first opened (`Env.engine`): the account of
    this user's `starfund login` to that database, else the account named like the OS
    user; `--as NAME` acts as another account: freely on a simulation, and on a live
    database only for an officer acting for a society's or expert's account (both names
    go in the trail). An unknown or disabled account is refused, and so is a society's
    or expert's own account (the command line is the staff's door).
    """

    def __init__(self, db_arg: str | None, as_name: str | None, as_json: bool = False,
                 settings: Any = None) -> None:
        self.db_arg, self.as_name, self.as_json = db_arg, as_name, as_json
        self.quiet = False
        """--quiet: no progress bar (`lifecycle.progress_bar`)."""
        self.settings = settings  # lifecycle.core.settings.Loaded, read once for the run
        self._engine = None
        self._actor = None
        self.mode: str | None = None
        self.how = ""
        """How the identity was found (for `starfund whoami`)."""
        self.service = False
        """The command may run as the service identity (`serve`, `scheduler run`, `backup`,
        ...): an OS user without an account that owns the database's chain key file is it."""

    @property
    def engine(self):
        if self._engine is None:
            from lifecycle.core import db  # inside: keeps `starfund --help` fast (Alembic)

            e = self.database()
            with db.reading(e) as conn:  # only reads: never waits for a writer's lock
                self._actor = self._identify(conn)
            self._engine = e
        return self._engine

    def database(self):
        """The database, checked to exist at the newest schema, before anyone is identified
        (`login` and `logout` come before that); `engine` is the usual door."""
        from lifecycle.core import db  # inside: keeps `starfund --help` fast (Alembic)

        path = sqlite_file(self.db_arg)
        if path and not os.path.exists(path):  # asking must not leave an empty file behind
            raise NotFound(f"no starfund database at {path}: run `starfund init` first")
        e = open_database(self.db_arg)
        db.require_schema(e)
        return e

    @property
    def actor(self):
        """The `lifecycle.core.accounts.Actor` this command acts as."""
        _ = self.engine  # opening the database finds who acts
        return self._actor

    def _identify(self, conn):
        from lifecycle.core import accounts, clock, meta  # inside: keeps --help fast
        from states.roles import ON_BEHALF

        self.mode = meta.mode(conn)
        if self.mode is None:
            raise NotFound("this database has no accounts and no audit keys yet: run "
                           "`starfund init` on it")
        meta.refuse_simulated_time(self.mode, clock.simulated())
        real, how = self._real(conn)
        if self.as_name and self.mode == meta.SIMULATION:
            actor, self.how = accounts.load(conn, self.as_name), "--as, on a simulation"
            return self._door(actor)
        if real is None:
            raise accounts.Refused(how)
        if not self.as_name or self.as_name == real.name:
            actor, self.how = real, how
        else:
            target = accounts.load(conn, self.as_name)
            whom = {w for r in real.roles for w in ON_BEHALF.get(r, ())}
            if not whom or not target.roles <= whom:
                raise accounts.Refused(
                    f"{real.name} may not act as {target.name} on a live database: only an "
                    f"officer may, and only for a society's or an expert's account "
                    f"({target.name} is {'/'.join(sorted(target.roles))}); both names are "
                    "then recorded")
            actor, self.how = accounts.as_other(conn, real, self.as_name), f"{how}, --as"
        return self._door(actor)

    @staticmethod
    def _door(actor):
        """The command line is the staff's door (the `read` act of states.roles): a society's
        or expert's own account is refused here, on any database. (The service identity is
        only ever found for the commands it may run.)"""
        from states.roles import SERVICE, STAFF

        if not (actor.by_roles if actor.by else actor.roles) & {*STAFF, SERVICE}:
            from lifecycle.core import accounts

            raise accounts.Refused(f"{actor.label} ({'/'.join(sorted(actor.roles))}) may not use "
                                   f"the command line (read); it is for {'/'.join(STAFF)}: "
                                   "societies and experts use the portal, or an officer "
                                   "enters what they sent with --as")
        return actor

    def _real(self, conn):
        """(the account this user is, or None; how it was found or why not)."""
        from lifecycle.core import accounts, logins, meta  # inside: keeps --help fast

        login = logins.token_for(meta.database_id(conn))
        if login is not None:
            return accounts.from_token(conn, login[1]), f"logged in as {login[0]}"
        try:
            name = getpass.getuser()
        except (OSError, KeyError):
            return None, ("who you are is unknown (no OS user name): run `starfund login NAME`")
        try:
            return accounts.load(conn, name), f"the OS user {name}"
        except NotFound:
            if self.service:
                owner = self._service_user(conn, name)
                if owner:
                    return accounts.service(), owner
            return None, (f"who you are is unknown: the OS user {name!r} has no account in this "
                          f"database; run `starfund login NAME`, or ask an approver for "
                          f"`starfund user add {name} --role ROLE`")


    @staticmethod
    def _service_user(conn, name: str) -> str | None:
        """How the OS user `name` is the service identity (it owns this database's chain key
        file and can read it: whoever writes needs it), or None."""
        from lifecycle.core import keys, meta  # inside: keeps --help fast

        try:
            key = keys.load_chain_key(meta.database_id(conn))
            owner = key.path.stat().st_uid
        except (UserError, OSError):
            return None
        if owner != os.geteuid():
            return None
        return f"the service user {name} (owner of the chain key {key.path})"


def sqlite_file(db_arg: str | None) -> str | None:
    """The file of a SQLite database (None: another backend, in memory, or not a valid URL)."""
    from sqlalchemy.engine import make_url  # inside: keeps `starfund --help` fast
    from sqlalchemy.exc import ArgumentError

    from lifecycle.core import db  # inside: keeps `starfund --help` fast (Alembic)

    try:
        url = make_url(db.resolve_url(db_arg))
    except ArgumentError:
        return None
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return url.database


def open_database(db_arg: str | None):
    """An Engine for --db/STARFUND_DB, checked to answer; a bad URL or file is the user's error."""
    from sqlalchemy.exc import (  # inside: keeps `starfund --help` fast
        ArgumentError,
        DatabaseError,
        NoSuchModuleError,
    )

    from lifecycle.core import db  # inside: keeps `starfund --help` fast (Alembic)

    shown = db_arg or db.DEFAULT_DB
    try:
        e = db.make_engine(db_arg)
        shown = e.url.render_as_string(hide_password=True) if "://" in shown else shown
    except (ArgumentError, NoSuchModuleError) as err:
        raise BadValue(f"database {shown!r} is neither a SQLite file nor a database URL "
                       f"({err}); accepted: a file path or e.g. "
                       "postgresql://user@host/dbname") from None
    try:
        with e.connect():
            pass
    except DatabaseError as err:
        e.dispose()
        from lifecycle.core.resources import shortage  # e.g. no connection slot left

        short = shortage(err)
        if short:
            raise UserError(f"cannot open the database {shown!r}: {short}") from None
        raise NotFound(f"cannot open the database {shown!r}: "
                       f"{str(err.orig).strip().splitlines()[0]}") from None
    return e


def run_import(env: Env, fn: Callable[..., dict], *args: Any, encoding: str | None = None) -> dict:
    """Run an importer `fn(conn, *args, actor, encoding=...)` in one transaction (all or
    nothing), its rows read drawn as progress on a terminal (`lifecycle.progress_bar`)."""
    from lifecycle.core.progress import watching  # inside: keeps `starfund --help` fast
    from lifecycle.progress_bar import shown

    actor = env.actor
    what = f"{(click.get_current_context().command_path.split(' ', 1) + [''])[1]} " \
           f"{Path(os.fsdecode(args[-1])).name}".strip()
    with shown(env, what, interrupted="nothing was imported (the file's transaction was "
                                      "rolled back)") as progress, \
            watching(progress), env.engine.begin() as conn:
        return fn(conn, *args, actor, encoding=encoding)


# --- the shared options: declared once, resolved option > environment > default ------------

# (flags, parameter name, click settings, help on the root group, help on each command)
SHARED_OPTIONS: tuple[tuple[str, str, dict[str, Any], str, str], ...] = (
    ("--db", "db_arg", {"metavar": "URL|FILE"},
     "Database (see init) [env STARFUND_DB; default starfund.db].",
     "Database: a SQLite file or any SQLAlchemy URL [env STARFUND_DB; default starfund.db]."),
    ("--as", "as_actor", {"metavar": "ACCOUNT"},
     "Act as this account (see any command) [env STARFUND_ACTOR].",
     "Act as this account: any, on a simulation; on a live database only an officer, for a "
     "society's or expert's account (both names recorded) [env STARFUND_ACTOR; default: "
     "your login, else your OS user's account]."),
    ("--now", "at_now", {"type": ISO_TIME},
     "Pretend it is this time (simulations only) [env STARFUND_NOW].",
     "Pretend it is this time: simulations only; refused on a live database "
     "[env STARFUND_NOW]."),
    ("--quiet", "quiet", {"is_flag": True, "default": None},
     "Draw no progress bar (see any command) [env STARFUND_QUIET].",
     "Draw no progress bar on the terminal; the summary is printed as always "
     "[env STARFUND_QUIET]."),
)
SHARED = tuple(name for _, name, _, _, _ in SHARED_OPTIONS)
ENVVARS = {"db_arg": "STARFUND_DB", "as_actor": "STARFUND_ACTOR", "at_now": "STARFUND_NOW",
           "quiet": "STARFUND_QUIET"}
SETTING = {"db_arg": "db", "as_actor": "actor", "at_now": "now",  # their lifecycle.core.settings
           "quiet": "quiet"}


class SettingOption(click.Option):
    """An option whose value, when not given, is its setting's (lifecycle.core.settings: the
    environment variable, else the model's default), filled in by `common`."""

    def __init__(self, *args: Any, setting: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.setting = setting


def setting_option(*flags: str, setting: str, **kwargs: Any) -> Callable:
    """click.option for a SettingOption."""
    return click.option(*flags, cls=SettingOption, setting=setting, **kwargs)


def settings_of(ctx: click.Context) -> Any:
    """The STARFUND_* settings of this run (lifecycle.core.settings.Loaded), read once and kept
    in the context every subcommand shares."""
    if "starfund.settings" not in ctx.meta:
        from lifecycle.core import settings  # inside: keeps `starfund --help` fast (pydantic)

        ctx.meta["starfund.settings"] = settings.load()
    return ctx.meta["starfund.settings"]


def from_settings(ctx: click.Context, kwargs: dict[str, Any]) -> None:
    """Fill the command's options that were not given with their setting (environment, else
    default); a bad environment value is a usage error naming the variable."""
    from click.core import ParameterSource

    loaded = settings_of(ctx)
    for param in ctx.command.params:
        name = param.name
        if not isinstance(param, SettingOption) or name not in kwargs or \
                ctx.get_parameter_source(name) not in (ParameterSource.DEFAULT, None):
            continue
        setting = param.setting
        try:
            value = loaded.get(setting)
        except BadValue as e:
            raise click.BadParameter(str(e), ctx, param_hint=f"'STARFUND_{setting.upper()}'") \
                from None
        if loaded.sources[setting] == "environment":  # checked as if typed as the option
            kwargs[name] = param.type_cast_value(ctx, value)
        elif kwargs[name] is None:
            kwargs[name] = value


def shared_options(fn: Callable | None = None, *, root: bool = False) -> Callable:
    """Put --db, --as and --now on a command (or, with `root`, on the root group)."""

    def apply(f: Callable) -> Callable:
        for flag, name, settings, root_help, command_help in reversed(SHARED_OPTIONS):
            f = click.option(flag, name, help=root_help if root else command_help, **settings)(f)
        return f

    return apply if fn is None else apply(fn)


def pick(ctx: click.Context, key: str) -> tuple[Any, str]:
    """A shared option's value and where it came from: this command's option, the same option
    before the command name, the environment variable, or (None, envvar) for the default."""
    option = next(flag for flag, name, _, _, _ in SHARED_OPTIONS if name == key)
    if ctx.params.get(key) is not None:
        return ctx.params[key], option
    root = ctx.find_root().obj or {}
    if root.get(key) is not None:
        return root[key], option
    loaded = settings_of(ctx)
    return (loaded.get(SETTING[key]) if loaded.sources[SETTING[key]] == "environment" else None,
            ENVVARS[key])


def check_text(ctx: click.Context) -> None:
    """Refuse control characters and overlong values in every text option and argument."""
    for p in ctx.command.params:
        if p.name in SHARED or p.name is None:
            continue
        value = ctx.params.get(p.name)
        for v in value if isinstance(value, tuple) else (value,):
            if not isinstance(v, str):
                continue
            limit = PATH_LIMIT if isinstance(p.type, click.Path) else LONG_TEXT.get(p.name, TEXT_LIMIT)
            try:
                clean_name(v, "the value", limit, required=False)
            except BadValue as e:
                raise click.BadParameter(str(e), ctx, p) from None


def shared_settings(ctx: click.Context) -> tuple[str | None, str | None]:
    """Resolve --db, --as and --now (option > environment > default), checked; freezes the
    clock. Returns (database, the --as name or None); who acts is found in `Env` (--quiet:
    `quiet_of`)."""
    db_arg, db_from = pick(ctx, "db_arg")
    actor, actor_from = pick(ctx, "as_actor")
    now, now_from = pick(ctx, "at_now")
    for value, what, source, limit in ((db_arg, "the database", db_from, PATH_LIMIT),
                                       (actor, "the account name", actor_from, ACTOR_LIMIT)):
        try:
            if value is not None:
                clean_name(value, what, limit)
        except BadValue as e:
            raise click.BadParameter(str(e), ctx, param_hint=f"'{source}'") from None
    try:
        clock.use_zone(settings_of(ctx).get("tz"))
    except BadValue as e:
        raise click.BadParameter(str(e), ctx, param_hint="'STARFUND_TZ'") from None
    if now is not None:
        if now_from == "--now":
            clock.set_now(now)
        else:
            try:
                clock.set_now(clock.parse(now))
            except BadValue as e:
                raise click.BadParameter(str(e), ctx, param_hint="'STARFUND_NOW'") from None
    return db_arg, actor.strip() if actor else None


def quiet_of(ctx: click.Context) -> bool:
    """--quiet (after the command, else before it), else STARFUND_QUIET, else off."""
    try:
        value, _ = pick(ctx, "quiet")
    except BadValue as e:
        raise click.BadParameter(str(e), ctx, param_hint="'STARFUND_QUIET'") from None
    return bool(value)


def common(fn: Callable) -> Callable:
    """--db, --as, --now and --quiet on a command (they may also be given before the command);
    the command receives an `Env`, and a user's mistake it raises is one line on stderr, exit
    1; a Ctrl-C, once the command's transactions have unwound, one line, exit 130."""

    @shared_options
    @functools.wraps(fn)
    def wrapper(*args: Any, db_arg: str | None, as_actor: str | None, at_now: datetime | None,
                quiet: bool | None, **kwargs: Any) -> Any:
        ctx = click.get_current_context()
        check_text(ctx)
        db_value, as_name = shared_settings(ctx)
        from_settings(ctx, kwargs)
        env = Env(db_value, as_name, kwargs.pop("as_json", False), settings_of(ctx))
        env.quiet = quiet_of(ctx)
        try:
            return fn(env, *args, **kwargs)
        except EXPECTED_ERRORS as e:
            echo(f"error: {e}", err=True)
            sys.exit(getattr(e, "exit_code", 1))
        except KeyboardInterrupt:  # a long command says more (lifecycle.progress_bar)
            from lifecycle.progress_bar import INTERRUPTED_EXIT

            echo(f"interrupted: {INTERRUPTED}", err=True)
            sys.exit(INTERRUPTED_EXIT)
        except Exception as e:
            from lifecycle.core.resources import shortage  # disk, memory, connections

            line = shortage(e)
            if line is None:
                raise
            echo(f"error: {line}", err=True)
            sys.exit(1)
    return wrapper


def json_option(fn: Callable) -> Callable:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")(fn)


def encoding_option(fn: Callable) -> Callable:
    """--encoding on every import: a CSV's text encoding when detection is not enough."""
    return setting_option("--encoding", setting="encoding", metavar="NAME", default=None,
                        help="Text encoding of a CSV file [env STARFUND_ENCODING; default: "
                             "detected, UTF-8 with or without BOM, or GB18030/GBK].")(fn)


def channel_options(fn: Callable) -> Callable:
    """The delivery channel: a folder of .eml files (default) or SMTP; the password only from env."""
    options = [
        setting_option("--channel", setting="channel", type=click.Choice(["file", "smtp"]), default="file",
                     show_default=True,
                     help="Deliver to a folder of .eml files or through SMTP [env STARFUND_CHANNEL]."),
        setting_option("--outbox", setting="outbox", default="outbox", show_default=True,
                     type=OutputPath(folder=True),
                     help="Folder for the file channel [env STARFUND_OUTBOX]."),
        setting_option("--smtp-host", setting="smtp_host", help="SMTP server [env STARFUND_SMTP_HOST]."),
        setting_option("--smtp-port", setting="smtp_port", type=click.IntRange(1, 65535), default=25,
                     show_default=True, help="SMTP port [env STARFUND_SMTP_PORT]."),
        setting_option("--smtp-starttls/--no-smtp-starttls", setting="smtp_starttls",
                       default=False,
                     help="Use STARTTLS [env STARFUND_SMTP_STARTTLS]."),
        setting_option("--smtp-user", setting="smtp_user",
                     help="SMTP login; the password is read only from STARFUND_SMTP_PASSWORD."),
        setting_option("--smtp-timeout", setting="smtp_timeout", type=click.FloatRange(0, min_open=True), default=10.0,
                     show_default=True,
                     help="Seconds to wait for the SMTP server; one timeout ends the round "
                          "[env STARFUND_SMTP_TIMEOUT]."),
        click.option("--max-attempts", type=click.IntRange(1), default=5, show_default=True,
                     help="Attempts before a message is marked failed."),
        click.option("--backoff", "backoff_seconds", type=click.FloatRange(0), default=60,
                     show_default=True, help="Seconds before the first retry; doubles each time."),
        setting_option("--templates", "templates_dir", setting="templates",
                     type=SafePath(file_okay=False),
                     help="Folder overriding templates (<lang>/<kind>.txt) [env STARFUND_TEMPLATES]."),
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


def letterhead(env: Env) -> Any:
    """Who the run's mail comes from (notifications.render.Letterhead), from its settings."""
    from notifications.render import Letterhead

    get = env.settings.get if env.settings is not None else (lambda _name: None)
    return Letterhead(address=get("mail_from") or Letterhead.address,
                      name=get("mail_from_name") or "", reply_to=get("mail_reply_to") or "",
                      domain=get("mail_domain") or "starfund",
                      signature=get("mail_signature") or "",
                      signature_en=get("mail_signature_en") or "",
                      portal_url=get("portal_url") or "")


def channel_factory(make: Callable[..., Any], kw: dict[str, Any],
                    env: Env | None = None) -> Callable[[], Any]:
    """A maker of the channel `channel_options` chose (`make`: notifications.channels.make),
    with the password and sender of the run's settings; tried once now so that bad settings
    fail at once, clearly (BadValue)."""
    settings = dict(kind=kw["channel"], outbox=kw["outbox"], host=kw["smtp_host"],
                    port=kw["smtp_port"], starttls=kw["smtp_starttls"], user=kw["smtp_user"],
                    timeout=kw["smtp_timeout"])
    if env is not None and env.settings is not None:
        settings.update(password=env.settings.get("smtp_password"), sender=letterhead(env))
    try:
        make(**settings)
    except OSError as e:  # the outbox folder cannot be made
        raise BadValue(f"--outbox {kw['outbox']}: {e.strerror or e}") from None
    return lambda: make(**settings)


# --- output -----------------------------------------------------------------------------------

def echo(text: Any = "", err: bool = False) -> None:
    """click.echo, with control characters from the data escaped (newlines and tabs kept)."""
    click.echo(printable(text, multiline=True), err=err)


_UNSAFE_IN_JSON = re.compile("[\x7f-\x9f\u2028\u2029\u200e\u200f\u061c\u202a-\u202e"
                             "\u2066-\u2069]")


def emit_json(data: Any) -> None:
    text = json.dumps(data, ensure_ascii=False, indent=2, default=str)  # escapes C0 itself
    click.echo(_UNSAFE_IN_JSON.sub(lambda m: f"\\u{ord(m.group()):04x}", text))


@functools.cache
def rich_console():
    """The rich Console tables are printed on (piped: wide, so tables are not squeezed)."""
    from rich.console import Console  # inside: rich is imported only to print a table

    return Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 160)


def table(title: str, columns: list[str], rows: list[list[Any]]) -> None:
    from rich.markup import escape as rich_escape  # inside: rich only to print a table
    from rich.table import Table

    t = Table(title=rich_escape(printable(title)), title_justify="left")
    for c in columns:
        t.add_column(c)
    for r in rows:
        t.add_row(*["" if v is None else rich_escape(printable(v)) for v in r])
    rich_console().print(t)


def show_report(env: Env, report: Any) -> None:
    """An advance's report (`lifecycle.engine.engine.Report`), as JSON or as lines of counts and
    reasons."""
    if env.as_json:
        return emit_json(report.as_dict())
    verb = "would move" if report.dry_run else "moved"
    echo(f"{report.call_id} {report.trigger}: {verb} {report.moved_total}, "
         f"skipped {report.skipped_total}" + (" (dry run: nothing written)"
                                              if report.dry_run else ""))
    for (src, dst), n in sorted(report.moved.items()):
        echo(f"  {n} {src} -> {dst}")
    for reason, n in report.skipped.most_common():
        echo(f"  {n} skipped: {reason}")


def csv_cell(value: Any) -> Any:
    """A CSV cell: control characters escaped when the CSV goes to a terminal, kept in a file."""
    return printable(value) if isinstance(value, str) and sys.stdout.isatty() else value


# --- lists: filters, totals, sorting, paging, exports ----------------------------------------

LIST_WIDTH = 80
"""Lists fit an 80-column terminal (a wider one gets its own width); details go to --json."""


class Listed:
    """One column of a list: the row key, its header, right-aligned (numbers) or text that is
    cut with … when the terminal is narrow, and how a value is shown in the table."""

    def __init__(self, key: str, header: str, number: bool = False, width: int | None = None,
                 show: Callable[[Any], str] | None = None) -> None:
        self.key, self.header, self.number, self.width = key, header, number, width
        self.show = show or ((lambda v: f"{v:,}" if isinstance(v, int) else
                              (f"{v:g}" if isinstance(v, float) else str(v)))
                             if number else str)


def list_options(sorts: tuple[str, ...], default: str) -> Callable:
    """--sort, --limit, --page and the formats (--json, --csv, --xlsx FILE) of a list command;
    the command receives `listing` (a dict of them) instead."""

    def apply(fn: Callable) -> Callable:
        options = [
            click.option("--sort", "sort_key", default=default, show_default=True,
                         type=click.Choice(list(sorts) + [f"-{s}" for s in sorts]),
                         help="Sort by this column; a leading - sorts descending."),
            click.option("--limit", default=50, show_default=True,
                         type=click.IntRange(0, MAX_COUNT), help="Rows per page (0: all)."),
            click.option("--page", default=1, show_default=True,
                         type=click.IntRange(1, MAX_COUNT), help="Which page."),
            click.option("--json", "as_json", is_flag=True,
                         help="Print JSON (every field, the totals, this page) instead."),
            click.option("--csv", "as_csv", is_flag=True,
                         help="Print every matching row as CSV (text cells made inert)."),
            click.option("--xlsx", "xlsx_file", type=OutputPath(), metavar="FILE",
                         help="Write every matching row to an XLSX file (text cells inert)."),
        ]
        for option in reversed(options):
            fn = option(fn)

        @functools.wraps(fn)
        def wrapper(*args: Any, sort_key: str, limit: int, page: int, as_csv: bool,
                    xlsx_file: str | None, **kwargs: Any) -> Any:
            listing = {"sort": sort_key, "limit": limit, "page": page, "csv": as_csv,
                       "xlsx": xlsx_file}
            return fn(*args, listing=listing, **kwargs)
        return wrapper
    return apply


def emit_list(env: Env, listing: dict[str, Any], title: str, rows: list[dict[str, Any]],
              columns: list[Listed], totals: dict[str, Any], noun: str) -> None:
    """Sort `rows` (plain dicts, every field) and show one page as an 80-column table with the
    totals under it, or all of it as JSON / CSV / XLSX."""
    key = listing["sort"].lstrip("-")
    rows = sorted((r for r in rows if r.get(key) is not None), key=lambda r: r[key],
                  reverse=listing["sort"].startswith("-")) + \
        [r for r in rows if r.get(key) is None]  # empty values last, either way
    limit, page = listing["limit"], listing["page"]
    shown = rows[(page - 1) * limit: page * limit] if limit else rows
    pages = max(1, -(-len(rows) // limit)) if limit else 1
    if listing["xlsx"] or listing["csv"]:
        fields = list(dict.fromkeys(k for r in rows for k in r)) or [c.key for c in columns]
        if listing["xlsx"]:
            from lifecycle.core.tabular import new_workbook, xlsx_append

            wb = new_workbook()
            ws = wb.create_sheet(noun)
            xlsx_append(ws, fields)
            for r in rows:
                xlsx_append(ws, [_flat(r.get(f)) for f in fields])
            wb.save(listing["xlsx"])
            echo(f"{listing['xlsx']}: {len(rows)} {noun}")
        if listing["csv"]:
            from lifecycle.core.tabular import csv_writer

            w = csv_writer(sys.stdout, lineterminator="\n")
            w.writerow(fields)
            for r in rows:
                w.writerow([csv_cell(_flat(r.get(f))) for f in fields])
        return
    if env.as_json:
        return emit_json({"total": len(rows), "page": page, "pages": pages, "limit": limit,
                          "totals": totals, "rows": shown})
    from rich import box
    from rich.console import Console
    from rich.markup import escape as rich_escape
    from rich.table import Table

    width = rich_console().width if sys.stdout.isatty() else LIST_WIDTH
    t = Table(title=rich_escape(printable(title)), title_justify="left", box=box.SIMPLE_HEAD,
              show_edge=False, pad_edge=False)
    for c in columns:
        t.add_column(c.header, justify="right" if c.number else "left", no_wrap=True,
                     overflow="ellipsis", max_width=c.width)
    for r in shown:
        t.add_row(*["" if r.get(c.key) is None else rich_escape(printable(c.show(r[c.key])))
                    for c in columns])
    Console(highlight=False, width=width, soft_wrap=False).print(t)
    parts = [f"{len(rows):,} {noun}"] + [f"{k} {v:,}" if isinstance(v, int) else f"{k} {v}"
                                         for k, v in totals.items()]
    echo("total: " + "; ".join(parts))
    if pages > 1:
        echo(f"page {page} of {pages}" + (f" (--page {page + 1} for more)" if page < pages
                                          else ""))


def _flat(v: Any) -> Any:
    """A value as one spreadsheet cell: lists joined, None empty."""
    if v is None:
        return ""
    if isinstance(v, (list, tuple)):
        return "; ".join(map(str, v))
    if isinstance(v, dict):
        return json.dumps(v, ensure_ascii=False)
    return v
