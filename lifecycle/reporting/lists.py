"""Applications, societies and experts as rows for lists and exports (one query per kind of
data, never one per row). Account numbers are masked unless `reveal` (the finance role)."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, and_, case, func, select

from lifecycle.core.models import (
    Application,
    Assignment,
    Expert,
    Society,
    StarRecord,
    StarStatus,
)
from lifecycle.core.names import mask_account


def applications(conn: Connection, call_id: str | None = None, state: str | None = None,
                 society: str | None = None, category: str | None = None
                 ) -> list[dict[str, Any]]:
    """Applications (of a call, in a state, of a society, of a category) with their society's
    name: every field a list or an export may show."""
    stmt = (select(Application.id, Application.call_id, Application.society_id, Society.name,
                   Application.category, Application.society_class, Application.title,
                   Application.state, Application.requested_amount,
                   Application.granted_amount, Application.score, Application.rank,
                   Application.assessment_grade, Application.star_level,
                   Application.declared_at)
            .join(Society, Society.id == Application.society_id))
    for column, value in ((Application.call_id, call_id), (Application.state, state),
                          (Application.society_id, society), (Application.category, category)):
        if value is not None:
            stmt = stmt.where(column == value)
    return [{"id": r.id, "call": r.call_id, "society_id": r.society_id, "society": r.name,
             "category": r.category, "class": r.society_class, "title": r.title,
             "state": r.state, "requested": r.requested_amount, "granted": r.granted_amount,
             "score": r.score, "rank": r.rank, "grade": r.assessment_grade,
             "stars": r.star_level, "declared_at": _iso(r.declared_at)}
            for r in conn.execute(stmt)]


def societies(conn: Connection, society_class: str | None = None, reveal: bool = False
              ) -> list[dict[str, Any]]:
    """Societies with their current star, applications made and money granted."""
    apps = {s: (n, g) for s, n, g in conn.execute(
        select(Application.society_id, func.count(),
               func.coalesce(func.sum(Application.granted_amount), 0))
        .group_by(Application.society_id))}
    stars = dict(conn.execute(select(StarRecord.society_id, func.max(StarRecord.level))
                              .where(StarRecord.status == StarStatus.ACTIVE)
                              .group_by(StarRecord.society_id)).all())
    stmt = select(Society.__table__)
    if society_class is not None:
        stmt = stmt.where(Society.society_class == society_class)
    out = []
    for s in conn.execute(stmt):
        n, granted = apps.get(s.id, (0, 0))
        out.append({"id": s.id, "name": s.name, "name_en": s.name_en, "class": s.society_class,
                    "email": s.email, "institution": s.institution,
                    "inspection": bool(s.annual_inspection_passed), "penalty": bool(s.penalty),
                    "stars": stars.get(s.id), "applications": int(n), "granted": int(granted),
                    "payee_name": s.payee_name, "payee_bank": s.payee_bank,
                    "payee_account": s.payee_account if reveal else mask_account(s.payee_account)})
    return out


def experts(conn: Connection, call_id: str | None = None, outstanding: bool = False
            ) -> list[dict[str, Any]]:
    """Experts with their assignments (of a call): how many, returned, still owed, and since
    when the oldest owed one was assigned. `outstanding`: only those who still owe scores."""
    cond = Assignment.status.in_(("assigned", "submitted"))
    if call_id is not None:
        cond = and_(cond, Assignment.call_id == call_id)
    owed = Assignment.status == "assigned"
    counts = {e: (int(n), int(done or 0), int(left or 0), since) for e, n, done, left, since in
              conn.execute(select(Assignment.expert_id, func.count(),
                                  func.sum(case((owed, 0), else_=1)),
                                  func.sum(case((owed, 1), else_=0)),
                                  func.min(case((owed, Assignment.assigned_at), else_=None)))
                           .where(cond).group_by(Assignment.expert_id))}
    out = []
    for x in conn.execute(select(Expert.id, Expert.name, Expert.institution, Expert.email)):
        n, done, left, since = counts.get(x.id, (0, 0, 0, None))
        if outstanding and not left:
            continue
        if call_id is not None and not n and not outstanding:
            continue
        out.append({"id": x.id, "name": x.name, "institution": x.institution, "email": x.email,
                    "assigned": n, "returned": done, "outstanding": left,
                    "since": _iso(since) if left else None})
    return out


def _iso(t: datetime | None) -> str | None:
    return t.isoformat(sep=" ", timespec="minutes") if t else None
