"""Who may do what, checked for every role against the tables in states/: every trigger of
every workflow (its moves' `who`), every administrative act (`states.roles.ACTS`), and a few
real commands refused to an account without the role, with the database left as it was.

The expected answers are derived from the tables, never written out here: a role that a
table change adds or removes changes what these tests expect with it.
"""
from __future__ import annotations

from pathlib import Path

import pytest
from worlds import (
    ADMIN,
    AUDITOR,
    CALL,
    EXAMPLE_CALL,
    FINANCE,
    GRANT_CALL,
    STAR_CALL,
    Cli,
    experts,
    fingerprint,
    refused,
    shared_world,
    societies,
    write_csv,
)

from lifecycle.core import accounts
from lifecycle.core.db import make_engine
from lifecycle.engine import engine, permissions
from lifecycle.engine.machine import for_workflow
from lifecycle.kinds import KINDS
from states import roles as R

CALLS = {"project": CALL, "star": "2025-star", "grant": "2025-grant"}
SOCIETY_ID, EXPERT_ID = "S001", "E001"


def one_role_accounts(cli: Cli, tmp_path: Path) -> dict[str, str]:
    """The example calls of every kind, two societies and two experts, and per person role an account
    holding only that role (the society and expert ones speak for S001 and E001)."""
    cli("call", "create", EXAMPLE_CALL, now="2025-02-01")
    cli("call", "create", STAR_CALL, now="2025-02-01")
    cli("call", "create", GRANT_CALL, now="2025-02-01")
    cli("society", "import", write_csv(tmp_path / "soc.csv", societies(2)), now="2025-02-01")
    cli("expert", "import", write_csv(tmp_path / "exp.csv", experts(2)), now="2025-02-01")
    names = {}
    for role in R.PERSON_ROLES:
        extra = {R.SOCIETY: ["--society", SOCIETY_ID], R.EXPERT: ["--expert", EXPERT_ID]}
        cli("user", "add", f"only-{role}", "--role", role, *extra.get(role, []),
            now="2025-02-01")
        names[role] = f"only-{role}"
    return names


@pytest.fixture(scope="module")
def matrix(tmp_path_factory) -> tuple[Cli, dict[str, str]]:
    """The world of the matrix tests, built once: they only read it (dry runs, checks), and
    each proves it left the database as it was."""
    folder = tmp_path_factory.mktemp("matrix")
    with shared_world(folder) as cli:
        yield cli, one_role_accounts(cli, folder)


def actor_of(conn, names: dict[str, str], role: str) -> accounts.Actor:
    """The identity holding only `role`: its account, or the scheduler's own."""
    if role == R.SCHEDULER:
        return accounts.system()
    if role == R.SERVICE:
        return accounts.service()
    actor = accounts.load(conn, names[role])
    assert actor.roles == {role}
    return actor


def trigger_roles(workflow: str) -> dict[str, set[str]]:
    """Per trigger of the workflow, the union of its moves' `who` (from the stage tables)."""
    out: dict[str, set[str]] = {}
    for move in KINDS[workflow].workflow.moves:
        out.setdefault(move.trigger, set()).update(move.who)
    return out


def test_the_tables_cover_every_role_and_trigger():
    """The matrix below is only as good as its inputs: every trigger the machine knows has
    a `who`, and every role fires some trigger or may do some act."""
    for name in KINDS:
        table = trigger_roles(name)
        assert set(for_workflow(name).triggers) == set(table)
        assert all(table.values())
    used = {r for name in KINDS for who in trigger_roles(name).values() for r in who}
    used |= {r for act in R.ACTS for r in act.who}
    assert used == set(R.ROLE_NAMES)


@pytest.mark.parametrize("workflow", sorted(KINDS))
def test_every_trigger_refuses_exactly_the_roles_not_in_its_moves(matrix, workflow):
    cli, names = matrix
    table = trigger_roles(workflow)
    before = fingerprint(cli.db)
    e = make_engine(cli.db)
    seen = {"refused": 0, "allowed": 0}
    try:
        with e.begin() as conn:
            for trigger, who in sorted(table.items()):
                for role in R.ROLE_NAMES:
                    actor = actor_of(conn, names, role)
                    try:
                        engine.advance(conn, CALLS[workflow], trigger, actor, dry_run=True)
                    except accounts.Refused as err:
                        assert role not in who, f"{role} refused {trigger}: {err}"
                        message = str(err)
                        assert f"may not fire {trigger};" in message, message
                        assert f"it is for {'/'.join(sorted(who))}" in message, message
                        seen["refused"] += 1
                    except engine.NothingToMove:
                        # the veto passed; there is simply nothing in the trigger's states
                        assert role in who, f"{role} may fire {trigger}, but is not in {who}"
                        seen["allowed"] += 1
                    else:
                        assert role in who, f"{role} may fire {trigger}, but is not in {who}"
                        seen["allowed"] += 1
    finally:
        e.dispose()
    total = len(table) * len(R.ROLE_NAMES)
    assert seen["refused"] + seen["allowed"] == total
    assert seen["refused"] == sum(len(set(R.ROLE_NAMES) - who) for who in table.values())
    assert fingerprint(cli.db) == before, "a dry run or a refusal changed the database"


def test_every_act_refuses_exactly_the_roles_not_in_its_who(matrix):
    cli, names = matrix
    before = fingerprint(cli.db)
    e = make_engine(cli.db)
    try:
        with e.connect() as conn:
            for act in R.ACTS:
                for role in R.ROLE_NAMES:
                    actor = actor_of(conn, names, role)
                    if role in act.who:
                        assert permissions.require(conn, actor, act.name).name == actor.name
                        continue
                    with pytest.raises(accounts.Refused) as err:
                        permissions.require(conn, actor, act.name)
                    message = str(err.value)
                    assert f"({act.name}); it is for {'/'.join(act.who)}" in message, message
                    assert actor.name in message
    finally:
        e.dispose()
    assert fingerprint(cli.db) == before


def holder_lacking(act: str) -> str:
    """One of the tests' staff accounts that lacks every role of `act`."""
    held = {ADMIN: {R.OFFICER, R.APPROVER, R.COORDINATOR}, FINANCE: {R.FINANCE},
            AUDITOR: {R.AUDITOR}}
    who = set(permissions.ACTS[act].who)
    return next(name for name, roles in held.items() if not roles & who)


def test_commands_refuse_an_account_without_the_role(cli, tmp_path):
    """Each command refuses (exit 1, the act named, the database as it was) when the
    account lacks the act's roles; the same commands by a holder get past the check."""
    cli("call", "create", EXAMPLE_CALL, now="2025-02-01")
    soc = write_csv(tmp_path / "soc.csv", societies(2))
    notice = tmp_path / "notice.html"
    commands = [
        ("payment.pay", ("payments", "pay", CALL)),
        ("registry.import", ("society", "import", soc)),
        ("review.assign", ("review", "assign", CALL, "--per-application", "3")),
        ("notice.publish", ("notice", "publish", CALL, "--html", notice)),
        ("user.manage", ("user", "add", "newcomer", "--role", "finance")),
        ("audit.read", ("audit", "verify")),
    ]
    for act, args in commands:
        name = holder_lacking(act)
        out = refused(Cli(cli.db, actor=name), *args)
        assert f"({act}); it is for {'/'.join(permissions.ACTS[act].who)}" in out, out
        assert name in out
    assert not notice.exists(), "a refused notice publish wrote its page"
    # the holders of the roles get past the permission check
    cli("society", "import", soc, now="2025-02-01")
    cli("user", "add", "newcomer", "--role", "finance", now="2025-02-01")
    assert cli("audit", "verify", actor=AUDITOR).exit_code == 0
    paid = cli("payments", "pay", CALL, now="2025-02-02", ok=False, actor=FINANCE)
    assert paid.exit_code == 1 and "no instalment of 2025-project is due" in paid.output


@pytest.mark.parametrize("role", [R.SOCIETY, R.EXPERT])
def test_reading_commands_refuse_a_non_staff_account(matrix, role):
    cli, names = matrix
    for args in (("status", CALL), ("user", "list"), ("audit", "query")):
        out = refused(Cli(cli.db, actor=names[role]), *args)
        assert f"(read); it is for {'/'.join(R.STAFF)}" in out, out
