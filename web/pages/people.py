"""People's own doors: accept an invitation, reset a forgotten password, the second factor at
sign-in (and its enrolment), and one's account page (password, sessions).

Every form carries its CSRF token (the pre-login cookie's before a session exists). Links
are single-use and expire (`lifecycle.core.links`); a forgotten-password request is answered
alike whether the account exists. The acts are those of the command line
(`lifecycle.acts.invitations`, `lifecycle.core.totp`), audited by account id.
"""
from __future__ import annotations

import hashlib
import hmac
from datetime import timedelta

from sqlalchemy import select
from starlette.routing import Route

from lifecycle.acts import invitations
from lifecycle.core import accounts, audit, clock, links, meta, settings, totp
from lifecycle.core.accounts import Actor, Refused
from lifecycle.core.errors import BadValue, NotFound
from lifecycle.core.models import AccountToken, LoginAttempt

from .. import session
from ..http import Ctx, Page, Redirect, cookie_options, page
from .landing import home_of

SECOND = "starfund_2fa"
"""The cookie of a sign-in whose password was right and whose second factor is still due."""
SECOND_STEP = "2fa"
STEP_MINUTES = 5


# --- the second factor at sign-in (called by account.login) ------------------------------------

def second_factor_due(ctx: Ctx, actor: Actor) -> str | None:
    """Where a sign-in whose password was right goes next when a second factor is due (its
    code, or its enrolment when the role needs one and there is none); None: sign in now."""
    enrolled = totp.enrolled(ctx.conn, actor.name)
    needed = totp.required(actor.roles, meta.mode(ctx.conn) == meta.LIVE,
                           settings.load().get("two_factor_roles"))
    if not enrolled and not needed:
        return None
    link = links.create(ctx.conn, actor.name, SECOND_STEP, actor.name,
                        timedelta(minutes=STEP_MINUTES))
    token = links.issue(ctx.conn, link)
    ctx.cookies.append((SECOND, token, cookie_options(ctx.request, STEP_MINUTES * 60)))
    return "/login/code" if enrolled else "/login/enrol"


def _csrf(ctx: Ctx) -> str:
    """The token this page's form must echo: the session's, else the pre-login cookie's (set
    now when a link from a message is the first page of this browser)."""
    if ctx.actor is not None:
        return session.csrf_of(ctx.request)
    pre = ctx.request.cookies.get(session.PRE_COOKIE)
    if not pre:
        pre = session.new_pre_token()
        ctx.cookies.append((session.PRE_COOKIE, pre, cookie_options(ctx.request, 3600)))
    return session.csrf_for(pre)


def _pending(ctx: Ctx) -> str:
    """The account whose second step this is (NotFound once it expired or was used)."""
    token = ctx.request.cookies.get(SECOND, "")
    if not token:
        raise NotFound("no sign-in is waiting for its second step: log in again")
    return links.lookup(ctx.conn, token, SECOND_STEP).account


def _signed_in(ctx: Ctx, name: str) -> None:
    """End the second step and open the session."""
    links.redeem(ctx.conn, ctx.request.cookies.get(SECOND, ""), SECOND_STEP)
    life = session.lifetime(accounts.load(ctx.conn, name))
    token = accounts.issue_token(ctx.conn, name, days=life.total_seconds() / 86400)
    ctx.cookies.append((session.COOKIE, token,
                        cookie_options(ctx.request, int(life.total_seconds()))))
    ctx.cookies.append((SECOND, "", cookie_options(ctx.request, 0)))


@page(login=False, consent=False)
def code_form(ctx: Ctx):
    return Page("people/code.html", {"account": _pending(ctx), "error": "", "csrf": _csrf(ctx)})


@page(login=False, consent=False)
def code(ctx: Ctx):
    name = _pending(ctx)
    key = audit.chain_key(ctx.conn)
    why = session.throttled(ctx.conn, name, session.address_of(ctx.request))
    if why or not totp.check(ctx.conn, key, name, ctx.form.get("code", "")):
        ctx.conn.execute(LoginAttempt.__table__.insert().values(
            account=name, address=session.address_of(ctx.request), at=clock.wall()))
        return Page("people/code.html", {"account": name, "csrf": _csrf(ctx), "error": ctx.w.say(why) if why else ctx.tr(
            "验证码不对，请输入手机上当前的 6 位数字或一个恢复码",
            "Wrong code: give the 6 digits your app shows now, or a recovery code")},
                    status=401)
    _signed_in(ctx, name)
    return Redirect(home_of(accounts.load(ctx.conn, name)),
                    ctx.tr(f"欢迎，{name}", f"Welcome, {name}"))


def _enrol_mac(ctx: Ctx, name: str, secret: str) -> str:
    key = audit.chain_key(ctx.conn)
    return hmac.new(hashlib.sha256(b"starfund enrol/1" + key.secret).digest(),
                    f"{name}\x1f{secret}".encode(), "sha256").hexdigest()


@page(login=False, consent=False)
def enrol_form(ctx: Ctx):
    name = _pending(ctx)
    secret = totp.new_secret()
    return Page("people/enrol.html", {
        "account": name, "secret": secret, "mac": _enrol_mac(ctx, name, secret),
        "qr": totp.qr_svg(totp.uri(name, secret)), "error": "", "csrf": _csrf(ctx)})


@page(login=False, consent=False)
def enrol(ctx: Ctx):
    name = _pending(ctx)
    secret, mac = ctx.form.get("secret", ""), ctx.form.get("mac", "")
    if not hmac.compare_digest(mac, _enrol_mac(ctx, name, secret)):
        raise Refused("the enrolment form was changed; log in again")
    try:
        codes = totp.enrol(ctx.conn, audit.chain_key(ctx.conn), name, secret,
                           ctx.form.get("code", ""))
    except BadValue as e:
        return Page("people/enrol.html", {
            "account": name, "secret": secret, "mac": mac,
            "qr": totp.qr_svg(totp.uri(name, secret)), "error": ctx.w.say(e),
            "csrf": _csrf(ctx)}, status=400)
    audit.record(ctx.conn, name, [audit.Event("account_2fa_enrol", payload={"account": name})])
    _signed_in(ctx, name)
    return Page("people/codes.html", {"codes": codes,
                                      "next": home_of(accounts.load(ctx.conn, name))})


# --- invitations and resets -----------------------------------------------------------------

def _set_password_page(ctx: Ctx, purpose: str, error: str = "", status: int = 200) -> Page:
    row = links.lookup(ctx.conn, ctx.params["token"], purpose)
    return Page("people/password.html", {"account": row.account, "purpose": purpose,
                                         "error": error, "csrf": _csrf(ctx)}, status=status)


def _accept(ctx: Ctx, purpose: str):
    new, again = ctx.form.get("password", ""), ctx.form.get("again", "")
    if new != again:
        return _set_password_page(ctx, purpose, ctx.tr("两次输入的密码不一致",
                                                       "The two passwords differ"), 400)
    try:
        name = invitations.accept(ctx.conn, ctx.params["token"], new, purpose)
    except BadValue as e:
        return _set_password_page(ctx, purpose, ctx.w.say(e), 400)
    return Redirect("/login", ctx.tr(f"账号 {name} 的密码已设置，请登录",
                                     f"The password of {name} is set: log in"))


@page(login=False, consent=False)
def invite_form(ctx: Ctx):
    return _set_password_page(ctx, links.INVITE)


@page(login=False, consent=False)
def invite(ctx: Ctx):
    return _accept(ctx, links.INVITE)


@page(login=False, consent=False)
def reset_form(ctx: Ctx):
    return _set_password_page(ctx, links.RESET)


@page(login=False, consent=False)
def reset(ctx: Ctx):
    return _accept(ctx, links.RESET)


@page(login=False, consent=False)
def forgot_form(ctx: Ctx):
    return Page("people/forgot.html", {"csrf": _csrf(ctx)})


@page(login=False, consent=False)
def forgot(ctx: Ctx):
    """The same answer whatever was given (no account enumeration)."""
    invitations.request_reset(ctx.conn, ctx.form.get("name", ""))
    return Redirect("/login", ctx.tr(
        "如果该账号或地址存在，重设密码的链接已发往账号登记的邮箱（1 小时内有效）",
        "If that account or address exists, a link to reset its password was sent to its "
        "address (valid for an hour)"))


# --- one's own account ----------------------------------------------------------------------

def _sessions(ctx: Ctx) -> list[dict]:
    mine = session.token_hash_of(ctx.request)
    rows = ctx.conn.execute(select(AccountToken.token_hash, AccountToken.created_at,
                                   AccountToken.expires_at)
                            .where(AccountToken.account == ctx.actor.name)
                            .order_by(AccountToken.created_at))
    return [{"id": r.token_hash[:12], "created": r.created_at, "expires": r.expires_at,
             "current": r.token_hash == mine} for r in rows]


@page(consent=False)
def account_page(ctx: Ctx):
    return Page("people/account.html", {"sessions": _sessions(ctx),
                                        "two_factor": totp.enrolled(ctx.conn, ctx.actor.name)})


@page(consent=False)
def change_password(ctx: Ctx):
    """A new password (the current one first); every other session of the account ends."""
    row = accounts.get(ctx.conn, ctx.actor.name)
    if not accounts.password_matches(row.password_hash, ctx.form.get("current", "")):
        raise BadValue(ctx.tr("当前密码不对", "The current password is wrong"))
    if ctx.form.get("password", "") != ctx.form.get("again", ""):
        raise BadValue(ctx.tr("两次输入的密码不一致", "The two passwords differ"))
    from lifecycle.acts import users

    ended = users.set_password(ctx.conn, ctx.actor, ctx.actor.name, ctx.form["password"],
                               keep_token=ctx.request.cookies.get(session.COOKIE))
    return Redirect("/account", ctx.tr(f"密码已更改；其他 {ended} 个登录已注销",
                                       f"Password changed; {ended} other session(s) ended"))


@page(consent=False)
def end_sessions(ctx: Ctx):
    """End every other session of one's account (another browser, a lost laptop)."""
    mine = session.token_hash_of(ctx.request)
    n = ctx.conn.execute(AccountToken.__table__.delete().where(
        AccountToken.account == ctx.actor.name, AccountToken.token_hash != mine)).rowcount
    audit.record(ctx.conn, ctx.actor, [audit.Event("account_sessions_end", payload={
        "account": ctx.actor.name, "ended": n})])
    return Redirect("/account", ctx.tr(f"已注销其他 {n} 个登录", f"{n} other session(s) ended"))


routes = [
    Route("/login/code", code_form, methods=["GET"]),
    Route("/login/code", code, methods=["POST"]),
    Route("/login/enrol", enrol_form, methods=["GET"]),
    Route("/login/enrol", enrol, methods=["POST"]),
    Route("/invite/{token}", invite_form, methods=["GET"]),
    Route("/invite/{token}", invite, methods=["POST"]),
    Route("/reset/{token}", reset_form, methods=["GET"]),
    Route("/reset/{token}", reset, methods=["POST"]),
    Route("/forgot", forgot_form, methods=["GET"]),
    Route("/forgot", forgot, methods=["POST"]),
    Route("/account", account_page, methods=["GET"]),
    Route("/account/password", change_password, methods=["POST"]),
    Route("/account/sessions/end", end_sessions, methods=["POST"]),
]
