"""Every STARFUND_* setting, in one pydantic-settings model, read once per command.

The command line builds `Settings` once per run (`load`, from `console.common`):
an option given on the command line beats the environment variable, which
beats the default. What a command needs is passed down from there (the
database, the actor, the clock's time zone, the channel, the templates, the
CSV encoding); no other module reads STARFUND_* itself, except the test-only
fault hooks (`FaultHooks`), read where they pause.

A bad value in the environment is named (variable and reason) by the command
that uses it, not by every command: `load` keeps the bad fields at their
defaults and `Loaded.get` refuses them when asked. `starfund config show`
prints every setting with its value and source, secrets masked; the table of
settings in docs/reference.md is generated from this model.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from lifecycle.core.errors import BadValue

PREFIX = "STARFUND_"
DEFAULT_DB = "starfund.db"
DEFAULT_ZONE = "Asia/Shanghai"
DEFAULT_SENDER = "starfund@kexie.example.org"


def _about(text: str, option: str | None = None, secret: bool = False) -> dict[str, Any]:
    return {"description": text, "json_schema_extra": {"option": option, "secret": secret}}


class Settings(BaseSettings):
    """What a deployment sets once: database, actor, time, mail and templates."""

    model_config = SettingsConfigDict(env_prefix=PREFIX, extra="ignore", env_ignore_empty=True)

    db: str = Field(DEFAULT_DB, **_about(
        "Database: a SQLite file or any SQLAlchemy URL", "--db"))
    actor: str | None = Field(None, **_about(
        "Act as this account: any on a simulation; on a live database only an officer, for a "
        "society's or expert's account (default: your login, else your OS user's account)",
        "--as"))
    now: str | None = Field(None, **_about(
        "Pretend it is this time: simulations only, refused on a live database; default: the "
        "wall clock",
        "--now"))
    quiet: bool = Field(False, **_about(
        "Draw no progress bars on a terminal (never drawn when standard error is not a "
        "terminal, or with --json)", "--quiet"))
    tz: str = Field(DEFAULT_ZONE, **_about("The programme's time zone (an IANA name)"))
    encoding: str | None = Field(None, **_about(
        "Text encoding of imported CSV files (default: detected, UTF-8 or GB18030)",
        "--encoding"))
    templates: str | None = Field(None, **_about(
        "Folder overriding message templates (`<lang>/<kind>.txt`)", "--templates"))
    channel: Literal["file", "smtp"] = Field("file", **_about(
        "Deliver to a folder of .eml files or through SMTP", "--channel"))
    outbox: str = Field("outbox", **_about("Folder for the file channel", "--outbox"))
    smtp_host: str | None = Field(None, **_about("SMTP server", "--smtp-host"))
    smtp_port: int = Field(25, ge=1, le=65535, **_about("SMTP port", "--smtp-port"))
    smtp_starttls: bool = Field(False, **_about("Use STARTTLS", "--smtp-starttls"))
    smtp_user: str | None = Field(None, **_about("SMTP login", "--smtp-user"))
    smtp_password: SecretStr | None = Field(None, **_about(
        "SMTP password (only from the environment, never an option)", secret=True))
    smtp_timeout: float = Field(10.0, gt=0, **_about(
        "Seconds to wait for the SMTP server; one timeout ends the round", "--smtp-timeout"))
    mail_from: str = Field(DEFAULT_SENDER, **_about("The From address of every message"))
    mail_from_name: str = Field("", **_about(
        "The From display name (e.g. 市科协学会工作部); default: the address alone"))
    mail_reply_to: str = Field("", **_about("The Reply-To address (default: none)"))
    mail_domain: str = Field("starfund", pattern=r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,250})$", **_about(
        "The domain of every Message-ID (`<key@DOMAIN>`), e.g. kexie.example.org"))
    mail_signature: str = Field("", **_about(
        "The sign-off of Chinese messages (default: 市科协学会工作部)"))
    mail_signature_en: str = Field("", **_about(
        "The sign-off of English messages (default: Society Affairs Department, ...)"))
    portal_url: str = Field("", pattern=r"^(https?://\S+)?$", **_about(
        "The portal's address; review assignments then link to it (default: none)"))
    two_factor_roles: str | None = Field(None, **_about(
        "Roles that must sign in to the portal with a second factor, space-separated "
        "(default: approver finance auditor officer on a live database, none on a simulation)"))
    session_idle_minutes: int | None = Field(None, ge=1, **_about(
        "Minutes a portal session may sit unused before it ends (default: 30 for staff, "
        "120 for society contacts and experts)"))
    session_hours: int | None = Field(None, ge=1, **_about(
        "Hours a portal session lasts at most, used or not (default: 12 for staff, 24 for "
        "others)"))
    log_format: Literal["text", "json"] = Field("text", **_about(
        "How `serve` and `scheduler run` write their logs: lines of text, or one JSON object "
        "per line (for a log collector)", "--log-format"))
    trusted_proxies: str = Field("127.0.0.1", **_about(
        "The addresses (comma-separated, or *) of the reverse proxies whose X-Forwarded-For "
        "and X-Forwarded-Proto the portal believes (the client's address, HTTPS)",
        "--trusted-proxies"))
    metrics_listen: str | None = Field(None, pattern=r"^\[?[0-9A-Za-z.:-]*\]?:\d{1,5}$",
                                       **_about(
        "Serve /metrics on this separate HOST:PORT only (e.g. 127.0.0.1:9108); default: on "
        "the portal, to a request bearing STARFUND_METRICS_TOKEN", "--metrics-listen"))
    metrics_token: SecretStr | None = Field(None, **_about(
        "The bearer token /metrics asks of a scraper on the portal's own address (none: the "
        "portal does not serve /metrics there)", secret=True))
    health_scheduler_age: float = Field(180.0, ge=0, **_about(
        "Seconds without a scheduler heartbeat before /healthz says wrong (0: the scheduler "
        "is not watched)"))
    health_failed: int = Field(0, ge=0, **_about(
        "Failed messages /healthz tolerates before it says wrong"))
    health_held_hours: float = Field(72.0, ge=0, **_about(
        "Hours a message may wait held for review before /healthz says wrong"))
    retention_login_attempts_days: int | None = Field(None, ge=0, **_about(
        "Days failed sign-ins (with their client addresses) are kept (default: 90)"))
    retention_tokens_days: int | None = Field(None, ge=0, **_about(
        "Days an expired sign-in session is kept (default: 7)"))
    retention_drafts_days: int | None = Field(None, ge=0, **_about(
        "Days unsubmitted score drafts are kept after their call closes (default: 180)"))
    retention_outbox_days: int | None = Field(None, ge=0, **_about(
        "Days a delivered message's address and text are kept (default: 365)"))
    retention_attachments_days: int | None = Field(None, ge=0, **_about(
        "Days the uploads of applications not funded are kept after the call closes "
        "(default: 1095)"))
    retention_objections_days: int | None = Field(None, ge=0, **_about(
        "Days an objector's contact details are kept after the objection is resolved "
        "(default: 365)"))
    retention_finance_days: int | None = Field(None, ge=0, **_about(
        "Days a funded project's records are held after the end of its last year; an erasure "
        "before then is refused (default: 3650)"))


class KeyPaths(BaseSettings):
    """Where the audit trail's keys, the logins and the anchors live: outside the database
    (lifecycle.core.keys reads this model where it needs a path)."""

    model_config = SettingsConfigDict(env_prefix=PREFIX, extra="ignore", env_ignore_empty=True)

    config_dir: str | None = Field(None, **_about(
        "The user's starfund folder: keys/ and logins.json (default: ~/.config/starfund)"))
    audit_key: str | None = Field(None, **_about(
        "The audit chain key file (default: where `init` wrote it)", "--key-file"))
    anchor_key: str | None = Field(None, **_about(
        "The Ed25519 anchor signing key file (default: where `init` wrote it)", "--anchor-key"))
    anchors: str | None = Field(None, **_about(
        "Folder of signed anchors (`audit anchor --dir`, `scheduler run --anchor-dir`)",
        "--dir"))


class FaultHooks(BaseSettings):
    """Test-only hooks that pause a process where a fault test kills it (docs/guide.md)."""

    model_config = SettingsConfigDict(env_prefix=PREFIX, extra="ignore", env_ignore_empty=True)

    fault_pause_after_rows: str | None = Field(None, **_about(
        "Test hook: pause a batch write after this many rows"))
    fault_chunk_rows: str | None = Field(None, **_about(
        "Test hook: rows per chunk of every batch write"))
    fault_copy_from_rows: str | None = Field(None, **_about(
        "Test hook: PostgreSQL writes of this many rows or more go through COPY"))
    fault_pause_in: str | None = Field(None, **_about(
        "Test hook: pause the scheduler in this phase (sync, fire, deliver)"))
    fault_marker: str | None = Field(None, **_about(
        "Test hook: the file a paused process writes"))
    fault_pause_seconds: float = Field(300.0, gt=0, **_about(
        "Test hook: how long a pause lasts before the process carries on"))


MODELS: tuple[type[BaseSettings], ...] = (Settings, KeyPaths, FaultHooks)


def env_name(name: str) -> str:
    return PREFIX + name.upper()


def option_of(model: type[BaseSettings], name: str) -> str | None:
    extra = model.model_fields[name].json_schema_extra
    return extra.get("option") if isinstance(extra, dict) else None  # type: ignore[return-value]


def is_secret(model: type[BaseSettings], name: str) -> bool:
    extra = model.model_fields[name].json_schema_extra
    return bool(extra.get("secret")) if isinstance(extra, dict) else False


@dataclass
class Loaded:
    """The settings of one run, where each came from, and the environment's bad values."""

    values: Settings
    sources: dict[str, str]
    bad: dict[str, str] = field(default_factory=dict)

    def get(self, name: str) -> Any:
        """A setting's value; a bad environment value is refused here, naming the variable."""
        if name in self.bad:
            raise BadValue(self.bad[name])
        value = getattr(self.values, name)
        return value.get_secret_value() if isinstance(value, SecretStr) else value


def _message(name: str, error: dict[str, Any], raw: Any) -> str:
    return f"{env_name(name)}={raw!r} is not a valid setting: {error['msg']}"


def load(options: dict[str, Any] | None = None,
         model: type[BaseSettings] = Settings) -> Loaded:
    """Read the settings once: `options` (given on the command line, None: not given) over
    the environment over the defaults; bad environment values are kept aside (`Loaded.bad`)."""
    import os

    # pydantic-settings matches variable names in any case, and so does this
    environ = {k.upper(): v for k, v in os.environ.items()}
    given = {k: v for k, v in (options or {}).items() if v is not None}
    from_env = {name for name in model.model_fields
                if name not in given and environ.get(env_name(name), "") != ""}
    overrides = dict(given)
    bad: dict[str, str] = {}
    while True:
        try:
            values = model(**overrides)
            break
        except ValidationError as e:
            wrong = {str(x["loc"][0]): x for x in e.errors() if x["loc"]}
            fresh = {n: x for n, x in wrong.items() if n in from_env and n not in bad}
            if not fresh:
                raise
            for name, error in fresh.items():
                bad[name] = _message(name, error, environ.get(env_name(name)))
                overrides[name] = model.model_fields[name].get_default(call_default_factory=True)
    sources = {name: "option" if name in given else "environment" if name in from_env
               else "default" for name in model.model_fields}
    return Loaded(values, sources, bad)  # type: ignore[arg-type]


def rows(loaded: list[Loaded]) -> list[dict[str, Any]]:
    """Every setting of every model: its variable, option, value (secrets masked) and source."""
    out = []
    for one in loaded:
        model = type(one.values)
        for name in model.model_fields:
            value = getattr(one.values, name)
            if name in one.bad:
                shown: Any = f"(bad: {one.bad[name].split(': ', 1)[1]})"
            elif value is None:
                shown = None
            elif is_secret(model, name) or isinstance(value, SecretStr):
                shown = "********"
            else:
                shown = value
            out.append({"setting": name, "variable": env_name(name),
                        "option": option_of(model, name), "value": shown,
                        "source": one.sources[name]})
    return out


def table_markdown() -> str:
    """The table of settings for docs/reference.md, from the models (docs/make_reference.py)."""
    lines = ["| variable | option | default | what it sets |", "| --- | --- | --- | --- |"]
    for model in MODELS:
        for name, f in model.model_fields.items():
            default = f.get_default(call_default_factory=True)
            shown = "" if default is None else f"`{default}`"
            option = option_of(model, name)
            lines.append(f"| `{env_name(name)}` | {f'`{option}`' if option else ''} | {shown} | "
                         f"{f.description} |")
    return "\n".join(lines)
