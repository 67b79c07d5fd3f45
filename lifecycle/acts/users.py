"""Accounts and logins: `starfund user ...`, `login`, `logout`, `whoami`.

Adding, disabling and changing accounts is the approvers' act (`user.manage` in
states.roles) and is audited; the role rules (no forbidden pair, a society or expert
named for those roles) are checked by `permissions.grantable` before anything is written.
"""
from __future__ import annotations

import sys

import click
from sqlalchemy import Connection

from lifecycle.console import Env, common, echo, emit_json, json_option, table
from lifecycle.core import accounts, audit, clock, logins, meta
from lifecycle.core.accounts import Actor
from lifecycle.core.errors import BadValue
from lifecycle.engine import permissions
from states import roles as R


def add(conn: Connection, actor: Actor | str, name: str, roles: list[str], *,
        society_id: str | None = None, expert_id: str | None = None, email: str | None = None,
        password: str | None = None) -> Actor:
    """A new account, by an approver; audited (never with its password)."""
    actor = permissions.require(conn, actor, "user.manage")
    wanted = permissions.grantable(roles, society_id, expert_id)
    made = accounts.add(conn, name, wanted, society_id=society_id, expert_id=expert_id,
                        email=email, password=password)
    audit.record(conn, actor, [audit.Event("account_add", payload={
        "account": made.name, "roles": wanted, "society": society_id, "expert": expert_id,
        "email": email, "password_set": bool(password)})])
    return made


def change_roles(conn: Connection, actor: Actor | str, name: str, grant: list[str],
                 revoke: list[str]) -> list[str]:
    actor = permissions.require(conn, actor, "user.manage")
    row = accounts.get(conn, name)
    now_roles = (set(row.roles.split()) | set(grant)) - set(revoke)
    wanted = permissions.grantable(now_roles, row.society_id if R.SOCIETY in now_roles else None,
                                   row.expert_id if R.EXPERT in now_roles else None)
    if actor.name == name and R.APPROVER in revoke and R.APPROVER in actor.roles:
        raise BadValue("you cannot take the approver role from yourself (another approver can)")
    accounts.set_roles(conn, name, wanted)
    audit.record(conn, actor, [audit.Event("account_roles", payload={
        "account": name, "before": row.roles.split(), "after": wanted})])
    return wanted


def disable(conn: Connection, actor: Actor | str, name: str) -> bool:
    actor = permissions.require(conn, actor, "user.manage")
    if actor.name == name:
        raise BadValue("you cannot disable your own account (another approver can)")
    done = accounts.disable(conn, name)
    if done:
        audit.record(conn, actor, [audit.Event("account_disable", payload={"account": name})])
    return done


def set_password(conn: Connection, actor: Actor | str, name: str, password: str,
                 keep_token: str | None = None) -> int:
    """Anyone may set their own password; an approver may set anyone's. Every session of
    the account ends but `keep_token` (the one that changed it: its owner stays signed in);
    returns how many ended."""
    actor = accounts.resolve(conn, actor)
    if actor.name != name:
        actor = permissions.require(conn, actor, "user.manage")
    ended = accounts.set_password(conn, name, password, keep_token)
    audit.record(conn, actor, [audit.Event("account_password", payload={
        "account": name, "sessions_ended": ended})])
    return ended


def _password(from_stdin: bool, confirm: bool = True) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    return click.prompt("password", hide_input=True, confirmation_prompt=confirm)


# --- commands -----------------------------------------------------------------------------

@click.group("user")
def user_group() -> None:
    """Accounts: who may act, with which roles."""


@user_group.command("add")
@click.argument("name")
@click.option("--role", "roles", multiple=True, required=True, metavar="ROLE",
              help=f"A role (repeatable): {', '.join(R.PERSON_ROLES)}.")
@click.option("--society", "society_id", metavar="ID", help="For the society role: which society.")
@click.option("--expert", "expert_id", metavar="ID", help="For the expert role: which expert.")
@click.option("--email", metavar="ADDRESS", help="Where the account's mail goes (auditors: anchors).")
@click.option("--password-stdin", is_flag=True,
              help="Read a password (for `starfund login` and the portal) from standard input.")
@common
def user_add(env: Env, name: str, roles: tuple[str, ...], society_id: str | None,
             expert_id: str | None, email: str | None, password_stdin: bool) -> None:
    """Add an account (approvers only). A person may hold several roles, except approver and
    auditor together; the society and expert roles name whose contact the account is.

    \b
    Example:  starfund user add wang-fang --role finance
              starfund user add li-lei --role coordinator --role officer
              starfund user add s01-contact --role society --society S01 --password-stdin
    """
    password = _password(True) if password_stdin else None
    with env.engine.begin() as conn:
        made = add(conn, env.actor, name, list(roles), society_id=society_id,
                   expert_id=expert_id, email=email, password=password)
    echo(f"account {made.name} added: {', '.join(sorted(made.roles))}")


@user_group.command("list")
@json_option
@common
def user_list(env: Env) -> None:
    """Every account, its roles and whether it is disabled.

    \b
    Example:  starfund user list --json
    """
    with env.engine.connect() as conn:
        rows = accounts.listing(conn)
    if env.as_json:
        return emit_json(rows)
    table("accounts", ["name", "roles", "for", "email", "password", "created", "disabled"],
          [[r["name"], " ".join(r["roles"]), r["society"] or r["expert"] or "", r["email"],
            "yes" if r["has_password"] else "", r["created_at"][:10],
            (r["disabled_at"] or "")[:10]] for r in rows])


@user_group.command("disable")
@click.argument("name")
@common
def user_disable(env: Env, name: str) -> None:
    """Disable an account and end its logins (approvers only); its past acts stay in the trail.

    \b
    Example:  starfund user disable zhang-san
    """
    with env.engine.begin() as conn:
        done = disable(conn, env.actor, name)
    echo(f"account {name} disabled" if done else f"account {name} was disabled already")


def unlock(conn: Connection, actor: Actor | str, name: str) -> int:
    """Forget an account's failed sign-ins (an approver): whoever was slowed signs in again."""
    from sqlalchemy import delete

    from lifecycle.core.models import LoginAttempt

    actor = permissions.require(conn, actor, "user.manage")
    accounts.get(conn, name)
    n = conn.execute(delete(LoginAttempt).where(LoginAttempt.account == name)).rowcount or 0
    audit.record(conn, actor, [audit.Event("account_unlock", payload={
        "account": name, "failures_cleared": n})])
    return n


def reset_second_factor(conn: Connection, actor: Actor | str, name: str) -> None:
    """Turn off NAME's second factor (they lost their phone): an approver's act, never on
    their own account; NAME enrols again at their next sign-in."""
    from lifecycle.core import totp

    actor = permissions.require(conn, actor, "user.manage")
    if name in (actor.name, actor.by):
        raise permissions.Refused("nobody resets their own second factor; another approver "
                                  "must")
    accounts.get(conn, name)
    if not totp.enrolled(conn, name):
        raise BadValue(f"{name} has no second factor to reset")
    totp.reset(conn, name)
    conn.execute(delete_tokens(name))
    audit.record(conn, actor, [audit.Event("account_2fa_reset", payload={"account": name})])


def delete_tokens(name: str):
    from sqlalchemy import delete

    from lifecycle.core.models import AccountToken

    return delete(AccountToken).where(AccountToken.account == name)


@user_group.command("reset-2fa")
@click.argument("name")
@common
def user_reset_2fa(env: Env, name: str) -> None:
    """Turn off NAME's second factor, e.g. after a lost phone (approvers; never your own);
    their sessions end and they enrol again at their next sign-in.

    \b
    Example:  starfund user reset-2fa wang-fang
    """
    with env.engine.begin() as conn:
        reset_second_factor(conn, env.actor, name)
    echo(f"the second factor of {name} was reset; they enrol again at their next sign-in")


@user_group.command("unlock")
@click.argument("name")
@common
def user_unlock(env: Env, name: str) -> None:
    """Forget NAME's failed sign-ins, from every address (approvers): its slowed sign-ins work
    again at once.

    \b
    Example:  starfund user unlock s01-contact
    """
    with env.engine.begin() as conn:
        n = unlock(conn, env.actor, name)
    echo(f"{n} failed sign-in(s) of {name} forgotten")


@user_group.command("roles")
@click.argument("name", required=False)
@click.option("--grant", multiple=True, metavar="ROLE", help="Give NAME this role (repeatable).")
@click.option("--revoke", multiple=True, metavar="ROLE", help="Take this role from NAME.")
@json_option
@common
def user_roles(env: Env, name: str | None, grant: tuple[str, ...], revoke: tuple[str, ...]) -> None:
    """Without NAME: the roles, what each may do, and the separation-of-duties rules.
    With NAME and --grant/--revoke: change that account's roles (approvers only).

    \b
    Example:  starfund user roles
              starfund user roles li-lei --grant approver
    """
    if name:
        if not grant and not revoke:
            raise click.UsageError("give --grant ROLE or --revoke ROLE to change NAME's roles")
        with env.engine.begin() as conn:
            after = change_roles(conn, env.actor, name, list(grant), list(revoke))
        echo(f"{name}: {', '.join(after)}")
        return
    _ = env.actor  # reading the table is staff's too
    acts = {r.name: [a.name for a in R.ACTS if r.name in a.who] for r in R.ROLES}
    if env.as_json:
        return emit_json({"roles": [{"name": r.name, "label": r.label, "does": r.does,
                                     "acts": acts[r.name]} for r in R.ROLES],
                          "duties": [d.__dict__ for d in R.DUTIES]})
    table("roles", ["role", "", "does", "administrative acts"],
          [[r.name, r.label, r.does, ", ".join(acts[r.name])] for r in R.ROLES])
    table("separation of duties (per call: [separation] in the call file)",
          ["rule", "forbids", "default"],
          [[d.name, d.forbids, "on" if d.default else "off"] for d in R.DUTIES])
    echo("who may fire each move: `starfund workflow show WORKFLOW`")


@user_group.command("password")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@common
def user_password(env: Env, name: str, password_stdin: bool) -> None:
    """Set an account's password (your own, or anyone's as an approver).

    \b
    Example:  starfund user password li-lei
    """
    password = _password(password_stdin)
    with env.engine.begin() as conn:
        mine = logins.token_for(meta.database_id(conn))
        keep = mine[1] if mine and mine[0] == name else None
        ended = set_password(conn, env.actor, name, password, keep)
    echo(f"password of {name} set" + (f"; {ended} other session(s) of it ended" if ended
                                      else ""))


@click.command("login")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@common
def login(env: Env, name: str, password_stdin: bool) -> None:
    """Log in to this database as NAME: later commands act as NAME (until `logout`).

    The token is kept in your config directory (~/.config/starfund/logins.json,
    readable by you only) and ends after 30 days, at `logout`, or when the
    account is disabled.

    \b
    Example:  starfund login li-lei --db programme.db
    """
    password = _password(password_stdin, confirm=False)
    e = _open(env)
    with e.begin() as conn:
        actor = accounts.check_password(conn, name, password)
        token = accounts.issue_token(conn, actor.name)
        database_id = meta.database_id(conn)
        audit.record(conn, actor, [audit.Event("login", payload={"account": actor.name,
                                                                 "door": "command line"})])
    path = logins.keep(database_id, actor.name, token)
    echo(f"logged in as {actor.name} ({', '.join(sorted(actor.roles))}); token kept in {path}")


@click.command("logout")
@common
def logout(env: Env) -> None:
    """End your login to this database (commands then act as your OS user's account).

    \b
    Example:  starfund logout
    """
    e = _open(env)
    with e.begin() as conn:
        token = logins.forget(meta.database_id(conn))
        if token:
            accounts.end_token(conn, token)
    echo("logged out" if token else "you were not logged in to this database")


@click.command("whoami")
@json_option
@common
def whoami(env: Env) -> None:
    """Who you act as on this database, with which roles, and how starfund knows.

    \b
    Example:  starfund whoami
    """
    actor = env.actor
    data = {"account": actor.name, "roles": sorted(actor.roles), "by": actor.by,
            "society": actor.society_id, "expert": actor.expert_id, "how": env.how,
            "database": env.mode}
    if env.as_json:
        return emit_json(data)
    echo(f"{actor.label}: {', '.join(sorted(actor.roles))} ({env.how}); database {env.mode}")


def _open(env: Env):
    """The database without finding who acts (login and logout come before that); a
    simulated time is refused on a live one here too."""
    e = env.database()
    with e.connect() as conn:
        meta.refuse_simulated_time(meta.mode(conn), clock.simulated())
    return e


def _invitations() -> None:
    """`user invite` and `user revoke-invite` live beside their acts."""
    from lifecycle.acts.invitations import user_invite, user_revoke_invite

    user_group.add_command(user_invite)
    user_group.add_command(user_revoke_invite)


_invitations()
