"""The processing rules (个人信息处理规则): anyone may read them; a society contact or expert
agrees to the version in force here before using the portal (`web.http` sends them here)."""
from __future__ import annotations

from starlette.routing import Route

from lifecycle.acts import consents
from lifecycle.core.errors import BadValue
from lifecycle.engine import permissions

from .. import processing_rules
from ..http import Ctx, Page, Redirect, page
from .account import next_path
from .landing import home_of


@page(login=False, consent=False)
def rules(ctx: Ctx):
    """The rules in force, in the page's language; for a person asked to agree, whether and
    when they did, and the button (a new version after an earlier agreement says so)."""
    actor, version = ctx.actor, processing_rules.VERSION
    asked = processing_rules.needs_consent(actor)
    agreed = consents.given(ctx.conn, actor.name, version) if asked else None
    earlier = [h for h in consents.history(ctx.conn, actor.name) if h["version"] != version] \
        if asked else []
    return Page("privacy.html", {
        "version": version, "text": processing_rules.html(ctx.lang, version), "asked": asked,
        "agreed_at": agreed, "earlier": earlier[-1] if earlier else None,
        "next": next_path(ctx.request.query_params.get("next"))})


@page(consent=False)
def agree(ctx: Ctx):
    """Agree to the version the page showed; refused when the rules changed meanwhile (the
    new version is shown instead), and for staff (`consent.give`: 403)."""
    permissions.require(ctx.conn, ctx.actor, "consent.give")
    shown = ctx.form.get("version", "")
    if shown != processing_rules.VERSION:
        raise BadValue(ctx.tr(f"个人信息处理规则已更新为 {processing_rules.VERSION} 版：请阅读新版本后再同意",
                              f"The processing rules are now version {processing_rules.VERSION}: "
                              "read the new version, then agree"))
    consents.agree(ctx.conn, ctx.actor, shown, door="portal")
    return Redirect(next_path(ctx.form.get("next")) or home_of(ctx.actor),
                    ctx.tr(f"已同意个人信息处理规则（{shown} 版）",
                           f"You agreed to the processing rules (version {shown})"))


routes = [
    Route("/privacy", rules, methods=["GET"]),
    Route("/privacy/agree", agree, methods=["POST"]),
]
