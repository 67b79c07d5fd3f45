"""The persistent shape of starfund: SQLAlchemy 2.x typed models.

The schema is owned by the Alembic migrations in `lifecycle/core/migrations`;
`tests/test_migrations.py` checks that they and these models agree.
Only `lifecycle.engine.engine` writes `Application.state` (invariant 1).
"""
from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    text,
    true,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class Base(DeclarativeBase):
    type_annotation_map = {dict[str, Any]: JSON, list[Any]: JSON, datetime: DateTime()}


class Call(Base):
    """One funding round of one workflow, with its whole configuration as parsed from TOML."""

    __tablename__ = "calls"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    title: Mapped[str] = mapped_column(String(300))
    workflow: Mapped[str] = mapped_column(String(64))
    config: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]
    advance_count: Mapped[int] = mapped_column(Integer, default=0)


class Society(Base):
    __tablename__ = "societies"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(300))
    name_en: Mapped[str] = mapped_column(String(300), default="")
    email: Mapped[str] = mapped_column(String(300))
    institution: Mapped[str] = mapped_column(String(300), default="")
    language: Mapped[str] = mapped_column(String(8), default="zh")
    annual_inspection_passed: Mapped[bool] = mapped_column(Boolean, default=True)
    penalty: Mapped[bool] = mapped_column(Boolean, default=False)
    society_class: Mapped[str] = mapped_column(String(64), default="", server_default="")
    """The society's class (理科, 工科, ... as the programme names them; migration 0007): a call
    may rate, fund and rank each class by its own rule (callconfig `classes`, `star.classes`)."""
    payee_name: Mapped[str] = mapped_column(String(200), default="", server_default="")
    payee_bank: Mapped[str] = mapped_column(String(200), default="", server_default="")
    payee_account: Mapped[str] = mapped_column(String(200), default="", server_default="")
    """Where grants are paid (migration 0010): masked everywhere but the finance export and the
    finance role's views (`lifecycle.core.names.mask_account`)."""


class Expert(Base):
    __tablename__ = "experts"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    name: Mapped[str] = mapped_column(String(300))
    name_en: Mapped[str] = mapped_column(String(300), default="")
    email: Mapped[str] = mapped_column(String(300))
    institution: Mapped[str] = mapped_column(String(300), default="")
    language: Mapped[str] = mapped_column(String(8), default="zh")
    disciplines: Mapped[list[Any]] = mapped_column(JSON, default=list)
    societies: Mapped[list[Any]] = mapped_column(JSON, default=list)
    conflict_societies: Mapped[list[Any]] = mapped_column(JSON, default=list)
    conflict_institutions: Mapped[list[Any]] = mapped_column(JSON, default=list)


class Application(Base):
    """One society's declaration in one call: the unit that moves through the lifecycle."""

    __tablename__ = "applications"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id"))
    society_id: Mapped[str] = mapped_column(ForeignKey("societies.id"))
    category: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(500))
    title_en: Mapped[str] = mapped_column(String(500), default="")
    discipline: Mapped[str] = mapped_column(String(100), default="")
    requested_amount: Mapped[int] = mapped_column(Integer)
    excluded_experts: Mapped[list[Any]] = mapped_column(JSON, default=list)
    fields: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    state: Mapped[str] = mapped_column(String(32))
    version: Mapped[int] = mapped_column(Integer, default=1)
    declared_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    score: Mapped[float | None] = mapped_column(Float, nullable=True)
    rank: Mapped[int | None] = mapped_column(Integer, nullable=True)
    recommended: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    granted_amount: Mapped[int | None] = mapped_column(Integer, nullable=True)
    decision_reason: Mapped[str] = mapped_column(Text, default="")
    reason_code: Mapped[str] = mapped_column(Text, default="", server_default="")
    """The decision reason's code and parameters (notifications.reasons; migration 0011)."""
    assessment_score: Mapped[float | None] = mapped_column(Float, nullable=True)
    assessment_grade: Mapped[str | None] = mapped_column(String(16), nullable=True)
    checkpoint: Mapped[str | None] = mapped_column(String(32), nullable=True)
    """The assessment checkpoint (mid-term, final) the project is at (migration 0004)."""
    star_level: Mapped[int | None] = mapped_column(Integer, nullable=True)
    """Star calls: the level the total reaches (0: none)."""
    amount_to_recover: Mapped[int | None] = mapped_column(Integer, nullable=True)
    """Terminated projects: what the society is to pay back."""
    society_class: Mapped[str] = mapped_column(String(64), default="", server_default="")
    """The society's class when the application was declared (migration 0007): the class whose
    rules decide it, kept so a later change of the society's class never moves it half-way."""

    __table_args__ = (
        Index("ix_applications_call_state", "call_id", "state"),
        Index("ix_applications_society", "society_id"),
    )


class Objection(Base):
    """A named, written objection filed during the public notice (公示)."""

    __tablename__ = "objections"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id"))
    application_id: Mapped[str] = mapped_column(ForeignKey("applications.id"))
    filed_by: Mapped[str] = mapped_column(String(200))
    contact: Mapped[str] = mapped_column(String(200))
    reason: Mapped[str] = mapped_column(Text)
    evidence: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16), default="open")
    filed_at: Mapped[datetime]
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    resolution: Mapped[str] = mapped_column(Text, default="")
    evidence_data: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    """The evidence file itself, kept with the objection (migration 0002)."""
    filed_account: Mapped[str | None] = mapped_column(String(100), nullable=True)
    """The account that filed it itself in the portal; None when an officer entered it for a
    member of the public (migration 0013)."""

    __table_args__ = (Index("ix_objections_application", "application_id", "status"),)


class PanelDecision(Base):
    """The panel's score for an application whose reviewers disagreed strongly (migration 0002)."""

    __tablename__ = "panel_decisions"
    application_id: Mapped[str] = mapped_column(ForeignKey("applications.id"), primary_key=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id"))
    score: Mapped[float] = mapped_column(Float)
    reason: Mapped[str] = mapped_column(Text)
    decided_by: Mapped[str] = mapped_column(String(100))
    decided_at: Mapped[datetime]


class Assignment(Base):
    """One expert asked to review one application, and the scores it returned."""

    __tablename__ = "assignments"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id"))
    application_id: Mapped[str] = mapped_column(ForeignKey("applications.id"))
    expert_id: Mapped[str] = mapped_column(ForeignKey("experts.id"))
    status: Mapped[str] = mapped_column(String(16), default="assigned")
    scores: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    total: Mapped[float | None] = mapped_column(Float, nullable=True)
    assigned_at: Mapped[datetime]
    submitted_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    replaces: Mapped[str | None] = mapped_column(String(64), nullable=True)
    """The expert whose freed slot this assignment fills (`review reassign`; migration 0002)."""
    draft: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    """Scores the expert saved in the portal but has not submitted (migration 0009)."""
    draft_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)

    __table_args__ = (
        UniqueConstraint("application_id", "expert_id", name="uq_assignment"),
        Index("ix_assignments_call", "call_id"),
        Index("ix_assignments_expert", "expert_id"),
    )


_MOVES = "application_id IS NOT NULL AND to_state IS NOT NULL"
"""The events that move an application: `ix_audit_moves` holds only these."""


class AuditEvent(Base):
    """The permanent, hash-chained record of one action. Never updated or deleted."""

    __tablename__ = "audit_events"
    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[datetime]
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(64))
    call_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    application_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    from_state: Mapped[str | None] = mapped_column(String(32), nullable=True)
    to_state: Mapped[str | None] = mapped_column(String(32), nullable=True)
    payload: Mapped[str] = mapped_column(Text)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    written_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    """When the event was written: the wall clock, never settable (`at` is the programme time it
    speaks for, which a simulation moves). None only on events older than the keyed chain."""
    by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    """The account that really issued the act when it differs from `actor` (an officer entering
    a society's paper declaration; the account that ran the scheduler)."""

    __table_args__ = (
        Index("ix_audit_application", "application_id", "seq"),
        Index("ix_audit_actor_at", "actor", "at"),
        Index("ix_audit_call", "call_id", "seq"),
        Index("ix_audit_action", "action", "seq"),
        Index("ix_audit_at", "at"),
        Index("ix_audit_moves", "application_id", "seq", "to_state",
              sqlite_where=text(_MOVES), postgresql_where=text(_MOVES)),
    )


class AuditHead(Base):
    """The end of the audit chain: one row, locked by every writer so the chain stays linear."""

    __tablename__ = "audit_head"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    seq: Mapped[int] = mapped_column(Integer)
    hash: Mapped[str] = mapped_column(String(64))
    mac: Mapped[str | None] = mapped_column(String(64), nullable=True)
    """HMAC of (seq, hash) under the chain key: the head cannot be moved back without the key."""


class Notification(Base):
    """An outbox row: written in the transaction that fires it, delivered after commit."""

    __tablename__ = "notifications"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    dedupe_key: Mapped[str] = mapped_column(String(200), unique=True)
    call_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    application_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    recipient_kind: Mapped[str] = mapped_column(String(16))
    recipient_id: Mapped[str] = mapped_column(String(64))
    recipient: Mapped[str] = mapped_column(String(300))
    kind: Mapped[str] = mapped_column(String(64))
    language: Mapped[str] = mapped_column(String(8))
    context: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]
    next_attempt_at: Mapped[datetime]
    sent_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    edited: Mapped[dict[str, Any] | None] = mapped_column(JSON, nullable=True)
    """Subject and body an administrator wrote for a held message (migration 0011)."""

    __table_args__ = (
        Index("ix_notifications_status_next", "status", "next_attempt_at"),
        Index("ix_notifications_application", "application_id"),
    )


class Deadline(Base):
    """A dated event of a call. The scheduler's jobs are derived from these rows."""

    __tablename__ = "deadlines"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    """`call:kind` (`call:kind:value` for a deadline per value, e.g. a checkpoint); the n-th
    entry into a state whose deadline already fired or falls at another time gets `...#n`
    (lifecycle.core.deadlines.own_entries), so each entry is scheduled, and written once."""
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id"))
    application_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    kind: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(16))
    fires: Mapped[str] = mapped_column(String(64))
    due_at: Mapped[datetime]
    fired_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    """After a failed firing: not before this time (exponential backoff)."""
    note: Mapped[str] = mapped_column(Text, default="")
    """What firing did (moved/skipped counts, reminders sent, or why a reminder was skipped)."""
    outcome: Mapped[str] = mapped_column(String(16), default="", server_default="")
    """How it ended once fired_at is set: fired, or skipped (a reminder no longer useful);
    "" on rows fired before migration 0011 (read as fired)."""

    __table_args__ = (Index("ix_deadlines_due", "fired_at", "due_at"),)


class SchedulerJob(Base):
    """APScheduler's SQLAlchemyJobStore table, created by migration 0003 (not by APScheduler).

    Its jobs are only wake-up calls derived from `deadlines`; they are rebuilt from
    the deadline rows when `starfund scheduler run` starts.
    """

    __tablename__ = "apscheduler_jobs"
    id: Mapped[str] = mapped_column(String(191), primary_key=True)
    next_run_time: Mapped[float | None] = mapped_column(Float(25), nullable=True, index=True)
    job_state: Mapped[bytes] = mapped_column(LargeBinary)


# --- assessment, payments and stars (migration 0004) --------------------------------

class Payment(Base):
    """One instalment of a grant or reward: planned, due (released), paid or cancelled."""

    __tablename__ = "payments"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id"))
    application_id: Mapped[str] = mapped_column(ForeignKey("applications.id"))
    seq: Mapped[int] = mapped_column(Integer)
    label: Mapped[str] = mapped_column(String(200))
    release: Mapped[str] = mapped_column(String(32))
    percent: Mapped[float] = mapped_column(Float)
    original_amount: Mapped[int] = mapped_column(Integer)
    amount: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    due_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    released_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    paid_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    note: Mapped[str] = mapped_column(Text, default="")
    voucher: Mapped[str] = mapped_column(String(64), default="", server_default="")
    """The finance office's voucher number of the payment (migration 0010)."""

    __table_args__ = (
        UniqueConstraint("application_id", "seq", name="uq_payment_seq"),
        Index("ix_payments_call_status", "call_id", "status"),
    )


class Recovery(Base):
    """Money a society paid back on a terminated project (migration 0010): recoveries settle
    the application's `amount_to_recover`."""

    __tablename__ = "recoveries"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id"))
    application_id: Mapped[str] = mapped_column(ForeignKey("applications.id"))
    amount: Mapped[int] = mapped_column(Integer)
    voucher: Mapped[str] = mapped_column(String(64))
    recovered_at: Mapped[datetime]
    recorded_by: Mapped[str] = mapped_column(String(100))

    __table_args__ = (Index("ix_recoveries_call", "call_id"),)


class AssessmentRecord(Base):
    """One checkpoint of one funded project: the society's report and the grade it got."""

    __tablename__ = "assessment_records"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id"))
    application_id: Mapped[str] = mapped_column(ForeignKey("applications.id"))
    checkpoint: Mapped[str] = mapped_column(String(32))
    report_file: Mapped[str | None] = mapped_column(String(300), nullable=True)
    report_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    report_size: Mapped[int | None] = mapped_column(Integer, nullable=True)
    report_data: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    report_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    report_late: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    score: Mapped[float | None] = mapped_column(Float, nullable=True)
    grade: Mapped[str | None] = mapped_column(String(16), nullable=True)
    graders: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)
    graded_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)

    __table_args__ = (
        UniqueConstraint("application_id", "checkpoint", name="uq_assessment_checkpoint"),
        Index("ix_assessment_records_call", "call_id"),
    )


class StarScore(Base):
    """One indicator of one star declaration: self, checked and final score."""

    __tablename__ = "star_scores"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id"))
    application_id: Mapped[str] = mapped_column(ForeignKey("applications.id"))
    indicator: Mapped[str] = mapped_column(String(32))
    self_score: Mapped[float] = mapped_column(Float)
    checked_score: Mapped[float | None] = mapped_column(Float, nullable=True)
    final_score: Mapped[float | None] = mapped_column(Float, nullable=True)

    __table_args__ = (
        UniqueConstraint("application_id", "indicator", name="uq_star_score"),
        Index("ix_star_scores_call", "call_id"),
    )


class StarReview(Base):
    """One expert's scores, per indicator, of one star declaration."""

    __tablename__ = "star_reviews"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id"))
    application_id: Mapped[str] = mapped_column(ForeignKey("applications.id"))
    expert_id: Mapped[str] = mapped_column(ForeignKey("experts.id"))
    scores: Mapped[dict[str, Any]]
    total: Mapped[float] = mapped_column(Float)
    submitted_at: Mapped[datetime]

    __table_args__ = (
        UniqueConstraint("application_id", "expert_id", name="uq_star_review"),
        Index("ix_star_reviews_call", "call_id"),
    )


class StarStatus(StrEnum):
    """A star record's status: a vocabulary of its own, not an application's state (the
    application of a revoked star is in the state `revoked` too, but a record is also active,
    superseded by a later rating, or lost by one)."""

    ACTIVE = "active"
    SUPERSEDED = "superseded"
    LOST = "lost"
    REVOKED = "revoked"


class StarRecord(Base):
    """A society's star: awarded by a star call, valid for a period, under dynamic management."""

    __tablename__ = "stars"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    society_id: Mapped[str] = mapped_column(ForeignKey("societies.id"))
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id"))
    application_id: Mapped[str] = mapped_column(ForeignKey("applications.id"))
    level: Mapped[int] = mapped_column(Integer)
    total: Mapped[float] = mapped_column(Float)
    reward: Mapped[int] = mapped_column(Integer)
    change: Mapped[str] = mapped_column(String(16))
    previous_level: Mapped[int | None] = mapped_column(Integer, nullable=True)
    awarded_at: Mapped[datetime]
    valid_until: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    end_kind: Mapped[str] = mapped_column(String(16), default="")
    end_reason: Mapped[str] = mapped_column(Text, default="")

    __table_args__ = (
        Index("ix_stars_society", "society_id", "awarded_at"),
        Index("ix_stars_call", "call_id"),
    )


class ModelStatus(StrEnum):
    """A model society title's status (its own vocabulary, like StarStatus)."""

    ACTIVE = "active"
    SUPERSEDED = "superseded"
    REVOKED = "revoked"


class ModelSociety(Base):
    """A model society title (示范学会) named by a star call's rule, valid for a period
    (migration 0007); revoked with a reason, or ended with the star it rests on."""

    __tablename__ = "model_societies"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    society_id: Mapped[str] = mapped_column(ForeignKey("societies.id"))
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id"))
    application_id: Mapped[str] = mapped_column(ForeignKey("applications.id"))
    rule: Mapped[str] = mapped_column(Text)
    """Why it was named: the rule it met, in words."""
    named_at: Mapped[datetime]
    valid_until: Mapped[datetime]
    status: Mapped[str] = mapped_column(String(16))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    end_reason: Mapped[str] = mapped_column(Text, default="")

    __table_args__ = (Index("ix_model_societies_society", "society_id", "named_at"),)


class Meta(Base):
    """Facts about the database itself, key -> value. `demo`: made by `starfund demo` (which
    refuses to write to any database without it)."""

    __tablename__ = "meta"
    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class Account(Base):
    """A person who may act (or, for `society` and `expert` roles, one society's or expert's
    contact). Roles are the names of states.roles, space-separated; the system identity
    `scheduler` is never an account."""

    __tablename__ = "accounts"
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    roles: Mapped[str] = mapped_column(String(200))
    society_id: Mapped[str | None] = mapped_column(ForeignKey("societies.id"), nullable=True)
    expert_id: Mapped[str | None] = mapped_column(ForeignKey("experts.id"), nullable=True)
    email: Mapped[str | None] = mapped_column(String(300), nullable=True)
    password_hash: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime]
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    totp: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    """The TOTP secret, sealed under a key derived from the chain key (migration 0016)."""
    totp_step: Mapped[int | None] = mapped_column(Integer, nullable=True)
    recovery_codes: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)


class AccountToken(Base):
    """A login (`starfund login`, the portal's session): only the token's SHA-256 is stored."""

    __tablename__ = "account_tokens"
    token_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    account: Mapped[str] = mapped_column(ForeignKey("accounts.name"))
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    last_seen_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    """When a portal session was last used (its idle timeout; migration 0016)."""

    __table_args__ = (Index("ix_account_tokens_account", "account"),)


class Attachment(Base):
    """A file uploaded with a declaration (申报书, budget sheet, ...; migration 0009): kept in
    the database with its SHA-256, never in a served folder. A new upload of the same kind
    replaces the old as `current`; the old stays, as the trail names both."""

    __tablename__ = "attachments"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.id"))
    application_id: Mapped[str] = mapped_column(ForeignKey("applications.id"))
    kind: Mapped[str] = mapped_column(String(64))
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(Integer)
    sha256: Mapped[str] = mapped_column(String(64))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    uploaded_by: Mapped[str] = mapped_column(String(100))
    uploaded_at: Mapped[datetime]
    current: Mapped[bool] = mapped_column(Boolean, default=True, server_default=true())

    __table_args__ = (Index("ix_attachments_application", "application_id", "kind"),)


class LoginAttempt(Base):
    """A failed portal login (migration 0009): counted per account and per address to slow
    guessing down."""

    __tablename__ = "login_attempts"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account: Mapped[str] = mapped_column(String(100))
    address: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime]

    __table_args__ = (Index("ix_login_attempts_account", "account", "at"),
                      Index("ix_login_attempts_address", "address", "at"))


class SubjectKey(Base):
    """One person's key for the personal values the audit trail carries sealed
    (lifecycle.core.sealing), wrapped under a key derived from the chain key: deleting the row
    erases them all without changing a hashed byte (migration 0013)."""

    __tablename__ = "subject_keys"
    subject: Mapped[str] = mapped_column(String(120), primary_key=True)
    wrapped: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime]


class Erasure(Base):
    """A person erased (`starfund person erase`): who, when, by whom, why, and the event."""

    __tablename__ = "erasures"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    person: Mapped[str] = mapped_column(String(120))
    subjects: Mapped[list[Any]] = mapped_column(JSON)
    erased_at: Mapped[datetime]
    erased_by: Mapped[str] = mapped_column(String(100))
    reason: Mapped[str] = mapped_column(Text)
    seq: Mapped[int] = mapped_column(Integer)

    __table_args__ = (UniqueConstraint("person", name="uq_erasures_person"),)


class Purge(Base):
    """One day's retention purge (lifecycle.scheduling.retention): its row is written in the
    purge's own transaction, so a second scheduler finds it and purges nothing twice."""

    __tablename__ = "purges"
    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    ran_at: Mapped[datetime]
    counts: Mapped[dict[str, Any]] = mapped_column(JSON)


class AccountLink(Base):
    """An invitation or a password reset (migration 0016): single-use and expiring; its token
    is made when the message carrying it is delivered, and only the token's hash is kept."""

    __tablename__ = "account_links"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account: Mapped[str] = mapped_column(ForeignKey("accounts.name"))
    purpose: Mapped[str] = mapped_column(String(16))
    token_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    sent_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    used_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    created_by: Mapped[str] = mapped_column(String(100))

    __table_args__ = (UniqueConstraint("token_hash", name="uq_account_links_token"),
                      Index("ix_account_links_account", "account", "purpose"))
class Consent(Base):
    """An account's agreement to one version of the portal's processing rules (个人信息处理规则;
    migration 0014): one row per version agreed, kept when a newer version is agreed, so when
    each was agreed stays on record. `door`: where it was given (`portal`)."""

    __tablename__ = "consents"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    account: Mapped[str] = mapped_column(ForeignKey("accounts.name"))
    version: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime]
    door: Mapped[str] = mapped_column(String(16))

    __table_args__ = (UniqueConstraint("account", "version", name="uq_consent"),)
class Heartbeat(Base):
    """One running scheduler (`scheduler run`), written at each of its passes (migration 0015):
    `/healthz` and `/metrics` read how long ago a scheduler last ran. Wall-clock times."""

    __tablename__ = "heartbeats"
    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    """`scheduler:<host>:<pid>`."""
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime]
    beat_at: Mapped[datetime]
    last_pass_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    """When its last pass over the due deadlines ended."""
    stopped_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class PastResult(Base):
    """A result of a year before starfund, brought in by `starfund history import` (migration
    0015): a project's grade or termination, or a star rating's level and model society title.
    The rules that read history read these beside the calls run inside starfund."""

    __tablename__ = "past_results"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    society_id: Mapped[str] = mapped_column(ForeignKey("societies.id"))
    year: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(64))
    """The kind of call it was (project, star, grant): its history policy decides what counts."""
    project: Mapped[str] = mapped_column(String(64), default="")
    """The project's reference in the earlier records ("" for a star rating)."""
    title: Mapped[str] = mapped_column(String(500), default="")
    grade: Mapped[str | None] = mapped_column(String(16), nullable=True)
    terminated: Mapped[bool] = mapped_column(Boolean, default=False)
    stars: Mapped[int | None] = mapped_column(Integer, nullable=True)
    model: Mapped[bool] = mapped_column(Boolean, default=False)
    """Named a model society (示范学会) by that year's rating."""
    source: Mapped[str] = mapped_column(String(255))
    source_sha256: Mapped[str] = mapped_column(String(64))
    imported_at: Mapped[datetime]

    __table_args__ = (
        UniqueConstraint("society_id", "year", "kind", "project", name="uq_past_result"),
        Index("ix_past_results_year", "kind", "year"),
    )
