"""Invitations and password resets: people set their own passwords through a single-use link.

`user invite` (an approver; an officer for society contacts and experts only) makes the
account without a password if it is new, and queues the invitation through the outbox
(held for review when many are made at once: `society import --accounts`). The link's
token is made at delivery (`lifecycle.core.links`): the outbox never holds it. The portal's
pages (`web/pages/account.py`) redeem it (`accept`), and take a forgotten-password request
(`request_reset`), answering alike whether the account exists. Each act is audited by
account id, never with an address or a token.
"""
from __future__ import annotations

from datetime import timedelta
from typing import Any

import click
from sqlalchemy import Connection, Engine, select

from lifecycle.console import Env, common, echo, emit_json, json_option
from lifecycle.core import accounts, audit, clock, links
from lifecycle.core.accounts import Actor
from lifecycle.core.errors import BadValue, NotFound
from lifecycle.core.models import Account, Expert, Society
from lifecycle.engine import permissions
from notifications import contexts, delivery
from notifications.queue import Message, enqueue
from notifications.render import Letterhead
from states import roles as R


def invite(conn: Connection, actor: Actor | str, name: str, roles: list[str] | None = None, *,
           society_id: str | None = None, expert_id: str | None = None,
           email: str | None = None, hold: bool = False,
           days: int = links.INVITE_DAYS) -> dict[str, Any]:
    """Invite a person: their account (made now, without a password, when new) and a link to
    set one, queued to their address. Inviting an account that has no password yet sends a
    new link (the old one stops working); one that has a password is refused."""
    actor = permissions.require(conn, actor, "user.invite")
    row = conn.execute(select(Account).where(Account.name == name)).first()
    if row is None:
        wanted = permissions.grantable(roles or [], society_id, expert_id)
        if not actor.holds((R.APPROVER,)) and set(wanted) - {R.SOCIETY, R.EXPERT}:
            raise permissions.Refused(f"{actor.label} may invite society contacts and experts "
                                      "only; staff accounts are an approver's (user.manage)")
        if not email:
            raise BadValue("an invitation needs the person's address (--email)")
        made = accounts.add(conn, name, wanted, society_id=society_id, expert_id=expert_id,
                            email=email)
        audit.record(conn, actor, [audit.Event("account_add", payload={
            "account": made.name, "roles": wanted, "society": society_id,
            "expert": expert_id, "email": email, "password_set": False})])
        row = conn.execute(select(Account).where(Account.name == name)).first()
    elif row.password_hash:
        raise BadValue(f"{name} has a password already: they sign in, or reset it from the "
                       "portal's sign-in page")
    elif row.disabled_at is not None:
        raise BadValue(f"{name} is disabled; an approver enables it before it is invited")
    if not row.email:
        raise BadValue(f"{name} has no address to send the invitation to")
    link_id = links.create(conn, name, links.INVITE, actor.name, timedelta(days=days))
    _queue(conn, contexts.INVITE_KIND, row, link_id, hold)
    audit.record(conn, actor, [audit.Event("account_invite", payload={
        "account": name, "link": link_id, "days": days, "held": hold})])
    return {"account": name, "link": link_id, "held": hold,
            "expires": links.expires(conn, link_id).isoformat(sep=" ")}


def _queue(conn: Connection, kind: str, account: Any, link_id: int, hold: bool) -> None:
    now = clock.now()
    context = contexts.account_link(account.name, account.roles.split(), link_id,
                                    links.expires(conn, link_id), now)
    enqueue(conn, [Message(kind, "account", account.name, account.email,
                           _language(conn, account), f"{kind}:{link_id}", context)],
            now, hold=(lambda _kind: True) if hold else None)


def _language(conn: Connection, account: Any) -> str:
    """The language of the society or expert the account speaks for, else Chinese."""
    if account.society_id:
        return conn.execute(select(Society.language)
                            .where(Society.id == account.society_id)).scalar() or "zh"
    if account.expert_id:
        return conn.execute(select(Expert.language)
                            .where(Expert.id == account.expert_id)).scalar() or "zh"
    return "zh"


def revoke(conn: Connection, actor: Actor | str, name: str) -> int:
    """End the account's open invitation (an approver)."""
    actor = permissions.require(conn, actor, "user.manage")
    accounts.get(conn, name)
    n = links.revoke(conn, name, links.INVITE)
    audit.record(conn, actor, [audit.Event("account_invite_revoke", payload={
        "account": name, "revoked": n})])
    return n


def accept(conn: Connection, token: str, password: str, purpose: str = links.INVITE) -> str:
    """Set the password through an invitation (or reset) link; ends every session of the
    account; returns the account. The link works once."""
    row = links.lookup(conn, token, purpose)
    accounts.check_strength(password, row.account)
    name = links.redeem(conn, token, purpose)
    ended = accounts.set_password(conn, name, password)
    audit.record(conn, name, [audit.Event(
        "account_invite_accept" if purpose == links.INVITE else "account_password_reset",
        payload={"account": name, "link": row.id, "sessions_ended": ended})])
    return name


def request_reset(conn: Connection, name_or_address: str) -> None:
    """A forgotten password: a reset link is queued to the account's address when the name
    or address is an enabled account's with an address, and the account was sent fewer than
    RESETS_PER_HOUR in the last hour. The caller answers alike in every case (no account
    enumeration); nothing is audited for a name that is not an account's."""
    given = name_or_address.strip()[:300]
    if not given:
        return
    row = conn.execute(select(Account).where(
        (Account.name == given) | (Account.email == given),
        Account.disabled_at.is_(None), Account.email.is_not(None))
        .order_by(Account.name).limit(1)).first()
    if row is None or links.recent(conn, row.name, links.RESET, timedelta(hours=1)) \
            >= links.RESETS_PER_HOUR:
        return
    link_id = links.create(conn, row.name, links.RESET, row.name)
    _queue(conn, contexts.RESET_KIND, row, link_id, hold=False)
    audit.record(conn, row.name, [audit.Event("account_reset_request", payload={
        "account": row.name, "link": link_id})])


def _link(db: Engine, row: Any, letterhead: Letterhead) -> dict[str, Any]:
    """Delivery's hook (LINKERS): the link's token, made now, in its own transaction."""
    with db.begin() as conn:
        token = links.issue(conn, int(row.context["link_id"]))
    if token is None:
        return {"link": ""}
    path = "/invite/" if row.kind == contexts.INVITE_KIND else "/reset/"
    return {"link": f"{(letterhead.portal_url or '').rstrip('/')}{path}{token}"}


delivery.LINKERS[contexts.INVITE_KIND] = _link
delivery.LINKERS[contexts.RESET_KIND] = _link


def invite_contacts(conn: Connection, actor: Actor | str, ids: list[str], kind: str
                    ) -> int:
    """`society import --accounts` / `expert import --accounts`: an account for each society
    contact (`<id>-contact`) or expert (`<id>`) that has none, with a held invitation to
    the registry's address; returns how many were invited (a re-import invites nobody twice)."""
    model = Society if kind == R.SOCIETY else Expert
    column = Account.society_id if kind == R.SOCIETY else Account.expert_id
    have = set(conn.execute(select(column).where(column.in_(ids))).scalars())
    rows = conn.execute(select(model.id, model.email).where(model.id.in_(ids),
                                                            model.id.not_in(have))
                        .order_by(model.id)).all()
    invited = 0
    for rid, email in rows:
        if not email:
            continue
        name = f"{rid.lower()}-contact" if kind == R.SOCIETY else rid.lower()
        invite(conn, actor, name, [kind], email=email, hold=True,
               society_id=rid if kind == R.SOCIETY else None,
               expert_id=rid if kind == R.EXPERT else None)
        invited += 1
    return invited


# --- commands: starfund user invite / revoke-invite --------------------------------------------

@click.command("invite")
@click.argument("name")
@click.option("--role", "roles", multiple=True, metavar="ROLE",
              help=f"A role (repeatable, for a new account): {', '.join(R.PERSON_ROLES)}.")
@click.option("--society", "society_id", metavar="ID", help="For the society role: which society.")
@click.option("--expert", "expert_id", metavar="ID", help="For the expert role: which expert.")
@click.option("--email", metavar="ADDRESS", help="Where the invitation goes (a new account).")
@click.option("--days", type=click.IntRange(1, 60), default=links.INVITE_DAYS,
              show_default=True, help="How long the link works.")
@click.option("--hold", is_flag=True, help="Hold the message for review (`notify outbox`).")
@json_option
@common
def user_invite(env: Env, name: str, roles: tuple[str, ...], society_id: str | None,
                expert_id: str | None, email: str | None, days: int, hold: bool) -> None:
    """Invite NAME: the account (new, without a password) and a single-use link to set its
    password, sent through the outbox. Again for an account without a password: a new link.

    \b
    Example:  starfund user invite s01-contact --role society --society S01 --email a@b.cn
              starfund user invite s01-contact            # send a new link
    """
    with env.engine.begin() as conn:
        r = invite(conn, env.actor, name, list(roles), society_id=society_id,
                   expert_id=expert_id, email=email, hold=hold, days=days)
    if env.as_json:
        return emit_json(r)
    echo(f"invitation to {name} queued{' (held for review)' if hold else ''}; the link works "
         f"until {r['expires'][:16]} (`starfund notify send` delivers it)")


@click.command("revoke-invite")
@click.argument("name")
@common
def user_revoke_invite(env: Env, name: str) -> None:
    """End NAME's open invitation link (approvers).

    \b
    Example:  starfund user revoke-invite s01-contact
    """
    with env.engine.begin() as conn:
        n = revoke(conn, env.actor, name)
    if not n:
        raise NotFound(f"{name} has no open invitation")
    echo(f"invitation of {name} revoked")
