"""The register of personal data: every place starfund keeps personal information, once.

PIPL (个人信息保护法) asks a 科协 to know what it holds about people, why, and for how long.
This module is that answer as data: each column, audit payload field and file that can hold a
person's information, with whose it is, its purpose, its retention category and what
erasure does to it. `docs/privacy.md` is generated from it (`docs/make_privacy.py`),
`tests/test_personal.py` fails when a table gains a column the register does not classify,
the audit trail seals the payload fields it names (`SEALED`, `lifecycle.core.sealing`), and
`person export` / `person erase` / the retention purge act on what it declares.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

ACCOUNT, EXPERT, OBJECTOR, SOCIETY_CONTACT = "account", "expert", "objector", "society contact"
"""Whose information a field holds (the kinds of person `person export`/`erase` accept, with
the society contact reached through the account)."""


@dataclass(frozen=True)
class Retention:
    """How long one category of personal data is kept, and what ends it."""

    name: str
    title: str
    days: int | None
    """The default number of days (a setting, STARFUND_RETENTION_<NAME>_DAYS); None: kept
    until the person is erased on request (or, for the trail, for good: sealed)."""
    after: str
    """From when the days count."""
    purge: str
    """What the daily purge (or an erasure) does when the time is up."""


RETENTION: dict[str, Retention] = {r.name: r for r in (
    Retention("login_attempts", "failed sign-ins", 90, "the failed attempt",
              "deleted by the daily purge"),
    Retention("tokens", "sign-in sessions", 7, "the session expired",
              "deleted by the daily purge"),
    Retention("drafts", "unsubmitted score drafts", 180, "the call closed",
              "cleared by the daily purge"),
    Retention("outbox", "delivered messages", 365, "the message was delivered",
              "address, contents and the file channel's copy cleared by the daily purge"),
    Retention("attachments", "uploads of applications not funded", 1095, "the call closed",
              "file contents and names cleared by the daily purge"),
    Retention("objections", "objectors' contact details", 365, "the objection was resolved",
              "contact and evidence cleared by the daily purge"),
    Retention("finance", "records of a funded project (uploads, reports)", 3650,
              "the end of the year of the project's last event",
              "held: an erasure before then is refused with the date it becomes possible"),
    Retention("registry", "people in the registries and their accounts", None,
              "", "kept while the person takes part; erased on request (`person erase`)"),
    Retention("trail", "values the audit trail carries", None, "",
              "sealed under the person's key; erasure destroys the key"),
    Retention("logs", "the portal's access log", None, "",
              "kept by the system's log, not by starfund (journald's MaxRetentionSec, "
              "logrotate, the container runtime): docs/operations.md sets 90 days"),
)}


@dataclass(frozen=True)
class Held:
    """One place that holds personal information."""

    where: str
    """`table.column`, `audit:<action>.<payload field>`, or `file:<what>`."""
    whose: str
    what: str
    purpose: str
    retention: str
    on_erase: str = "erased"
    """What `person erase` does to it: "erased", or "kept" with the reason in `purpose`."""


PERSONAL: tuple[Held, ...] = (
    Held("accounts.name", ACCOUNT, "account name (a pseudonym the 科协 chooses, never a "
         "person's name, phone or e-mail: `user add` refuses those)",
         "who did what: the trail names accounts", "registry", "kept"),
    Held("accounts.email", ACCOUNT, "e-mail", "reaching the account holder", "registry"),
    Held("accounts.password_hash", ACCOUNT, "password (argon2 hash)", "signing in",
         "registry"),
    Held("accounts.totp", ACCOUNT, "second-factor secret (sealed)", "two-factor sign-in",
         "registry"),
    Held("accounts.recovery_codes", ACCOUNT, "recovery codes (SHA-256)", "two-factor sign-in",
         "registry"),
    Held("account_tokens.account", ACCOUNT, "account name", "a signed-in session", "tokens"),
    Held("account_tokens.token_hash", ACCOUNT, "session token (SHA-256)", "a signed-in session",
         "tokens"),
    Held("account_links.account", ACCOUNT, "account name", "an invitation or a password "
         "reset", "tokens"),
    Held("account_links.token_hash", ACCOUNT, "link token (SHA-256)", "an invitation or a "
         "password reset", "tokens"),
    Held("account_links.created_by", ACCOUNT, "account name", "who invited", "tokens"),
    Held("consents.account", ACCOUNT, "account name", "proof of consent to the processing "
         "rules (kept while the account is: consent must be provable)", "registry", "kept"),
    Held("login_attempts.account", ACCOUNT, "account name", "slowing password guessing",
         "login_attempts"),
    Held("login_attempts.address", ACCOUNT, "client network address",
         "slowing password guessing", "login_attempts"),
    Held("experts.name", EXPERT, "name", "assigning and reaching reviewers", "registry"),
    Held("experts.name_en", EXPERT, "name in English", "letters in English", "registry"),
    Held("experts.email", EXPERT, "e-mail", "reaching the reviewer", "registry"),
    Held("experts.institution", EXPERT, "employer", "conflicts of interest", "registry"),
    Held("experts.conflict_institutions", EXPERT, "former employers",
         "conflicts of interest", "registry"),
    Held("societies.email", SOCIETY_CONTACT, "the society's contact mailbox (often a "
         "person's)", "reaching the society", "registry"),
    Held("objections.filed_by", OBJECTOR, "real name (实名)",
         "the public notice's named-objection procedure", "objections"),
    Held("objections.contact", OBJECTOR, "phone or e-mail", "answering the objector",
         "objections"),
    Held("objections.evidence", OBJECTOR, "evidence file name", "the objection's substance",
         "objections"),
    Held("objections.evidence_data", OBJECTOR, "evidence file", "the objection's substance",
         "objections"),
    Held("objections.reason", OBJECTOR, "the objection's text",
         "the objection's substance: kept as the procedure's record; with the name, contact "
         "and evidence gone it no longer identifies the objector", "objections", "kept"),
    Held("objections.filed_account", ACCOUNT, "account that filed it in the portal",
         "finding an account holder's objections", "objections"),
    Held("attachments.filename", ACCOUNT, "uploaded file name", "the declaration",
         "attachments"),
    Held("attachments.data", ACCOUNT, "uploaded file (申报书, CVs, budget sheets)",
         "the declaration", "attachments"),
    Held("attachments.uploaded_by", ACCOUNT, "account name", "who uploaded it",
         "attachments", "kept"),
    Held("assessment_records.report_file", SOCIETY_CONTACT, "report file name",
         "performance assessment", "finance"),
    Held("assessment_records.report_data", SOCIETY_CONTACT, "report file",
         "performance assessment", "finance"),
    Held("applications.fields", SOCIETY_CONTACT, "declaration form answers (may name the "
         "project's leader and staff)", "deciding the application", "finance", "kept"),
    Held("notifications.recipient", ACCOUNT, "address a message went to",
         "delivering the message", "outbox"),
    Held("notifications.context", ACCOUNT, "what a message says (names, amounts)",
         "delivering the message", "outbox"),
    Held("notifications.edited", ACCOUNT, "a message an administrator rewrote",
         "delivering the message", "outbox"),
    Held("panel_decisions.decided_by", ACCOUNT, "account name", "who decided",
         "trail", "kept"),
    Held("recoveries.recorded_by", ACCOUNT, "account name", "who recorded it", "trail", "kept"),
    Held("erasures.erased_by", ACCOUNT, "account name", "who erased", "trail", "kept"),
    Held("audit_events.actor", ACCOUNT, "account name", "who did it", "trail", "kept"),
    Held("audit_events.by", ACCOUNT, "account name", "who issued it for another", "trail",
         "kept"),
    Held("audit:account_add.email", ACCOUNT, "e-mail", "the account's creation", "trail"),
    Held("audit:objection_file.by", OBJECTOR, "real name", "the objection", "trail"),
    Held("audit:objection_file.contact", OBJECTOR, "phone or e-mail", "the objection", "trail"),
    Held("audit:objection_file.evidence", OBJECTOR, "evidence file name", "the objection",
         "trail"),
    Held("audit:object.options.by", OBJECTOR, "real name (written by releases before "
         "2026-12 only; sealed by `starfund init`)", "the objection's move", "trail"),
    Held("audit:attachment.file", ACCOUNT, "uploaded file name", "the upload", "trail"),
    Held("audit:assessment_report.file", ACCOUNT, "report file name", "the upload", "trail"),
    Held("file:access_log", ACCOUNT, "the account name of each portal request (the "
         "access log on standard error: never query strings, forms or addresses)",
         "operating the portal: who asked for which page, when, and how it went", "logs",
         "kept"),
    Held("file:outbox", ACCOUNT, "each message the file channel delivered (address, text)",
         "the file channel's delivery", "outbox"),
)

NOT_PERSONAL: dict[str, str] = {
    "apscheduler_jobs": "id next_run_time job_state",
    "audit_events": "seq at action call_id application_id from_state to_state payload "
                    "prev_hash hash written_at",
    "audit_head": "id seq hash mac",
    "calls": "id title workflow config created_at advance_count",
    "experts": "id language disciplines societies conflict_societies",
    "login_attempts": "id at",
    "meta": "key value",
    "notifications": "id dedupe_key call_id application_id recipient_kind recipient_id kind "
                     "language status attempts last_error created_at next_attempt_at sent_at",
    "societies": "id name name_en institution language annual_inspection_passed penalty "
                 "society_class payee_name payee_bank payee_account",
    "accounts": "roles society_id expert_id created_at disabled_at totp_step",
    "applications": "id call_id society_id category title title_en discipline "
                    "requested_amount excluded_experts state version declared_at updated_at "
                    "score rank recommended granted_amount decision_reason reason_code "
                    "assessment_score assessment_grade checkpoint star_level "
                    "amount_to_recover society_class",
    "deadlines": "id key call_id application_id kind action fires due_at fired_at attempts "
                 "last_error created_at next_attempt_at note outcome",
    "account_tokens": "created_at expires_at last_seen_at",
    "account_links": "id purpose created_at expires_at sent_at used_at revoked_at",
    "assessment_records": "id call_id application_id checkpoint report_sha256 report_size "
                          "report_at report_late score grade graders graded_at",
    "assignments": "id call_id application_id expert_id status scores total assigned_at "
                   "submitted_at replaces draft draft_at",
    "attachments": "id call_id application_id kind content_type size sha256 uploaded_at "
                   "current",
    "model_societies": "id society_id call_id application_id rule named_at valid_until status "
                       "ended_at end_reason",
    "objections": "id call_id application_id status filed_at resolved_at resolution",
    "panel_decisions": "application_id call_id score reason decided_at",
    "payments": "id call_id application_id seq label release percent original_amount amount "
                "status due_at released_at paid_at note voucher",
    "recoveries": "id call_id application_id amount voucher recovered_at",
    "star_reviews": "id call_id application_id expert_id scores total submitted_at",
    "star_scores": "id call_id application_id indicator self_score checked_score final_score",
    "stars": "id society_id call_id application_id level total reward change previous_level "
             "awarded_at valid_until status ended_at end_kind end_reason",
    "subject_keys": "subject wrapped created_at",
    "erasures": "id person subjects erased_at reason seq",
    "purges": "day ran_at counts",
    "consents": "id version at door",
    "heartbeats": "name host pid started_at beat_at last_pass_at stopped_at",
    "past_results": "id society_id year kind project title grade terminated stars model source "
                    "source_sha256 imported_at",
}
"""Every other column, per table: it holds no personal information (ids, states, amounts,
times, scores). A new column must be added here or to PERSONAL (tests/test_personal.py)."""


@dataclass(frozen=True)
class Sealed:
    """An audit action whose payload carries personal values: which fields, sealed as whose."""

    fields: tuple[str, ...]
    subject: str
    """A format over the payload and `actor`: the subject whose key seals the fields."""

    def subject_of(self, payload: dict[str, Any], actor: str) -> str:
        return self.subject.format(actor=actor, **payload)

    def holds_values(self, payload: dict[str, Any]) -> bool:
        """Whether any of the fields (a dotted name reaches into a dict) has a value."""
        return any(field_value(payload, f) for f in self.fields)


def field_value(payload: dict[str, Any], dotted: str) -> Any:
    """`payload["a"]["b"]` for "a.b"; None where the path does not lead."""
    value: Any = payload
    for part in dotted.split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def _sealed() -> dict[str, Sealed]:
    subjects = {"account_add": "account:{account}", "objection_file": "objector:{objection}",
                "object": "objector:{options[objection]}",
                "attachment": "account:{actor}", "assessment_report": "account:{actor}"}
    fields: dict[str, list[str]] = {}
    for h in PERSONAL:
        if h.where.startswith("audit:"):
            action, field = h.where[len("audit:"):].split(".", 1)
            fields.setdefault(action, []).append(field)
    return {action: Sealed(tuple(f), subjects[action]) for action, f in fields.items()}


SEALED: dict[str, Sealed] = _sealed()
"""The audit actions whose payloads carry personal values, derived from PERSONAL: `audit.record`
seals those fields as they are written."""


def columns() -> dict[str, list[Held]]:
    """The personal columns per table (`table.column` entries only)."""
    out: dict[str, list[Held]] = {}
    for h in PERSONAL:
        if "." in h.where and ":" not in h.where:
            out.setdefault(h.where.split(".")[0], []).append(h)
    return out
