"""Apply the permission tables of `states.roles` (and each move's `who`) to an Actor.

One place answers "may this account do this now?" for every door (command line,
scheduler, portal): `require` for the administrative acts, `movable` and
`check_moves` for the engine's triggers, `grantable` for the roles an account may hold.
A refusal names the account, the act and the rule, and nothing is written.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import Connection, Engine, or_, select

from lifecycle.core import accounts
from lifecycle.core.accounts import Actor, Refused
from lifecycle.core.callconfig import CallConfig
from lifecycle.core.db import reading
from lifecycle.core.errors import BadValue
from lifecycle.core.models import Assignment, AuditEvent, Call, StarReview
from states import roles as R

ACTS = {a.name: a for a in R.ACTS}
DUTIES = {d.name: d for d in R.DUTIES}


def _roles(actor: Actor) -> str:
    return "/".join(sorted(actor.roles)) or "no role"


def applies(call: CallConfig | None, duty: str) -> bool:
    """Whether the call applies a separation-of-duties rule (the programme's default without a call)."""
    if call is None:
        return DUTIES[duty].default
    return bool(getattr(call.separation, duty))


def require(conn: Connection, actor: Actor | str, act: str,
            call: CallConfig | None = None) -> Actor:
    """The actor (reloaded: enabled, current roles) if it may perform `act` (on `call`), else
    Refused naming the act, the roles it needs and, for a separation rule, the rule."""
    actor = accounts.resolve(conn, actor)
    rule = ACTS[act]
    if not actor.holds(rule.who):
        raise Refused(f"{actor.label} ({_roles(actor)}) may not {rule.help} ({act}); it is for "
                      f"{'/'.join(rule.who)}")
    _check_pairs(actor, call)
    if act == "payment.pay" and call is not None and applies(call, R.PROPOSER_NOT_PAYER):
        _proposer_not_payer(conn, actor, call)
    return actor


def check(db: Engine, actor: Actor | str, act: str, call_id: str | None = None) -> Actor:
    """`require` in a connection of its own: for a command that checks before it starts
    (delivering the outbox, running the scheduler, querying the trail)."""
    with reading(db) as conn:  # only reads: never waits for a writer's lock
        call = None
        if call_id is not None:
            config = conn.execute(select(Call.config).where(Call.id == call_id)).scalar()
            call = CallConfig.model_validate(config) if config is not None else None
        return require(conn, actor, act, call)


def check_scope(actor: Actor, society_id: str | None = None,
                expert_id: str | None = None) -> None:
    """A society's or an expert's account acts on its own society's or expert's rows only
    (staff roles are not scoped)."""
    if actor.holds(R.STAFF) or actor.name == accounts.SYSTEM:
        return
    if society_id is not None and actor.society_id != society_id:
        raise Refused(f"{actor.label} speaks for society {actor.society_id}, not {society_id}")
    if expert_id is not None and actor.expert_id != expert_id:
        raise Refused(f"{actor.label} is expert {actor.expert_id}, not {expert_id}")


def grantable(roles: Iterable[str], society_id: str | None = None,
              expert_id: str | None = None) -> list[str]:
    """The roles, checked: known person roles, no forbidden pair, a society or expert named
    for those roles (and only for them). Returns them sorted; BadValue names what is wrong."""
    wanted = sorted(set(roles))
    problems = []
    for r in wanted:
        if r not in R.ROLE_NAMES:
            problems.append(f"unknown role {r!r} (known: {', '.join(R.PERSON_ROLES)})")
        elif r not in R.PERSON_ROLES:
            problems.append(f"{r!r} is the system's own identity; no account can hold it")
    if not wanted:
        problems.append(f"an account needs at least one role ({', '.join(R.PERSON_ROLES)})")
    for duty, pair in R.EXCLUSIVE_ROLES.items():
        if DUTIES[duty].default and set(pair) <= set(wanted):
            problems.append(f"no one may hold both {pair[0]} and {pair[1]} "
                            f"(rule {duty}: {DUTIES[duty].forbids})")
    for role, given, option in ((R.SOCIETY, society_id, "--society"),
                                (R.EXPERT, expert_id, "--expert")):
        if role in wanted and given is None:
            problems.append(f"the {role} role needs {option} ID (whose contact the account is)")
        if role not in wanted and given is not None:
            problems.append(f"{option} is only for an account with the {role} role")
    if problems:
        raise BadValue("; ".join(problems))
    return wanted


def _check_pairs(actor: Actor, call: CallConfig | None) -> None:
    for duty, pair in R.EXCLUSIVE_ROLES.items():
        if set(pair) <= actor.roles and applies(call, duty):
            raise Refused(f"{actor.label} holds both {pair[0]} and {pair[1]}, which rule {duty} "
                          f"forbids{' for call ' + call.id if call else ''}: "
                          f"{DUTIES[duty].forbids}")


def _proposer_not_payer(conn: Connection, actor: Actor, call: CallConfig) -> None:
    t = AuditEvent.__table__
    row = conn.execute(select(t.c.action, t.c.seq).where(
        t.c.call_id == call.id, t.c.action.in_(R.PROPOSING),
        or_(t.c.actor == actor.name, t.c.by == actor.name)).limit(1)).first()
    if row is not None:
        raise Refused(f"{actor.label} fired {row.action} on {call.id} (audit event {row.seq}), "
                      f"so may not pay it: rule {R.PROPOSER_NOT_PAYER} "
                      f"({DUTIES[R.PROPOSER_NOT_PAYER].forbids})")


# --- moves --------------------------------------------------------------------------------

def movable(actor: Actor, moves: Iterable[Any]) -> list[Any]:
    """The moves (of one trigger and source) this actor's roles may fire."""
    return [m for m in moves if actor.roles & set(m.who)]


def check_moves(conn: Connection, actor: Actor, call: CallConfig, moves: Iterable[Any],
                app_ids: Iterable[str]) -> None:
    """The separation rules a trigger's batch must pass before anything is decided: the pair
    rule for this call, and no approver's move on an application the actor scored."""
    _check_pairs(actor, call)
    approving = any(R.APPROVER in m.who and R.APPROVER in actor.roles for m in moves)
    if not (approving and actor.expert_id and applies(call, R.SCORER_NOT_APPROVER)):
        return
    mine: set[str] = set()          # what the actor scored: few; the batch may be millions
    for table in (Assignment.__table__, StarReview.__table__):
        stmt = select(table.c.application_id).where(table.c.call_id == call.id,
                                                    table.c.expert_id == actor.expert_id)
        if table is Assignment.__table__:
            stmt = stmt.where(table.c.total.is_not(None))
        mine.update(conn.execute(stmt).scalars())
    scored = [a for a in app_ids if a in mine] if mine else []
    if scored:
        shown = ", ".join(sorted(scored)[:5]) + (f" and {len(scored) - 5} more"
                                                 if len(scored) > 5 else "")
        raise Refused(f"{actor.label} scored {len(scored)} application(s) of this batch as "
                      f"expert {actor.expert_id} ({shown}), so may not rank or approve them: "
                      f"rule {R.SCORER_NOT_APPROVER} ({DUTIES[R.SCORER_NOT_APPROVER].forbids}); "
                      "another approver must")
