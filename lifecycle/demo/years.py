"""The demo's later acts of each programme year: assessment and money, the star rating, and
what one year carries into the next (bars, stars, rewards, steady support for outstanding
projects, model societies). Driven through the same engine, importers and commands' functions
as real work, with the clock moved step by step.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.table import Table
from sqlalchemy import func, select

from lifecycle import kinds
from lifecycle.acts import assessing, calls, notice, payments, stars
from lifecycle.core import accounts, callconfig, clock, db
from lifecycle.core.models import (
    Account,
    Application,
    AssessmentRecord,
    AuditEvent,
    Call,
    Expert,
    StarRecord,
    StarStatus,
)
from lifecycle.demo.data.names import MODEL_RULES, STAR_CLASSES
from lifecycle.engine import engine
from lifecycle.reporting import figures
from lifecycle.rules.eligibility import barred_societies
from states import star_declaration
from states.assessment import ASSESSMENT_DUE
from states.declaration import ELIGIBLE
from states.outcome import BARS_NEXT_CALLS
from states.roles import APPROVER, COORDINATOR, FINANCE, OFFICER

if TYPE_CHECKING:
    from lifecycle.demo import Demo

STAR_EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "star-call.toml"


def with_checkpoints(config: dict[str, Any], year: int) -> None:
    """The demo's project calls: a mid-term check and a final acceptance, paid 50/30/20."""
    config["assessment"]["checkpoints"] = [
        {"id": "midterm", "name": "中期检查", "name_en": "Mid-term check",
         "report_due": datetime(year, 9, 15, 17)},
        {"id": "final", "name": "结题验收", "name_en": "Final acceptance",
         "report_due": datetime(year, 12, 15, 17)}]
    config["payments"] = {"mode": "instalments", "recover_percent": 100, "instalments": [
        {"label": "首期 first instalment", "percent": 50, "release": "award"},
        {"label": "中期 after the mid-term check", "percent": 30, "release": "midterm"},
        {"label": "尾款 after final acceptance", "percent": 20, "release": "final"}]}


def carried_over(d: "Demo", call_id: str) -> None:
    """Print which societies last years' outcomes bar from this call, before its formal check."""
    with d.db.connect() as conn:
        from lifecycle.engine import engine

        barred = barred_societies(conn, BARS_NEXT_CALLS, engine.load_call(conn, call_id),
                                  kinds=kinds.history().bars)
        declared = set(conn.execute(select(Application.society_id)
                                    .where(Application.call_id == call_id)).scalars())
    hit = {s: why for s, why in barred.items() if s in declared}
    if barred:
        d.out.print(f"  carried over: {len(barred)} societies barred from {call_id} by earlier "
                    f"failures; {len(hit)} of them declared and will fail the formal check:")
        for s, why in sorted(hit.items())[:6]:
            d.out.print(f"    {s}: {why}")
        if len(hit) > 6:
            d.out.print(f"    ... and {len(hit) - 6} more (starfund society show ID)")


def continuations(d: "Demo", call_id: str, year: int, most: int = 3) -> list[dict[str, Any]]:
    """A few societies whose project of last year's call was graded 优秀 at its final acceptance
    declare its continuation (the `continues` column): steady support may fund it without
    competing."""
    last = f"{year - 1}-project"
    with d.db.connect() as conn:
        if conn.execute(select(Call.id).where(Call.id == last)).first() is None:
            return []
        best = conn.execute(select(Application.id, Application.society_id, Application.category,
                                   Application.title, Application.title_en,
                                   Application.requested_amount, Application.discipline)
                            .join(AssessmentRecord,
                                  AssessmentRecord.application_id == Application.id)
                            .where(AssessmentRecord.call_id == last,
                                   AssessmentRecord.checkpoint == "final",
                                   AssessmentRecord.grade == "优秀")
                            .order_by(Application.id)).all()
    rows = [{"society_id": a.society_id, "category": a.category,
             "title": f"{a.title}（延续）", "title_en": f"{a.title_en} (continued)",
             "requested_amount": a.requested_amount, "discipline": a.discipline,
             "summary": f"延续 {a.id}。", "continues": a.id} for a in best[:most]]
    if rows:
        d.out.print(f"  {len(rows)} societies graded 优秀 in {last} declare a continuation: "
                    + ", ".join(f"{r['society_id']} ({r['continues']})" for r in rows))
    return rows


def fund_continuations(d: "Demo", call_id: str, when: datetime) -> None:
    """Continuations of outstanding projects go to funding without competing (稳定支持)."""
    with d.db.connect() as conn:
        waiting = conn.execute(select(Application.id, Application.fields).where(
            Application.call_id == call_id, Application.state == ELIGIBLE)).all()
    if not any((a.fields or {}).get("continues") for a in waiting):
        return
    d.at(when, "continuations of outstanding projects funded without competing (稳定支持)")
    with d.db.begin() as conn:
        r = engine.advance(conn, call_id, "fund_continuation", d.staff[OFFICER])
    for app_id in r.moved_ids:
        with d.db.connect() as conn:
            why = conn.execute(select(Application.decision_reason)
                               .where(Application.id == app_id)).scalar()
        d.out.print(f"  {app_id}: {why}")
    d.out.print(f"  {r.moved_total} continued; the other {r.skipped_total} eligible declarations "
                "compete")


def bonuses(d: "Demo", call_id: str) -> None:
    """Which rankings an earlier 优秀 changed, as the `support` audit events say."""
    with d.db.connect() as conn:
        used = conn.execute(select(AuditEvent.application_id).where(
            AuditEvent.call_id == call_id, AuditEvent.action == "support")
            .order_by(AuditEvent.seq)).scalars().all()
        ranked = conn.execute(select(Application.id, Application.decision_reason).where(
            Application.id.in_(used), Application.rank.is_not(None))
            .order_by(Application.recommended.desc(), Application.id)).all()
    if ranked:
        d.out.print(f"  {len(ranked)} ranked with a bonus for an earlier 优秀 (starfund rank "
                    f"{call_id}), e.g.:")
        for a in ranked[:2]:
            d.out.print(f"    {a.id}: {a.decision_reason}")


def pay(d: "Demo", call_id: str) -> None:
    with db.transaction(d.db) as s:
        try:
            r = payments.pay(s.connection(), call_id, d.staff[FINANCE])
        except payments.PaymentError:
            return
    d.out.print(f"  payments pay {call_id}: {r['instalments']} instalments, "
                f"{r['amount']:,} yuan")


def grade(d: "Demo", call_id: str, checkpoint: str, mean: float) -> None:
    with d.db.connect() as conn:
        due = list(conn.execute(select(Application.id).where(
            Application.call_id == call_id, Application.state == ASSESSMENT_DUE)
            .order_by(Application.id)).scalars())
    for app_id in due[:3]:
        report = d.work / f"{app_id}-{checkpoint}.txt"
        report.write_text(f"{app_id} {checkpoint} performance report\n", encoding="utf-8")
        with db.transaction(d.db) as s:
            assessing.record_report(s.connection(), app_id, report, d.staff[OFFICER])
    d.out.print(f"  {min(3, len(due))} reports recorded (starfund assessment report ...)")
    base = {a: d.rng.gauss(mean, 10) for a in due}
    rows = [{"application_id": a, "grader": g,
             "score": min(100, max(30, round(base[a] + d.rng.gauss(0, 3), 1)))}
            for a in due for g in ("E-panel-1", "E-panel-2")]
    path = d.write_csv(f"{call_id}-{checkpoint}-grades.csv", rows)
    with db.transaction(d.db) as s:
        r = assessing.import_grades(s.connection(), call_id, path, d.staff[COORDINATOR])
    per = ", ".join(f"{k} {v}" for k, v in r.items() if k not in ("graded", "rows"))
    d.out.print(f"  grades imported: {r['graded']} projects ({per})")


def assessment(d: "Demo", call_id: str, year: int, between=None) -> None:
    """Mid-term check and final acceptance: reports, grades, outcomes, one override, money.

    `between` runs after the mid-term outcomes (the demo's star management in November).
    """
    pay(d, call_id)
    for checkpoint, opens, due in (("midterm", datetime(year, 9, 1), datetime(year, 9, 15, 17)),
                                   ("final", datetime(year, 11, 20), datetime(year, 12, 15, 17))):
        d.at(opens, f"{checkpoint} assessment opens (绩效考核)")
        d.advance(call_id, "open_assessment")
        d.send()
        d.at(due, f"{checkpoint} reports due; grades imported")
        grade(d, call_id, checkpoint, 84 if checkpoint == "midterm" else 86)
        d.advance(call_id, "assess", actor=accounts.system())
        d.at(due + timedelta(days=5), f"{checkpoint} outcomes (动态管理)")
        with d.db.connect() as conn:
            failing = [p for p in assessing.proposals(conn, call_id)
                       if p["proposed"] == "terminate"]
        if failing:
            f = failing[0]
            with d.db.begin() as conn:
                assessing.override(conn, f["application"], "continue",
                                   "report shows the venue was closed by the city; the leadership "
                                   "group keeps the project going", d.staff[APPROVER])
            d.out.print(f"  outcome override: {f['application']} (grade {f['grade']}) -> "
                        "continue, with reason")
        d.advance(call_id, "decide_outcome")
        if checkpoint == "final":
            d.advance(call_id, "complete")
        d.send()
        pay(d, call_id)
        if checkpoint == "midterm" and between is not None:
            between()
    with d.db.connect() as conn:
        m = payments.money(conn, call_id)
    d.out.print(f"  money of {call_id}: paid {m['paid']:,}  due {m['due']:,}  withheld "
                f"{m['withheld']:,}  to recover {m['to_recover']:,}")
    d.counts(call_id)


def _star_config(year: int) -> callconfig.CallConfig:
    cfg = kinds.load(STAR_EXAMPLE).model_dump(exclude_unset=True)
    cfg["star"]["classes"], cfg["star"]["model"] = STAR_CLASSES, MODEL_RULES
    cfg["id"], cfg["title"] = f"{year}-star", f"{year}年度星级学会评定"
    cfg["title_en"] = f"{year} star rating of societies"
    for k in ("declaration_opens", "declaration_closes", "review_due"):
        v = cfg["calendar"][k]
        cfg["calendar"][k] = v.replace(year=year)
    return kinds.parse(cfg, "examples/star-call.toml")


def star_year(d: "Demo", year: int, n: int = 24) -> str:
    """One star call: self-evaluations, check, experts, levels, notice, stars and rewards."""
    rng = d.rng
    call = _star_config(year)
    cal = call.calendar
    if not hasattr(d, "star_quality"):
        d.star_quality = {s["id"]: rng.uniform(0.45, 0.97) for s in d.societies}
    d.at(cal.declaration_opens - timedelta(days=1), f"star call {call.id} created (以奖代补)")
    with db.transaction(d.db) as s:
        calls.create(s.connection(), call, d.staff[OFFICER], "examples/star-call.toml")
    with d.db.connect() as conn:
        holders = set(conn.execute(select(StarRecord.society_id)
                                   .where(StarRecord.status == StarStatus.ACTIVE)).scalars())
        revoked = set(conn.execute(select(StarRecord.society_id)
                                   .where(StarRecord.status == StarStatus.REVOKED)).scalars())
    pool = sorted(s["id"] for s in d.societies)
    chosen = sorted(holders | revoked | set(rng.sample(pool, n)))
    quality = {}
    for s in chosen:  # a society's work drifts from year to year
        d.star_quality[s] = min(0.98, max(0.4, d.star_quality[s] + rng.gauss(0, 0.06)))
        quality[s] = d.star_quality[s]
    cls = {s["id"]: s.get("class", "") for s in d.societies}

    def rows(column: str, bias: float, noise: float, who: list[str]) -> list[dict]:
        """Scores on each society's class sheet (its own maxima)."""
        out = []
        for s in who:
            sheet = call.star.sheet_for(cls[s]) or call.star.own_sheet()
            out += [{"society_id": s, "indicator": i, column: round(min(top, max(0, top * (
                quality[s] + bias + rng.gauss(0, noise)))), 1)} for i, top in sheet.maxima.items()]
        return out

    d.at(cal.declaration_opens + timedelta(days=14), "self-evaluations filed (自评)")
    with db.transaction(d.db) as s:
        r = stars.import_self_evaluation(s.connection(), call.id,
                                         d.write_csv(f"{call.id}-self.csv",
                                                     rows("self_score", 0.04, 0.02, chosen)),
                                         d.staff[OFFICER])
    d.out.print(f"  {r['declarations']} societies declared ({r['scores']} indicator scores)")
    d.advance(call.id, "submit")
    carried_over_star(d, call.id, chosen)
    d.at(cal.declaration_closes + timedelta(minutes=1), "declaration closes: formal check")
    d.advance(call.id, "close_declaration", actor=accounts.system())
    with d.db.connect() as conn:
        eligible = sorted(conn.execute(select(Application.society_id).where(
            Application.call_id == call.id,
            Application.state == star_declaration.ELIGIBLE)).scalars())
        experts = conn.execute(select(Expert.id, Expert.societies).order_by(Expert.id)).all()
    d.at(cal.declaration_closes + timedelta(days=14), "the association checks every indicator")
    with db.transaction(d.db) as s:
        stars.import_checked(s.connection(), call.id, d.write_csv(
            f"{call.id}-checked.csv", rows("checked_score", 0.0, 0.015, eligible)), d.staff[OFFICER])
    d.advance(call.id, "start_review")
    d.at(cal.review_due - timedelta(days=3), "experts score every indicator (回避 respected)")
    review = []
    for s in eligible:
        free = [e.id for e in experts if s not in (e.societies or [])]
        for e in rng.sample(free, 3):
            review += [{"expert_id": e, **r} for r in rows("score", -0.01, 0.03, [s])]
    with db.transaction(d.db) as s:
        r = stars.import_reviews(s.connection(), call.id,
                                 d.write_csv(f"{call.id}-experts.csv", review),
                                 d.staff[COORDINATOR])
    d.out.print(f"  {r['sheets']} expert sheets for {r['declarations']} societies")
    d.at(cal.review_due + timedelta(minutes=1), "review closes: totals and star levels")
    d.advance(call.id, "close_review", actor=accounts.system())
    with d.db.begin() as conn:
        r = notice.publish(conn, call.id, d.work / f"{call.id}-notice.html",
                           d.staff[APPROVER])
    d.out.print(f"  notice published: {r['listed']} stars, {r['total']:,} yuan in rewards; "
                f"model societies (示范学会) proposed: {', '.join(r['models']) or 'none'}")
    d.send()
    with d.db.connect() as conn:
        from lifecycle.core.models import Deadline

        end = conn.execute(select(Deadline.due_at)
                           .where(Deadline.key == f"{call.id}:notice_ends")).scalar()
    d.at(end, "star notice ends: stars awarded with their rewards")
    d.advance(call.id, "close_notice", actor=accounts.system())
    name_models(d, call.id)
    d.send()
    star_table(d, call.id)
    pay(d, call.id)
    return call.id


def name_models(d: "Demo", call_id: str) -> None:
    """After the notice: the model societies (示范学会) the call's rule names."""
    with d.db.begin() as conn:
        r = engine.advance(conn, call_id, "name_models", d.staff[APPROVER])
    if not r.moved_total:
        d.out.print("  model societies (示范学会): none named yet (the rule needs three star "
                    "calls in a row)")
        return
    with d.db.connect() as conn:
        named = conn.execute(select(Application.society_id, Application.decision_reason)
                             .where(Application.id.in_(r.moved_ids))
                             .order_by(Application.society_id)).all()
    d.out.print(f"  advance name_models: {r.moved_total} named a model society (示范学会):")
    for a in named:
        d.out.print(f"    {a.society_id}: {a.decision_reason}")


def carried_over_star(d: "Demo", call_id: str, chosen: list[str]) -> None:
    from lifecycle.engine import engine
    from states.spec import Context
    from states.star_declaration import load_star_barred

    with d.db.connect() as conn:
        ctx = Context(call=engine.load_call(conn, call_id), now=clock.now(),
                      actor=accounts.load(conn, d.staff[APPROVER]))
        load_star_barred(conn, ctx, [])
    hit = {s: why for s, why in ctx.data["barred"].items() if s in chosen}
    if hit:
        d.out.print(f"  carried over: {len(hit)} declaring societies are barred from {call_id}:")
        for s, why in sorted(hit.items()):
            d.out.print(f"    {s}: {why}")


def star_table(d: "Demo", call_id: str) -> None:
    with d.db.connect() as conn:
        rows = stars.star_table(conn, call_id)
    t = Table(title=f"{call_id}: stars awarded (starfund stars {call_id})", title_justify="left")
    for c in ("society", "class", "stars", "total", "change", "reward"):
        t.add_column(c, justify="right" if c in ("total", "reward") else "left")
    for r in rows:
        t.add_row(r["society"], r["class"], r["stars"], f"{r['total']:g}",
                  r["change"] + (f" (was {r['previous_level']})" if r["previous_level"] else ""),
                  f"{r['reward']:,}")
    d.out.print(t)
    changes: dict[str, int] = {}
    for r in rows:
        changes[r["change"]] = changes.get(r["change"], 0) + 1
    d.out.print(f"  {len(rows)} stars, rewards {sum(r['reward'] for r in rows):,} yuan; "
                + ", ".join(f"{k} {v}" for k, v in sorted(changes.items())))
    with d.db.connect() as conn:
        call = engine.load_call(conn, call_id)
    for k in call.star.classes:
        mine = [r for r in rows if r["class"] == k.id]
        full = sum(call.star.rewards.get(r["level"], 0) for r in mine)
        paid = sum(r["reward"] for r in mine)
        if paid < full:
            d.out.print(f"  {k.id}: rewards of {full:,} cut to {paid:,} to fit the class's "
                        f"{k.reward_share:g}% of the pool ({call.budget_total:,})")


def dynamic_management(d: "Demo", star_call: str, year: int) -> None:
    """Between ratings: one star revoked for a penalty, one for a failed annual inspection."""
    from lifecycle.acts import registry

    with d.db.connect() as conn:
        holders = sorted(conn.execute(select(StarRecord.society_id).where(
            StarRecord.status == StarStatus.ACTIVE, StarRecord.call_id == star_call)).scalars())
    if len(holders) < 2:
        return
    penalised, failed = d.rng.sample(holders, 2)
    d.at(datetime(year, 11, 5), "dynamic management of stars (动态管理)")
    with d.db.begin() as conn:
        r = stars.revoke(conn, penalised, "penalty",
                         f"administrative penalty by the civil affairs bureau, {year}-11-03",
                         d.staff[APPROVER])
    d.out.print(f"  star of {penalised} revoked (penalty, with reason): {r.moved_total} moved")
    soc = [dict(s) for s in d.societies]
    for s in soc:
        if s["id"] == failed:
            s["annual_inspection_passed"] = "否"
    d.societies = soc
    with db.transaction(d.db) as s:
        registry.import_societies(s.connection(), d.write_csv(f"societies-{year}.csv", soc),
                                  d.staff[OFFICER])
    d.out.print(f"  annual inspection (年检) results imported: {failed} failed")
    d.advance(star_call, "review_standing")


def summary(d: "Demo", years: list[int]) -> None:
    """Per year: what the project call and the star call came to, side by side (the figures of
    `lifecycle.reporting.figures.years_table`, which `starfund report --year` draws too)."""
    proj = Table(title="project funding per year", title_justify="left")
    for c in ("year", "funded", "terminated", "ineligible", "paid", "withheld", "to recover"):
        proj.add_column(c, justify="right")
    star = Table(title="star rating per year (stars awarded: new, up, kept, down; lost by the "
                       "rating; revoked later)", title_justify="left")
    for c in ("year", "decl.", "inel.", "new", "up", "kept", "down", "lost", "revoked",
              "rewards"):
        star.add_column(c, justify="right")
    with d.db.connect() as conn:
        rows = figures.years_table(conn, years)
    for y in rows:
        proj.add_row(str(y["year"]), str(y["funded"]), str(y["terminated"]),
                     str(y["ineligible"]), f"{y['paid']:,}", f"{y['withheld']:,}",
                     f"{y['to_recover']:,}")
        star.add_row(str(y["year"]), str(y["star_declared"]), str(y["star_ineligible"]),
                     *(str(y["moves"][k]) for k in figures.MOVES), f"{y['rewards']:,}")
    d.out.print(proj)
    d.out.print(star)


def who_did_what(d: "Demo") -> None:
    """The trail per account: how many events each wrote, and its most frequent acts."""
    t_ = AuditEvent.__table__
    with d.db.connect() as conn:
        roles = dict(conn.execute(select(Account.name, Account.roles)).all())
        rows = conn.execute(select(t_.c.actor, t_.c.action, func.count())
                            .group_by(t_.c.actor, t_.c.action)).all()
    per: dict[str, dict[str, int]] = {}
    for actor, action, n in rows:
        per.setdefault(actor, {})[action] = n
    table = Table(title="who did what (the audit trail per account)", title_justify="left")
    for c in ("account", "roles", "events", "most frequent acts"):
        table.add_column(c, justify="right" if c == "events" else "left")
    for actor, acts in sorted(per.items(), key=lambda kv: -sum(kv[1].values())):
        top = sorted(acts.items(), key=lambda kv: -kv[1])[:4]
        table.add_row(actor, roles.get(actor, "(the system)"),
                      str(sum(acts.values())), ", ".join(f"{a} {n}" for a, n in top))
    d.out.print(table)
