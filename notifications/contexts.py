"""What each message kind's template receives: the contract with template authors.

One public builder per kind of message, used by everything that sends it and by
`sample`, so `templates check` checks every template against the shape it is
really given:

- `state_change`: the messages a workflow state sends when an application enters
  it (the engine), to the society or, with `expert`, to each assigned expert; the
  `review_assigned` mail to experts added while review is under way
  (`lifecycle.acts.assignment`) is the same message, built the same way;
- `society_reminder`: `remind_declaration`, `remind_report` (reminders to societies);
- `expert_reminder`: `remind_review` (one per expert, listing what it still has to score).

Every context has `call` and `at` (`common`, built once per batch); reminders
have `deadline` (`deadline`). The builders take plain loaded rows and values
(anything with the named attributes) and read nothing themselves.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from lifecycle.core.callconfig import CallConfig
from lifecycle.core.deadlines import entry_rows
from notifications import reasons

REMINDER_KINDS = {"remind_declaration": "declaration_closes", "remind_review": "reviews_due",
                  "remind_report": "report_due"}
"""Reminder message kind -> the deadline kind it reminds of."""


ANCHOR_KIND = "audit_anchor"
"""The message that carries a signed anchor of the audit trail to the auditors."""


INVITE_KIND, RESET_KIND = "account_invitation", "password_reset"
"""The messages that carry an invitation and a password-reset link. The link itself is made
when the message is delivered (`notifications.delivery.LINKERS`): the context holds the
link's row id, never its token."""


def account_link(account: str, roles: list[str], link_id: int, expires: datetime,
                 now: datetime) -> dict[str, Any]:
    """An invitation or reset as queued; delivery adds `link` ("" once it is no good)."""
    return {"account": account, "roles": roles, "link_id": link_id,
            "expires": expires.strftime("%Y-%m-%d %H:%M"), "at": now.isoformat(sep=" "),
            "link": ""}


ATTEMPTS_KIND = "sign_in_attempts"
"""The message that tells an account's owner that its password is being guessed."""


def sign_in_attempts(account: str, failures: int, now: datetime) -> dict[str, Any]:
    return {"account": account, "failures": failures, "at": now.isoformat(sep=" ")}


def anchor(body: dict[str, Any], file_name: str, now: datetime) -> dict[str, Any]:
    """An anchor as mailed: the signed head and the file it was written to."""
    return {"anchor": body, "text": json.dumps(body, indent=1, ensure_ascii=False),
            "file": file_name, "at": now.isoformat(sep=" ")}


def common(call: Any, now: datetime) -> dict[str, Any]:
    """What every message has: the call and the time it was written (the same for a whole batch)."""
    return {"call": {"id": call.id, "title": call.title, "title_en": call.title_en},
            "at": now.isoformat(sep=" ")}


def deadline(kind: str, due_at: datetime, now: datetime) -> dict[str, Any]:
    """The deadline a reminder is about: its kind, when it is due, how long is left."""
    left = due_at - now
    return {"kind": kind, "due_at": due_at.isoformat(sep=" ", timespec="minutes"),
            "days_left": max(left.days, 0), "hours_left": max(int(left.total_seconds() // 3600), 0)}


def state_change(shared: dict[str, Any], app: Any, state: Any, deadlines: Iterable[Any], *,
                 because: list[str] | None = None, extra: dict | None = None,
                 expert: Any = None) -> dict[str, Any]:
    """The message of `app` entering `state`.

    `shared` is `common(call, now)`; `app` a loaded application row with its
    society's `society_name`/`society_name_en`; `deadlines` the rows the state
    just scheduled for it, in `state.schedule` order (`due` names their times, so
    a message can say e.g. when the report is due); `because` why earlier options
    of the move failed; `extra` the values the move computed (they win over the
    loaded ones); `expert` (with `id`, `name`) for a message to an expert.
    """
    get = (extra or {}).get
    context = {
        **shared,
        "application": {"id": app.id, "title": app.title, "title_en": app.title_en,
                        "category": app.category, "requested_amount": app.requested_amount,
                        "granted_amount": get("granted_amount", app.granted_amount),
                        "score": get("score", app.score),
                        "decision_reason": _decision_reason(app, extra),
                        "checkpoint": get("checkpoint", getattr(app, "checkpoint", None))},
        "society": {"id": app.society_id, "name": app.society_name,
                    "name_en": app.society_name_en},
        "state": state.name, "state_label": state.label,
        "because": [reasons.data(r) for r in because or ()],
        "due": {spec.kind: row.due_at.isoformat(sep=" ")
                for spec, row in zip(state.schedule, deadlines)},
    }
    if expert is not None:
        context["expert"] = {"id": expert.id, "name": expert.name,
                             "name_en": getattr(expert, "name_en", "") or ""}
    return context


def _decision_reason(app: Any, extra: dict | None) -> Any:
    """The decision reason as a letter needs it: the move's own (a code, when it has one),
    else the one the row keeps (`reason_code`, else its text)."""
    if extra and "decision_reason" in extra:
        return reasons.data(extra["decision_reason"])
    return reasons.from_stored(getattr(app, "reason_code", ""), app.decision_reason)


def _summary(app: Any) -> dict[str, Any]:
    return {"id": app.id, "title": app.title, "title_en": app.title_en, "category": app.category,
            "requested_amount": app.requested_amount}


def society_reminder(shared: dict[str, Any], due: dict[str, Any], app: Any) -> dict[str, Any]:
    """A reminder to the society of `app` (with `society_id`, `society_name`, `society_name_en`).

    `due` is `deadline(...)`.
    """
    return {"call": shared["call"], "deadline": due, "application": _summary(app),
            "society": {"id": app.society_id, "name": app.society_name,
                        "name_en": app.society_name_en},
            "at": shared["at"]}


def expert_reminder(shared: dict[str, Any], due: dict[str, Any], expert: Any,
                    apps: list[Any]) -> dict[str, Any]:
    """A reminder to `expert` (with `id`, `name`, `name_en`) of the applications it still has to score."""
    return {"call": shared["call"], "deadline": due,
            "expert": {"id": expert.id, "name": expert.name, "name_en": expert.name_en},
            "applications": [_summary(a) for a in apps], "missing": len(apps),
            "at": shared["at"]}


# --- samples: what `templates check` renders every template with ----------------------

SAMPLE_NOW = datetime(2025, 4, 1, 9, 0)
SAMPLE_DUE = datetime(2025, 4, 7, 17, 0)


def sample_call() -> CallConfig:
    return CallConfig.model_validate({
        "id": "2025-project", "title": "2025年度学会重点活动项目资助",
        "title_en": "2025 key-activity project funding", "budget_total": 1_000_000,
        "calendar": {"declaration_opens": "2025-03-03T09:00", "declaration_closes":
                     "2025-04-07T17:00", "review_due": "2025-05-06T17:00",
                     "assessment_due": "2025-12-15T17:00"},
        "categories": [{"id": "academic", "name": "学术会议", "cap": 100000}]})


def sample_application() -> Any:
    return SimpleNamespace(
        id="2025-project-00001", title="示例项目", title_en="Sample project", category="academic",
        requested_amount=50000, granted_amount=50000, score=86.5, decision_reason="示例",
        society_id="S001", society_name="市示例学会", society_name_en="City Sample Society",
        society_email="s@example.org", society_language="zh", version=1, checkpoint="final")


def sample_expert() -> Any:
    return SimpleNamespace(id="E001", name="示例专家", name_en="Sample Expert")


def sample(kind: str, sender: tuple[Any, str] | None = None) -> dict[str, Any]:
    """A context of the exact shape `kind` receives, with sample values.

    `sender` is (a state that sends `kind`, its recipient: "society" or "experts")
    for a state's message; None for a reminder kind.
    """
    now, call, app = SAMPLE_NOW, sample_call(), sample_application()
    shared = common(call, now)
    if sender is None:
        due = deadline(REMINDER_KINDS[kind], SAMPLE_DUE, now)
        if kind == "remind_review":
            return expert_reminder(shared, due, sample_expert(), [app])
        return society_reminder(shared, due, app)
    state, to = sender
    return state_change(shared, app, state, entry_rows(call, state, app, {}, now),
                        because=[reasons.Reason("inspection_failed")], expert=sample_expert() if to == "experts" else None)


def samples(senders: Mapping[str, tuple[Any, str]]) -> dict[str, dict[str, Any]]:
    """A sample context for every kind: the states' messages (`senders`: kind -> (state,
    recipient), from the workflows) and every reminder kind."""
    out = {kind: sample(kind, sender) for kind, sender in senders.items()}
    out.update({kind: sample(kind) for kind in REMINDER_KINDS})
    out[ATTEMPTS_KIND] = sign_in_attempts("s001-contact", 10, SAMPLE_NOW)
    for kind in (INVITE_KIND, RESET_KIND):
        out[kind] = {**account_link("s001-contact", ["society"], 1, SAMPLE_NOW, SAMPLE_NOW),
                     "link": "https://portal.example.org/invite/TOKEN"}
    out[ANCHOR_KIND] = anchor({"format": "starfund-anchor/1", "database": "0000", "seq": 1,
                               "hash": "0" * 64, "written_at": SAMPLE_NOW.isoformat(sep=" "),
                               "chain_key": "0" * 16, "mode": "live", "public_key": "",
                               "signature": ""}, "anchor-0000000001.json", SAMPLE_NOW)
    return out
