"""The worlds the tests run in, built in one place, and the readers the tests check them with.

- `Cli`, which runs `starfund` in-process on one database (the databases themselves, new or
  as `starfund init` leaves them, come from databases.py through conftest's fixtures).
- Calls are data: an example call file read into a dict (`call_data`), changed by a merge
  patch, and written back as TOML (`call_file`) for `starfund call create`, or stored through
  the config loader (`create_call`) where a test stores a call without the command line.
- People and declarations: rows for the importers (`societies`, `experts`, `applications`,
  written by `write_csv`), and calls brought to the point a test needs through the CLI:
  submitted, checked, in review, reviewed, proposed, funded, rated.
- Readers: the CLI's JSON (`states`, `app_state`, `audit_events`, `run_due`, ...) and the
  database itself (`db_rows`, `audit_rows`, `fingerprint`).
"""
from __future__ import annotations

import csv
import getpass
import json
import sqlite3
import tomllib
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing, contextmanager, nullcontext
from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from click.testing import CliRunner
from databases import World, backend, need_postgres, new_pg_database
from sqlalchemy import select, text

from lifecycle import kinds
from lifecycle.acts.advancing import NOTHING_MOVED
from lifecycle.core import callconfig, clock
from lifecycle.core.db import make_engine, resolve_url, transaction
from lifecycle.core.models import Assignment, AuditEvent

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE_CALL = ROOT / "examples" / "call.toml"
STAR_CALL = ROOT / "examples" / "star-call.toml"
GRANT_CALL = ROOT / "examples" / "grant-call.toml"
EXAMPLES = {"project": EXAMPLE_CALL, "star": STAR_CALL, "grant": GRANT_CALL}
CALL = "2025-project"
CATEGORIES = ("academic", "policy", "popsci", "talent", "capacity")
CRITERIA = {"content": 30, "method": 25, "team": 15, "outputs": 20, "budget": 10}

# --- the command line -----------------------------------------------------------------------


class Cli:
    """Runs `starfund` commands in-process through click's CliRunner against one database."""

    def __init__(self, db: str, actor: str = "admin-test", config: Path | None = None) -> None:
        self.db, self.actor = db, actor
        self.config = config
        """The operator's own config folder for these commands (its keys), when not the
        test's (STARFUND_CONFIG_DIR, conftest)."""
        self.runner = CliRunner()

    def __call__(self, *args: str, ok: bool = True, now: str | None = None,
                 actor: str | None = None) -> Any:
        from cli import main

        full = ["--db", self.db, "--as", actor or self.actor]
        if now:
            full += ["--now", now]
        env = {"STARFUND_CONFIG_DIR": str(self.config)} if self.config else None
        result = self.runner.invoke(main, full + [str(a) for a in args], catch_exceptions=False,
                                    env=env)
        clock.set_now(None)
        if ok and result.exit_code != 0:
            raise AssertionError(f"starfund {' '.join(map(str, args))} exited {result.exit_code}:"
                                 f"\n{result.output}")
        return result


ADMIN = "admin-test"
"""The tests' staff account: officer, coordinator and approver (made by `init`)."""
FINANCE = "finance-test"
AUDITOR = "auditor-test"


def founded(cli: Cli, *init: str) -> Cli:
    """`starfund init --simulation` (with `init`'s further options, e.g. --crypto sm) and the
    tests' accounts: ADMIN (officer, approver, coordinator), FINANCE, AUDITOR, and the OS
    user's (as ADMIN). The keys go to STARFUND_CONFIG_DIR (conftest: per test)."""
    cli("init", "--simulation", "--account", ADMIN, *init)
    cli("user", "roles", ADMIN, "--grant", "coordinator", actor=ADMIN)
    cli("user", "add", FINANCE, "--role", "finance", actor=ADMIN)
    cli("user", "add", AUDITOR, "--role", "auditor", actor=ADMIN)
    cli("user", "add", getpass.getuser(), "--role", "officer", "--role", "coordinator",
        "--role", "approver", actor=ADMIN)  # a command run with no --as: the OS user's account
    return cli


FOUNDED = World("founded", lambda db, _: founded(Cli(db)))
"""A database as `founded` leaves it (conftest's `cli`, `founded_db_url`, ...), built once and
copied: the keys it names are copied into each test's config folder."""


# --- calls ----------------------------------------------------------------------------------

# The mid-term check and final acceptance, paid 50/30/20, that examples/call.toml describes in
# its comments (and that `starfund demo` runs).
TWO_CHECKPOINTS = {
    "assessment": {"checkpoints": [
        {"id": "midterm", "name": "中期检查", "name_en": "Mid-term check",
         "report_due": datetime(2025, 9, 15, 17)},
        {"id": "final", "name": "结题验收", "name_en": "Final acceptance",
         "report_due": datetime(2025, 12, 15, 17)}]},
    "payments": {"mode": "instalments", "recover_percent": 100, "instalments": [
        {"label": "首期 first instalment", "percent": 50, "release": "award"},
        {"label": "中期 after the mid-term check", "percent": 30, "release": "midterm"},
        {"label": "尾款 after final acceptance", "percent": 20, "release": "final"}]},
}


def merged(base: Any, patch: Any) -> Any:
    """`base` with `patch` applied as a JSON merge patch (RFC 7386): tables merge key by key,
    None deletes a key, anything else replaces. A table of whole-number keys patches a list
    item by item: {"categories": {4: {"cap": 600_000}}} changes the fifth category's cap."""
    if isinstance(patch, dict) and isinstance(base, list) and all(
            isinstance(k, int) for k in patch):
        out = list(base)
        for i, item in patch.items():
            out[i] = merged(out[i], item)
        return out
    if not isinstance(patch, dict) or not isinstance(base, dict):
        return patch
    out = dict(base)
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merged(out.get(key), value) if key in out else merged({}, value)
    return out


def _years_on(value: Any, years: int) -> Any:
    if isinstance(value, dict):
        return {k: _years_on(v, years) for k, v in value.items()}
    if isinstance(value, list):
        return [_years_on(v, years) for v in value]
    if isinstance(value, date):  # datetimes too
        return value.replace(year=value.year + years)
    return value


def call_data(patch: dict | None = None, *, example: str = "project", call_id: str | None = None,
              years: int = 0, checkpoints: bool = False) -> dict[str, Any]:
    """An example call (examples/call.toml or, with example="star", star-call.toml) as a dict:
    with `checkpoints` its mid-term check and final acceptance, every date `years` on (its id
    too, unless `call_id` names it), then `patch` merged in (see `merged`)."""
    data = tomllib.loads(EXAMPLES[example].read_text(encoding="utf-8"))
    if checkpoints:
        data = merged(data, TWO_CHECKPOINTS)
    if years:
        data = _years_on(data, years)
        data["id"] = data["id"].replace("2025", str(2025 + years), 1)
    if call_id:
        data["id"] = call_id
    return merged(data, patch or {})


def call_file(tmp_path: Path, patch: dict | None = None, *, name: str | None = None,
              **kw: Any) -> Path:
    """`call_data(patch, **kw)` written as a TOML call file (tmp_path/<id>.toml unless named)."""
    data = call_data(patch, **kw)
    path = tmp_path / (name or f"{data['id']}.toml")
    path.write_text(tomli_w.dumps(data), encoding="utf-8")
    return path


def call_config(patch: dict | None = None, **kw: Any) -> callconfig.CallConfig:
    """`call_data(patch, **kw)` validated by the config loader."""
    return kinds.parse(call_data(patch, **kw))


def create_call(db: str, data: dict[str, Any], now: str | None = None,
                actor: str = "admin-test") -> callconfig.CallConfig:
    """Store a call from its data through the config loader and `calls.create` (at `now`)."""
    from lifecycle.acts import calls

    e = make_engine(db)
    try:
        with clock.frozen(now) if now else nullcontext(), transaction(e) as s:
            return calls.create(s.connection(), kinds.parse(data), actor)
    finally:
        e.dispose()


def call_closing(db: str, call_id: str, closes: datetime, opens: datetime | None = None,
                 reminders: dict | None = None) -> None:
    """A call like examples/call.toml whose declaration closes at `closes` (and opens at
    `opens`, 30 days before unless given), review and assessment due after it."""
    patch: dict[str, Any] = {"calendar": {
        "declaration_opens": opens or closes - timedelta(days=30), "declaration_closes": closes,
        "review_due": closes + timedelta(days=20), "assessment_due": closes + timedelta(days=200)}}
    if reminders is not None:
        patch["reminders"] = reminders
    create_call(db, call_data(patch, call_id=call_id))


# --- people and declarations ----------------------------------------------------------------

def write_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    """Rows as a CSV file; its columns are every key of any row, in order of appearance."""
    columns = list(dict.fromkeys(k for r in rows for k in r))
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=columns)
        w.writeheader()
        w.writerows(rows)
    return path


def _with(rows: list[dict[str, Any]], per_id: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    for r in rows:
        r.update(per_id.get(r["id"], {}))
    return rows


def societies(n: int, **per_id: dict[str, Any]) -> list[dict[str, Any]]:
    """S001..: society S00i has the institution Inst{i % 4}; per_id={"S002": {...}} changes one."""
    return _with([{"id": f"S{i:03d}", "name": f"市测试{i}学会", "name_en": f"Test Society {i}",
                   "email": f"s{i}@example.org", "institution": f"Inst{i % 4}",
                   "annual_inspection_passed": "yes", "penalty": "no"}
                  for i in range(1, n + 1)], per_id)


def experts(n: int, **per_id: dict[str, Any]) -> list[dict[str, Any]]:
    """E001..: expert E00i has the institution Uni{i % 5}, no society; per_id changes one."""
    return _with([{"id": f"E{i:03d}", "name": f"专家{i}", "email": f"e{i}@example.org",
                   "institution": f"Uni{i % 5}", "societies": ""} for i in range(1, n + 1)],
                 per_id)


def applications(n: int, categories: tuple[str, ...] = CATEGORIES, per_society: int | None = None,
                 amount: int = 20000, **per_id: dict[str, Any]) -> list[dict[str, Any]]:
    """A0001..: categories in turn, `per_society` of them from each society S001.. (as many as
    there are categories unless given), `amount` requested each; per_id changes one."""
    per = per_society or len(categories)
    return _with([{"id": f"A{i:04d}", "society_id": f"S{(i - 1) // per + 1:03d}",
                   "category": categories[(i - 1) % len(categories)], "title": f"项目 {i}",
                   "requested_amount": amount, "summary": "摘要"} for i in range(1, n + 1)],
                 per_id)


def people(cli: Cli, tmp_path: Path, n_societies: int = 8, n_experts: int = 5,
           member: dict[str, str] | None = None, now: str = "2025-01-10",
           classes: dict[str, str] | None = None) -> None:
    """Societies S001.. and experts E001.. imported (E00k belongs to member[E00k] if given;
    society S00i has the class classes[S00i] if given, else none)."""
    cli("society", "import", write_csv(tmp_path / "soc.csv", societies(
        n_societies, **{s: {"class": c} for s, c in (classes or {}).items()})), now=now)
    rows = experts(n_experts, **{x: {"societies": s} for x, s in (member or {}).items()})
    cli("expert", "import", write_csv(tmp_path / "exp.csv", rows), now=now)


def small_world(cli: Cli, tmp_path: Path) -> Cli:
    """The example call with 10 societies, 8 experts and 20 drafts (A0001.., 5 per society)."""
    cli("call", "create", EXAMPLE_CALL, now="2025-02-01")
    cli("society", "import", write_csv(tmp_path / "soc.csv", societies(10)), now="2025-02-01")
    cli("expert", "import", write_csv(tmp_path / "exp.csv", experts(8)), now="2025-02-01")
    cli("application", "import", CALL,
        write_csv(tmp_path / "apps.csv", applications(20)), now="2025-03-10")
    return cli


def _worked(db: str, tmp_path: Path) -> None:
    cli = Cli(db)
    cli("advance", CALL, "submit", now="2025-03-20")
    cli("advance", CALL, "close_declaration", now="2025-04-08")


SMALL = World("small", lambda db, tmp_path: small_world(Cli(db), tmp_path), base=FOUNDED)
WORKED = World("worked", _worked, base=SMALL)
"""The fixtures' worlds (conftest's small_call and worked), built once per session and copied."""


def submitted(cli: Cli, tmp_path: Path, n: int, n_societies: int = 4,
              languages: dict[str, str] | None = None) -> Cli:
    """The example call with n applications (5 per society S001.., each writing Chinese unless
    `languages` says otherwise) submitted: n messages queued."""
    socs = societies(n_societies)
    if languages:
        for s in socs:
            s["language"] = languages.get(s["id"], "zh")
    cli("call", "create", EXAMPLE_CALL, now="2025-02-01")
    cli("society", "import", write_csv(tmp_path / "soc.csv", socs), now="2025-02-01")
    cli("application", "import", CALL,
        write_csv(tmp_path / "apps.csv", applications(n)), now="2025-03-10")
    advance(cli, "submit", "2025-03-20")
    return cli


def submitted_world(n: int, languages: dict[str, str] | None = None) -> World:
    """`submitted(cli, tmp_path, n, languages=languages)` as a World, built once and copied."""
    name = f"submitted-{n}" + "".join(f"-{s}={lang}" for s, lang in sorted((languages or {}).items()))
    return World(name, lambda db, tmp_path: submitted(Cli(db), tmp_path, n, languages=languages),
                 base=FOUNDED)


def drafts(cli: Cli, tmp_path: Path, call_id: str, n: int, now: str | None = None) -> None:
    """n drafts CALL-A001.. in `call_id` (5 per society, from S001)."""
    rows = [{**r, "id": f"{call_id}-A{i:03d}"} for i, r in enumerate(applications(n), start=1)]
    cli("application", "import", call_id, write_csv(tmp_path / f"{call_id}.csv", rows), now=now)


def overdue_call(cli: Cli, tmp_path: Path, call_id: str, n: int = 3) -> datetime:
    """A call whose declaration closed an hour before now (the clock's: the wall clock unless
    set), with n drafts submitted the day before: its deadlines are due, n mails queued.
    Returns that now."""
    now = clock.now()
    call_closing(cli.db, call_id, now - timedelta(hours=1), opens=now - timedelta(days=30))
    before = (now - timedelta(days=1)).isoformat()
    drafts(cli, tmp_path, call_id, n, now=before)
    advance(cli, "submit", before, call=call_id)
    return now


def workflow_call(db: str, tmp_path: Path, workflow: str) -> Cli:
    """On an initialised database, the example call on workflow `workflow` (e.g. a test-only
    one registered as a kind in lifecycle.kinds.KINDS), 10 societies, 20 applications submitted."""
    cli = Cli(db)
    create_call(db, call_data({"workflow": workflow}), now="2025-02-01")
    cli("society", "import", write_csv(tmp_path / "soc.csv", societies(10)), now="2025-02-01")
    cli("application", "import", CALL, write_csv(tmp_path / "apps.csv", applications(20)),
        now="2025-03-10")
    cli("advance", CALL, "submit", now="2025-03-20")
    return cli


def register_workflow(monkeypatch: pytest.MonkeyPatch, name: str, *moves: Any) -> None:
    """A test-only workflow `name`: the project workflow with a first stage of `moves`,
    registered as a kind (lifecycle.kinds.KINDS) for one test (stage data, not a mock)."""
    from types import SimpleNamespace

    from lifecycle import kinds
    from states.workflows import Workflow

    project = kinds.of("project")
    stage = SimpleNamespace(STATES=(), MOVES=moves)
    workflow = Workflow(name, f"test workflow {name}", project.workflow.initial,
                        (stage, *project.workflow.stages))
    monkeypatch.setitem(kinds.KINDS, name, replace(project, name=name, workflow=workflow))


def declared_batch(cli: Cli, tmp_path: Path, n: int) -> None:
    """The example call with n applications submitted, 5 per society; every 11th society
    failed its annual inspection, so the formal check finds some ineligible."""
    socs = societies((n + len(CATEGORIES) - 1) // len(CATEGORIES))
    for s in socs[::11]:
        s["annual_inspection_passed"] = "no"
    cli("call", "create", EXAMPLE_CALL, now="2025-02-01")
    cli("society", "import", write_csv(tmp_path / "soc.csv", socs), now="2025-02-01")
    cli("application", "import", CALL, write_csv(tmp_path / "apps.csv", applications(n)),
        now="2025-03-10T10:00")
    cli("advance", CALL, "submit", now="2025-03-20T10:00")


# --- review ---------------------------------------------------------------------------------

def eligible_call(cli: Cli, tmp_path: Path, expert_rows: list[dict], apps: list[dict],
                  call: Path | None = None, n_societies: int | None = None,
                  soc: list[dict] | None = None) -> None:
    """A call (the example unless a file is given), its societies (`soc`, else one per
    application), experts and applications, declared and through the formal check."""
    cli("call", "create", call or EXAMPLE_CALL, now="2025-02-01")
    cli("society", "import", write_csv(tmp_path / "soc.csv",
                                       soc or societies(n_societies or len(apps))),
        now="2025-02-01")
    cli("expert", "import", write_csv(tmp_path / "exp.csv", expert_rows), now="2025-02-01")
    cli("application", "import", CALL, write_csv(tmp_path / "apps.csv", apps), now="2025-03-10")
    cli("advance", CALL, "submit", now="2025-03-20")
    cli("advance", CALL, "close_declaration", now="2025-04-08")


def in_review(cli: Cli, tmp_path: Path, expert_rows: list[dict] | None = None,
              apps: list[dict] | None = None, call: Path | None = None,
              per: int = 3, soc: list[dict] | None = None) -> dict[str, list[str]]:
    """`eligible_call` (6 experts and 4 academic applications unless given), then `per`
    experts assigned to each application and review started; returns the assignments."""
    eligible_call(cli, tmp_path, experts(6) if expert_rows is None else expert_rows,
                  applications(4, ("academic",)) if apps is None else apps, call=call, soc=soc)
    cli("review", "assign", CALL, "--per-application", str(per), now="2025-04-08")
    cli("advance", CALL, "start_review", now="2025-04-08")
    return assignments(cli)


def reviewed(cli: Cli, tmp_path: Path, totals_of: Callable[[str, int], float], n_apps: int = 6,
             call: Path | None = None, per: int = 3, soc: list[dict] | None = None,
             apps: list[dict] | None = None) -> dict[str, list[str]]:
    """n_apps academic and policy applications (one per society; `apps` if given) in review
    with 8 experts; the k-th expert of application a gives the total totals_of(a, k); review
    closed (for the applications that passed the formal check)."""
    got = in_review(cli, tmp_path, experts(8),
                    apps or applications(n_apps, ("academic", "policy"), per_society=1),
                    call=call, per=per, soc=soc)
    score(cli, tmp_path, {(x, a): totals_of(a, k) for a, xs in got.items()
                          for k, x in enumerate(xs)})
    cli("advance", CALL, "close_review", now="2025-05-07")
    return got


def proposed(cli: Cli, tmp_path: Path, call: Path | None = None, n_apps: int = 6,
             publish_at: str = "2025-05-10T10:00") -> Any:
    """Six applications reviewed (90 each), ranked, all proposed, and the notice published."""
    reviewed(cli, tmp_path, lambda a, k: 90, n_apps=n_apps, call=call)
    cli("advance", CALL, "rank", now="2025-05-08")
    cli("advance", CALL, "propose", now="2025-05-09")
    return cli("notice", "publish", CALL, "--html", tmp_path / "notice.html", now=publish_at)


def file_objection(cli: Cli, app: str, now: str, by: str = "王明", contact: str = "13800000000",
                   reason: str = "预算与往年重复", *extra: Any, ok: bool = True) -> Any:
    """`objection file APP` by a named person during the notice."""
    return cli("objection", "file", app, "--by", by, "--contact", contact, "--reason", reason,
               *extra, now=now, ok=ok)


def sheet_row(expert: str, app: str, total: float) -> dict[str, Any]:
    """A wide sheet row whose weighted total is `total` (criteria max = weight)."""
    return {"expert_id": expert, "application_id": app,
            **{c: round(m * total / 100, 4) for c, m in CRITERIA.items()}}


def score(cli: Cli, tmp_path: Path, totals: dict[tuple[str, str], float],
          name: str = "sheet.csv", now: str = "2025-04-20", ok: bool = True,
          call_id: str = CALL) -> Any:
    """`review import` of a sheet giving each (expert, application) its total."""
    path = write_csv(tmp_path / name, [sheet_row(e, a, t) for (e, a), t in totals.items()])
    return cli("review", "import", call_id, path, now=now, ok=ok)


def score_assigned(db: str, quality: float | Callable[[str], float] = 0.9,
                   skip: Iterable[tuple[str, str]] = (), call_id: str = CALL) -> int:
    """Every expert still assigned returns a sheet (through reviewing.record_scores) giving
    each criterion `quality` (or quality(application)) of its maximum, except the
    (expert, application) pairs in `skip`. Returns how many were recorded."""
    from lifecycle.acts import reviewing
    from lifecycle.engine import engine

    share = quality if callable(quality) else (lambda app: quality)
    skip = set(skip)
    e = make_engine(db)
    try:
        with transaction(e) as s:
            conn = s.connection()
            call = engine.load_call(conn, call_id)
            pairs = conn.execute(select(Assignment.expert_id, Assignment.application_id)
                                 .where(Assignment.call_id == call_id,
                                        Assignment.status == "assigned")).all()
            sheets = [(ex, app, {c.id: round(c.max * share(app), 1) for c in call.criteria})
                      for ex, app in pairs if (ex, app) not in skip]
            return reviewing.record_scores(conn, call_id, sheets, ADMIN)
    finally:
        e.dispose()
        clock.set_now(None)


# --- funded projects and their assessment ----------------------------------------------------

def _at(when: datetime, **delta: float) -> str:
    return (when + timedelta(**delta)).isoformat()


def funded_project_call(cli: Cli, tmp_path: Path, societies_: list[str], call_file: Path,
                        amount: int = 20000, totals: dict[str, float] | None = None,
                        until: str = "fund") -> tuple[str, callconfig.CallConfig]:
    """Create the call, declare one academic project per society, review (every expert gives
    society s's project totals[s], else 90), rank, award, fund; or stop after `until`
    ("close_review", "rank").

    Application ids are CALL-Snnn. Returns (call id, config).
    """
    call = kinds.load(call_file)
    cal = call.calendar
    cli("call", "create", call_file, now=_at(cal.declaration_opens, days=-1))
    rows = [{"id": f"{call.id}-{s}", "society_id": s, "category": "academic",
             "title": f"项目 {s}", "requested_amount": amount, "summary": "摘要"}
            for s in societies_]
    cli("application", "import", call.id, write_csv(tmp_path / f"{call.id}-apps.csv", rows),
        now=_at(cal.declaration_opens, days=1))
    cli("advance", call.id, "submit", now=_at(cal.declaration_opens, days=2))
    cli("advance", call.id, "close_declaration", now=_at(cal.declaration_closes, minutes=1))
    if not states(cli, call.id).get("eligible"):
        return call.id, call
    cli("review", "assign", call.id, "--per-application", "3",
        now=_at(cal.declaration_closes, days=1))
    cli("advance", call.id, "start_review", now=_at(cal.declaration_closes, days=1))
    of = {f"{call.id}-{s}": v for s, v in (totals or {}).items()}
    score(cli, tmp_path, {(x, a): of.get(a, 90) for a, xs in assignments(cli, call.id).items()
                          for x in xs},
          name=f"{call.id}-scores.csv", now=_at(cal.review_due, days=-2), call_id=call.id)
    cli("advance", call.id, "close_review", now=_at(cal.review_due, minutes=1))
    if until == "close_review":
        return call.id, call
    cli("advance", call.id, "rank", now=_at(cal.review_due, days=1))
    if until == "rank":
        return call.id, call
    cli("advance", call.id, "propose", now=_at(cal.review_due, days=2))
    cli("advance", call.id, "open_notice", now=_at(cal.review_due, days=2))
    cli("advance", call.id, "close_notice", now=_at(cal.review_due, days=12))
    cli("advance", call.id, "fund", now=_at(cal.review_due, days=13))
    return call.id, call


def assess_checkpoint(cli: Cli, tmp_path: Path, call_id: str, grades: dict[str, float],
                      opened: str = "2025-06-01", graded: str = "2025-09-20",
                      decided: str | None = None) -> None:
    """One checkpoint of a funded call: opened, every project given its grade, assessed, and
    (if `decided` says when) its outcomes decided as the grades propose."""
    cli("advance", call_id, "open_assessment", now=opened)
    cli("assessment", "grades", call_id, grade_file(tmp_path, "g.csv", grades), now=graded)
    cli("advance", call_id, "assess", now=graded)
    if decided:
        cli("advance", call_id, "decide_outcome", now=decided)


def grade_file(tmp_path: Path, name: str, grades: dict[str, float | str],
               grader: str | None = None) -> Path:
    rows = [{"application_id": a, "score": s, **({"grader": grader} if grader else {})}
            for a, s in grades.items()]
    return write_csv(tmp_path / name, rows)


# --- star calls -----------------------------------------------------------------------------

def star_sheet(call: callconfig.CallConfig, quality: float, cls: str = "") -> dict[str, float]:
    """Scores at `quality` share of each indicator's maximum (rounded to 0.5), on the sheet of
    class `cls` (the call's own sheet when the call has none for it)."""
    sheet = call.star.sheet_for(cls) or call.star.own_sheet()
    return {i: round(m * quality * 2) / 2 for i, m in sheet.maxima.items()}


def star_rows(call: callconfig.CallConfig, quality: dict[str, float],
              column: str = "self_score", classes: dict[str, str] | None = None
              ) -> list[dict[str, Any]]:
    return [{"society_id": s, "indicator": i, column: v} for s, q in quality.items()
            for i, v in star_sheet(call, q, (classes or {}).get(s, "")).items()]


def rated_star_call(cli: Cli, tmp_path: Path, call_file: Path, quality: dict[str, float],
                    experts: tuple[str, ...] = ("E001", "E002", "E003"),
                    finish: bool = True, classes: dict[str, str] | None = None
                    ) -> callconfig.CallConfig:
    """A star call where society s (of class classes[s], if given) scores quality[s] of every
    maximum of its sheet at every step.

    With `finish`, it runs to the end: notice closed, stars awarded.
    """
    call = kinds.load(call_file)
    cal = call.calendar
    cli("call", "create", call_file, now=_at(cal.declaration_opens, days=-1))
    cli("star", "declare", call.id,
        write_csv(tmp_path / f"{call.id}-self.csv", star_rows(call, quality, classes=classes)),
        now=_at(cal.declaration_opens, days=3))
    cli("advance", call.id, "submit", now=_at(cal.declaration_opens, days=4))
    cli("advance", call.id, "close_declaration", now=_at(cal.declaration_closes, minutes=1))
    status = states(cli, call.id)
    eligible = [s for s in quality if state_of(cli, f"{call.id}-{s}") == "eligible"]
    if not status.get("eligible"):
        return call
    cli("star", "check", call.id, write_csv(
        tmp_path / f"{call.id}-checked.csv",
        star_rows(call, {s: quality[s] for s in eligible}, "checked_score", classes)),
        now=_at(cal.declaration_closes, days=5))
    cli("advance", call.id, "start_review", now=_at(cal.declaration_closes, days=6))
    rows = [{"expert_id": x, **r} for x in experts
            for r in star_rows(call, {s: quality[s] for s in eligible}, "score", classes)]
    cli("star", "review", call.id, write_csv(tmp_path / f"{call.id}-experts.csv", rows),
        now=_at(cal.review_due, days=-3))
    if not finish:
        return call
    cli("advance", call.id, "close_review", now=_at(cal.review_due, minutes=1))
    if states(cli, call.id).get("rated"):
        cli("advance", call.id, "open_notice", now=_at(cal.review_due, days=1))
    cli("advance", call.id, "close_notice", now=_at(cal.review_due, days=10))
    return call


# --- reading a world through the CLI ---------------------------------------------------------

def json_of(result: Any) -> Any:
    return json.loads(result.output)


def advance(cli: Cli, trigger: str, now: str, *extra: str, call: str = CALL,
            actor: str | None = None) -> dict[str, Any]:
    """`advance CALL TRIGGER --json` at `now`: its report. Its exit status is checked against
    it: 3 when nothing moved because every candidate was refused, else 0."""
    r = cli("advance", call, trigger, "--json", *extra, now=now, actor=actor, ok=False)
    if r.exit_code not in (0, NOTHING_MOVED):
        raise AssertionError(f"starfund advance {call} {trigger} exited {r.exit_code}:\n{r.output}")
    report = json_of(r)
    refused_all = report["moved"] == 0 and report["skipped"] > 0
    assert r.exit_code == (NOTHING_MOVED if refused_all else 0), (r.exit_code, r.output)
    return report


def states(cli: Cli, call: str = CALL) -> dict[str, int]:
    """How many applications of the call are in each state."""
    return {s["state"]: s["count"] for s in json_of(cli("status", call, "--json"))["states"]}


def app_state(cli: Cli, app_id: str) -> dict[str, Any]:
    """`show APP --json`: the application, its history, payments, notifications..."""
    return json_of(cli("show", app_id, "--json"))


def state_of(cli: Cli, app_id: str) -> str:
    return app_state(cli, app_id)["application"]["state"]


def audit_events(cli: Cli, **filters: str) -> list[dict[str, Any]]:
    """`audit query --json`, all of it, with filters such as trigger=, application=, call=."""
    args = []
    for k, v in filters.items():
        args += [f"--{k}", v]
    return json_of(cli("audit", "query", "--limit", "0", "--json", *args))


def run_due(cli: Cli, now: str, ok: bool = True) -> list[dict[str, Any]]:
    """`deadlines run-due --json` at `now`: what fired."""
    r = cli("deadlines", "run-due", "--json", now=now, ok=ok)
    return json.loads(r.output[:r.output.rindex("]") + 1])


def deadlines(cli: Cli, call: str | None = None) -> dict[str, dict[str, Any]]:
    """Every deadline row (of one call if named), by key."""
    args = ["deadlines", "list", "--json"] + ([call] if call else [])
    return {d["key"]: d for d in json_of(cli(*args))}


def listing(cli: Cli, *args: str, now: str | None = None) -> list[dict[str, Any]]:
    """`notify list --json ARGS`: the outbox."""
    return json_of(cli("notify", "list", "--json", *args, now=now))


def refused(cli: Cli, *args: Any, now: str | None = "2025-03-10") -> str:
    """The command fails with exit 1, no traceback, and the database unchanged; its output."""
    before = fingerprint(cli.db)
    r = cli(*args, ok=False, now=now)
    assert r.exit_code == 1, r.output
    assert fingerprint(cli.db) == before, "a refused input changed the database"
    assert "Traceback" not in r.output
    return r.output


# --- reading (and tampering with) the database itself ----------------------------------------

def db_rows(db: str, stmt: Any) -> list[Any]:
    """The rows of a query (a SQLAlchemy statement or SQL text)."""
    e = make_engine(db)
    try:
        with e.connect() as conn:
            return conn.execute(text(stmt) if isinstance(stmt, str) else stmt).all()
    finally:
        e.dispose()


def execute(db: str, *statements: str, **params: Any) -> None:
    """Run SQL statements in one transaction, behind the engine's back."""
    e = make_engine(db)
    try:
        with e.begin() as conn:
            for statement in statements:
                conn.execute(text(statement), params)
    finally:
        e.dispose()


def audit_rows(db: str, **where: Any) -> list[Any]:
    """Audit events in chain order whose columns equal `where` (e.g. action=, actor=)."""
    stmt = select(AuditEvent.__table__).order_by(AuditEvent.seq)
    for k, v in where.items():
        stmt = stmt.where(getattr(AuditEvent, k) == v)
    return db_rows(db, stmt)


def moves_per_application(db: str, action: str) -> dict[str, int]:
    """How many audit events of `action` each application has (a move is one event)."""
    return dict(db_rows(db, text("SELECT application_id, count(*) FROM audit_events "
                                 "WHERE action = :a GROUP BY application_id").bindparams(a=action)))


def assignments(cli: Cli, call_id: str = CALL) -> dict[str, list[str]]:
    """Live (assigned or submitted) experts per application, in id order."""
    out: dict[str, list[str]] = {}
    for a, x in db_rows(cli.db, select(Assignment.application_id, Assignment.expert_id)
                        .where(Assignment.call_id == call_id,
                               Assignment.status.in_(("assigned", "submitted")))
                        .order_by(Assignment.application_id, Assignment.expert_id)):
        out.setdefault(a, []).append(x)
    return out


def fingerprint(db: str) -> dict[str, list[tuple]]:
    """Every row of every table, sorted: two equal fingerprints mean an unchanged database.

    Read through the driver (SQLite: each table's values as stored; PostgreSQL: every row
    as JSON, all tables in one query, so a JSON value is compared as a value, not as the
    text one writer or another gave it): several times cheaper than an engine per call,
    and the fuzz test takes two per example.
    """
    url = resolve_url(db)
    if url.startswith("sqlite"):
        with closing(sqlite3.connect(url.split(":///", 1)[1])) as conn:
            names = [n for (n,) in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' "
                "ESCAPE '\\' AND name <> 'alembic_version' ORDER BY name")]
            return {n: sorted(tuple(map(repr, r)) for r in conn.execute(f'SELECT * FROM "{n}"'))
                    for n in names}
    import psycopg

    with psycopg.connect(url.replace("+psycopg", "", 1)) as conn:
        names = [n for (n,) in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
            "AND tablename <> 'alembic_version' ORDER BY tablename")]
        out: dict[str, list[tuple]] = {n: [] for n in names}
        if names:
            rows = conn.execute(" UNION ALL ".join(
                f"SELECT {i}, to_jsonb(t)::text FROM \"{n}\" t" for i, n in enumerate(names))
            ).fetchall()
            for i, row in rows:
                out[names[i]].append((row,))
    return {n: sorted(rows) for n, rows in out.items()}


# --- a world a whole module shares ----------------------------------------------------------

@contextmanager
def shared_world(folder: Path, *init: str) -> Iterator[Cli]:
    """A new database of the backend under test, founded (see `founded`, with `init`'s
    further options) with its keys under
    folder/config, for a module-scoped fixture: built once, it saves a second or more per test
    on PostgreSQL. Its commands keep using folder/config (`Cli.config`), so each test's own
    config folder (conftest) does not hide its keys. The tests that share it must leave it as
    they found it (or put it back)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("STARFUND_CONFIG_DIR", str(folder / "config"))
        drop = None
        if backend() == "postgres":
            need_postgres()
            url, drop = new_pg_database()
        else:
            url = str(folder / "shared.db")
        try:
            yield founded(Cli(url, config=folder / "config"), *init)
        finally:
            if drop:
                drop()
