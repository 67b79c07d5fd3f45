"""The demo's one-off grant year (`starfund demo --kind grant`): the grant kind run whole.

Declarations, the formal check fired by its deadline, review, approval on the pass mark in
the order declared, 公示 ended by its deadline, award with instalments, a mid-term check
and a final acceptance with their outcomes, and the money.
"""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from lifecycle import kinds
from lifecycle.acts import notice, reviewing
from lifecycle.core import db
from lifecycle.core.accounts import system
from lifecycle.core.models import Application, Deadline
from lifecycle.demo import years as demo_years
from states.roles import APPROVER, COORDINATOR, OFFICER

GRANT_EXAMPLE = "examples/grant-call.toml"
GRANT_FILE = Path(__file__).resolve().parents[2] / GRANT_EXAMPLE
TITLES = {"exchange": ("{y}年{d}学术交流活动", "{y} {e} academic exchange"),
          "popsci": ("{y}年{d}科普项目", "{y} {e} popular-science project")}


def grant_year(d: Any, year: int, n_apps: int) -> str:
    """One grant call of `year` with `n_apps` declarations, run to its final outcomes (`d`:
    the running `lifecycle.demo.run.Demo`)."""
    config = kinds.load(GRANT_FILE).model_dump(exclude_unset=True)
    shift = year - 2025
    call_id = f"{year}-grant"
    config["id"], config["title"] = call_id, f"{year}年度学术交流一次性资助"
    config["title_en"] = f"{year} one-off grants for academic exchange"
    for k in ("declaration_opens", "declaration_closes", "review_due"):
        v = config["calendar"][k]
        config["calendar"][k] = v.replace(year=v.year + shift)
    for cp in config["assessment"]["checkpoints"]:
        cp["report_due"] = cp["report_due"].replace(year=cp["report_due"].year + shift)
    call = kinds.parse(config, GRANT_EXAMPLE)
    cal = call.calendar
    from lifecycle.acts import calls, declarations

    d.at(cal.declaration_opens - timedelta(days=1), f"grant call {call_id} created")
    with db.transaction(d.db) as s:
        calls.create(s.connection(), call, d.staff[OFFICER], GRANT_EXAMPLE)
    rows = []
    for soc in d.rng.sample(d.societies, min(n_apps, len(d.societies))):
        cat = d.rng.choice(call.categories)
        name = soc["name"][1:].removesuffix("学会").removesuffix("研究会")
        zt, et = TITLES.get(cat.id, ("{y}年{d}项目", "{y} {e} project"))
        rows.append({"society_id": soc["id"], "category": cat.id,
                     "title": zt.format(y=year, d=name),
                     "title_en": et.format(y=year, e=soc["name_en"][5:].rsplit(" ", 1)[0]),
                     "requested_amount": d.rng.randrange(cat.cap // 2, cat.cap + 1, 1000),
                     "discipline": name, "summary": f"{name}相关交流活动。"})
    d.at(cal.declaration_opens + timedelta(days=7), "societies' grant declarations imported")
    with db.transaction(d.db) as s:
        declarations.import_applications(s.connection(), call_id,
                                         d.write_csv(f"{call_id}.csv", rows), d.staff[OFFICER])
    d.at(cal.declaration_closes - timedelta(days=2), "societies submit")
    d.advance(call_id, "submit")
    d.at(cal.declaration_closes + timedelta(minutes=1), "declaration closes: formal check")
    d.run_due()
    d.send()
    d.at(cal.declaration_closes + timedelta(days=1), "experts assigned, review starts")
    with db.transaction(d.db) as s:
        reviewing.assign(s.connection(), call_id, d.staff[COORDINATOR], seed=year)
    d.advance(call_id, "start_review")
    d.at(cal.review_due - timedelta(days=1), "experts return score sheets")
    d.simulate_scores(call_id, call, late=True)
    d.at(cal.review_due + timedelta(minutes=1), "reviews due")
    d.run_due()
    d.at(cal.review_due + timedelta(days=2), "approval on the pass mark, in the order declared")
    d.advance(call_id, "approve")
    with d.db.begin() as conn:
        r = notice.publish(conn, call_id, d.work / f"{call_id}-notice.html", d.staff[APPROVER])
    d.out.print(f"  notice published: {r['listed']} grants, {r['total']:,} yuan")
    with d.db.connect() as conn:
        ends = conn.execute(select(Deadline.due_at)
                            .where(Deadline.key == f"{call_id}:notice_ends")).scalar()
    d.at(ends, "notice ends: award")
    d.run_due()
    d.advance(call_id, "fund")
    d.send()
    demo_years.pay(d, call_id)
    for cp in call.checkpoints():
        d.at(cp.report_due - timedelta(days=14), f"{cp.id} assessment opens")
        d.advance(call_id, "open_assessment")
        d.at(cp.report_due, f"{cp.id} reports due; grades imported")
        demo_years.grade(d, call_id, cp.id, 85)
        d.advance(call_id, "assess", actor=system())
        d.at(cp.report_due + timedelta(days=3), f"{cp.id} outcomes")
        d.advance(call_id, "decide_outcome")
        demo_years.pay(d, call_id)
    d.advance(call_id, "complete")
    d.send()
    d.counts(call_id)
    with d.db.connect() as conn:
        n = conn.execute(select(Application.id).where(Application.call_id == call_id)).all()
    d.out.print(f"  {len(n)} grant applications in {call_id}")
    return call_id

