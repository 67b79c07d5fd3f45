"""Who may do what: the roles, the administrative acts outside moves, and the separation of duties.

Who may fire each move is the `who` of its `Move` in the stage tables; this module
holds the rest of the permission table as data: the roles a person can hold, which
roles may perform each administrative act, the role pairs no one may hold together,
and the separation-of-duties rules a call applies (configurable per call, in the
call file's `[separation]` table; defaults below). The engine and the acts check both
tables through `lifecycle.engine.permissions`; `starfund user roles` prints this one.
"""
from __future__ import annotations

from dataclasses import dataclass

OFFICER = "officer"
COORDINATOR = "coordinator"
APPROVER = "approver"
FINANCE = "finance"
AUDITOR = "auditor"
SOCIETY = "society"
EXPERT = "expert"
SCHEDULER = "scheduler"
SERVICE = "service"


@dataclass(frozen=True)
class Role:
    name: str
    label: str
    does: str
    person: bool = True
    """False for the system identity, which no account can hold or assume."""


ROLES = (
    Role(OFFICER, "受理与形式审查 officer",
         "imports, formal check, requests for reports; enters a society's or expert's paper "
         "submissions on their behalf (--as)"),
    Role(COORDINATOR, "评审组织 coordinator", "review assignment, scoring rounds, score import"),
    Role(APPROVER, "领导小组 approver",
         "ranking and proposals, the notice, objections, outcomes, overrides, accounts"),
    Role(FINANCE, "财务 finance", "payments and recoveries"),
    Role(AUDITOR, "审计 auditor", "reads everything, queries and verifies the audit trail, anchors it"),
    Role(SOCIETY, "学会联系人 society contact", "one society's declarations and objections"),
    Role(EXPERT, "评审专家 expert", "one expert's assignments, recusals and scores"),
    Role(SCHEDULER, "系统调度 scheduler", "fires deadlines; the system's own identity",
         person=False),
    Role(SERVICE, "系统服务 service",
         "the service OS user that owns the data and the key files and runs the portal and the "
         "scheduler (deploy/); no account: an OS user is it by owning the chain key file",
         person=False),
)
ROLE_NAMES = tuple(r.name for r in ROLES)
PERSON_ROLES = tuple(r.name for r in ROLES if r.person)
STAFF = (OFFICER, COORDINATOR, APPROVER, FINANCE, AUDITOR)
"""The roles that work at the command line; society and expert accounts use the portal,
or an officer enters what they sent on paper with --as."""
ON_BEHALF = {OFFICER: (SOCIETY, EXPERT)}
"""Who may act on behalf of whom on a live database (both names are recorded)."""


@dataclass(frozen=True)
class Act:
    """An administrative act outside the moves, and the roles that may perform it."""

    name: str
    who: tuple[str, ...]
    help: str


ACTS = (
    Act("read", STAFF, "status, show, lists, exports, workflow and deadline listings"),
    Act("call.create", (OFFICER, APPROVER), "create a call from its file"),
    Act("call.migrate", (APPROVER,), "move a running call to the current workflow definition"),
    Act("registry.import", (OFFICER,), "import societies and experts"),
    Act("declaration.import", (OFFICER,), "import declarations (drafts)"),
    Act("declaration.edit", (OFFICER, SOCIETY),
        "write a society's draft declaration and upload its attachments (the portal's form)"),
    Act("review.assign", (COORDINATOR,), "assign experts, reassign"),
    Act("review.recuse", (COORDINATOR, EXPERT), "record an expert's conflict of interest"),
    Act("score.import", (COORDINATOR,), "import score sheets, record a panel decision"),
    Act("score.submit", (EXPERT,), "an expert's own score sheet"),
    Act("notice.publish", (APPROVER,), "publish the notice (公示)"),
    Act("objection.file", (OFFICER, SOCIETY), "record an objection during the notice"),
    Act("objection.resolve", (APPROVER,), "uphold or dismiss an objection"),
    Act("objection.contact", (APPROVER,),
        "see how to reach an objector (the phone or e-mail an objection gives): the approvers "
        "who resolve objections; the objector's name is not hidden"),
    Act("assessment.report", (OFFICER, SOCIETY), "record a progress report"),
    Act("assessment.grade", (COORDINATOR,), "import assessment grades"),
    Act("star.import", (OFFICER,), "import self-evaluations and checked scores"),
    Act("star.review", (COORDINATOR,), "import the experts' star reviews"),
    Act("payment.pay", (FINANCE,), "mark payments paid"),
    Act("payment.recover", (FINANCE,), "record money paid back"),
    Act("payment.export", (FINANCE,), "export payments with full account numbers"),
    Act("notify.send", (OFFICER, COORDINATOR), "deliver the outbox, requeue, send reminders"),
    Act("notify.review", (OFFICER,), "review held messages: edit, release or discard them"),
    Act("deadlines.run", (OFFICER, COORDINATOR, SERVICE),
        "run due deadlines, start the scheduler"),
    Act("portal.serve", (*STAFF, SERVICE), "serve the portal (`starfund serve`)"),
    Act("backup.make", (APPROVER, AUDITOR, SERVICE),
        "write a backup of the database (`starfund backup`)"),
    Act("backup.restore", (APPROVER, SERVICE),
        "restore a backup into an empty database (`starfund restore`)"),
    Act("history.import", (OFFICER,), "bring in earlier years' results (`history import`)"),
    Act("audit.read", (AUDITOR, APPROVER, OFFICER), "query and verify the audit trail"),
    Act("audit.anchor", (AUDITOR, OFFICER, SERVICE), "sign the trail's head"),
    Act("user.manage", (APPROVER,), "add, disable and change accounts"),
    Act("user.invite", (APPROVER, OFFICER),
        "invite people to set their own password (officers: society contacts and experts)"),
    Act("person.export", (APPROVER, OFFICER),
        "export everything held about a person (a PIPL request for a copy)"),
    Act("person.export_own", (*STAFF, SOCIETY, EXPERT),
        "download a copy of one's own data (the portal's button; any account)"),
    Act("person.erase", (APPROVER,),
        "erase a person's data (a PIPL request for deletion; never one's own)"),
    Act("retention.purge", (OFFICER, APPROVER, SCHEDULER, SERVICE),
        "purge personal data past its retention (the scheduler does it daily)"),
    Act("consent.give", (SOCIETY, EXPERT),
        "agree, for oneself, to the portal's processing rules (个人信息处理规则); staff are "
        "employees, whose data are not processed on consent"),
)
ACT_NAMES = tuple(a.name for a in ACTS)


@dataclass(frozen=True)
class Duty:
    """A separation-of-duties rule: its name (the key in a call's [separation] table), what it
    forbids, and whether the programme applies it by default."""

    name: str
    forbids: str
    default: bool = True


SCORER_NOT_APPROVER = "scorer_not_approver"
PROPOSER_NOT_PAYER = "proposer_not_payer"
APPROVER_NOT_AUDITOR = "approver_not_auditor"

DUTIES = (
    Duty(SCORER_NOT_APPROVER, "an expert who scored an application cannot rank or approve it "
                              "(no move of the approver's may take it)"),
    Duty(PROPOSER_NOT_PAYER, "whoever proposed a call's awards (rank, propose) cannot pay them"),
    Duty(APPROVER_NOT_AUDITOR, "no one is both approver and auditor"),
)
EXCLUSIVE_ROLES = {APPROVER_NOT_AUDITOR: (APPROVER, AUDITOR)}
"""The duties that forbid holding two roles at once (checked when roles are granted, and
again when a call that applies the rule is acted on)."""
PROPOSING = ("rank", "propose")
"""The triggers whose actor is "whoever proposed" a call's awards."""
