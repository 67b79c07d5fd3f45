"""Accounts in the portal, for the staff who run them: every account, invitations, roles,
disabling, a lost second factor. The same acts as `starfund user ...` (one code path, one
audit event kind per act), so separation of duties is refused here as there: an officer
invites society contacts and experts only; roles, disabling and resets are an approver's.
"""
from __future__ import annotations

from starlette.routing import Route

from lifecycle.acts import invitations, users
from lifecycle.core import accounts, totp
from lifecycle.core.errors import NotFound
from lifecycle.engine import permissions
from states import roles as R

from ..http import Ctx, Page, Redirect, page


def _may_invite(ctx: Ctx) -> None:
    """Those who may invite (`user.invite`) see the page; others get 404, as for anything
    not theirs."""
    try:
        permissions.require(ctx.conn, ctx.actor, "user.invite")
    except permissions.Refused:
        raise NotFound("accounts are run by officers and approvers") from None


@page
def listing(ctx: Ctx):
    _may_invite(ctx)
    rows = accounts.listing(ctx.conn)
    for r in rows:
        r["two_factor"] = totp.enrolled(ctx.conn, r["name"])
    return Page("staff/accounts.html", {
        "accounts": rows, "roles": R.PERSON_ROLES,
        "approver": ctx.actor.holds((R.APPROVER,))})


@page
def invite(ctx: Ctx):
    _may_invite(ctx)
    role = ctx.form.get("role", "")
    target = ctx.form.get("for", "").strip() or None
    r = invitations.invite(
        ctx.conn, ctx.actor, ctx.form.get("name", "").strip(), [role] if role else [],
        society_id=target if role == R.SOCIETY else None,
        expert_id=target if role == R.EXPERT else None,
        email=ctx.form.get("email", "").strip() or None)
    return Redirect("/staff/accounts", ctx.tr(
        f"已向 {r['account']} 发出邀请（{r['expires'][:16]} 前有效）",
        f"Invitation to {r['account']} queued (valid until {r['expires'][:16]})"))


@page
def act(ctx: Ctx):
    """One act on one account: resend its invitation, disable it, grant or revoke a role,
    reset its second factor."""
    _may_invite(ctx)
    name, what = ctx.params["name"], ctx.form.get("act", "")
    if what == "resend":
        invitations.invite(ctx.conn, ctx.actor, name)
        done = ctx.tr("已重新发送邀请", "invitation sent again")
    elif what == "disable":
        users.disable(ctx.conn, ctx.actor, name)
        done = ctx.tr("已停用", "disabled")
    elif what in ("grant", "revoke"):
        role = ctx.form.get("role", "")
        users.change_roles(ctx.conn, ctx.actor, name, [role] if what == "grant" else [],
                           [role] if what == "revoke" else [])
        done = ctx.tr("角色已更改", "roles changed")
    elif what == "reset-2fa":
        users.reset_second_factor(ctx.conn, ctx.actor, name)
        done = ctx.tr("两步验证已重置", "second factor reset")
    else:
        raise NotFound("no such act")
    return Redirect("/staff/accounts", f"{name}: {done}")


routes = [
    Route("/staff/accounts", listing, methods=["GET"]),
    Route("/staff/accounts/invite", invite, methods=["POST"]),
    Route("/staff/accounts/{name}", act, methods=["POST"]),
]
