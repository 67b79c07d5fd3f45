"""A simulated programme year, driven through the same engine and importers as real work.

The clock is moved forward step by step (never slept); every step prints
what happened. Data is generated deterministically from the seed.

The demo only ever writes to a database it made: it creates the schema and
its marker (`meta` key `demo`) in one transaction, in a SQLite file that does
not exist yet or in a database without any table, and it starts over (deletes
or empties) only a database carrying that marker. Pointed at anything else
(a programme's database, an old demo file without the marker, a file that is
not SQLite) it refuses before writing anything (`NotADemo`).
"""
from __future__ import annotations

import random
import shutil
import sqlite3
import tempfile
import time as walltime
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine, func, insert, inspect, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DatabaseError, NoSuchModuleError

from lifecycle import kinds
from lifecycle.acts import calls, reports, reviewing, setup, users
from lifecycle.console import Env, OutputPath, SafePath, common, rich_console
from lifecycle.core import accounts, audit, clock, db, meta, tabular
from lifecycle.core.accounts import Actor
from lifecycle.core.errors import UserError
from lifecycle.core.models import Application, Base, Call, Meta
from lifecycle.core.progress import SILENT, Progress
from lifecycle.demo import years as demo_years
from lifecycle.demo.data.names import (
    CLASS_OF,
    DISCIPLINES,
    GIVEN,
    INSTITUTIONS,
    PROJECT_CLASSES,
    SUPPORT,
    SURNAMES,
    TITLES,
)
from lifecycle.demo.grant import grant_year
from lifecycle.engine import engine
from lifecycle.engine.machine import for_workflow
from lifecycle.progress_bar import shown
from lifecycle.rules import ranking
from lifecycle.scheduling import firing
from notifications import contexts
from notifications.channels import DEFAULT_SENDER, FileChannel
from notifications.delivery import drain
from states.award import IN_NOTICE
from states.roles import APPROVER, AUDITOR, COORDINATOR, EXPERT, FINANCE, OFFICER, SOCIETY

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "call.toml"
DEFAULT_DB = "starfund-demo.db"
MARKER = "demo"
STAFF = {OFFICER: "li-na", COORDINATOR: "zhou-jie", APPROVER: "wang-qiang", FINANCE: "chen-jing",
         AUDITOR: "sun-li"}
"""The demo's staff, one account per role (separation of duties: no one holds two)."""


class NotADemo(UserError):
    """The target database was not made by the demo; nothing was written to it."""


BANKS = ("中国工商银行市分行营业部", "中国建设银行市分行", "中国银行市分行", "交通银行市分行")


def _refuse(target: str, why: str) -> NotADemo:
    return NotADemo(f"{target}: {why}. The demo writes only to a database it made itself, and "
                    "nothing was changed. Run it on a new file (e.g. `starfund demo --db "
                    f"{DEFAULT_DB}`) or an empty database; an old demo file made before demos "
                    "were marked must be deleted by hand.")


def _sqlite_marker(path: Path) -> str | None:
    """The demo marker of an existing SQLite file, read without writing to it (None: unmarked)."""
    # immutable: read the file alone, creating no -wal/-shm beside it (unless a -wal is there,
    # whose content a plain read-only open must see)
    wal = Path(f"{path}-wal").exists()
    uri = f"{path.resolve().as_uri().replace('file://', 'file:', 1)}?mode=ro" + \
        ("" if wal else "&immutable=1")
    try:
        with sqlite3.connect(uri, uri=True) as conn:
            row = conn.execute("SELECT value FROM meta WHERE key = ?", (MARKER,)).fetchone()
    except sqlite3.Error:  # not SQLite, no meta table, unreadable: in any case not a demo's
        return None
    return row[0] if row else None


def _has_marker(e: Engine) -> bool:
    with e.connect() as conn:
        if "meta" not in inspect(conn).get_table_names():
            return False
        return conn.execute(select(Meta.value).where(Meta.key == MARKER)).first() is not None


def _create(e: Engine, seed: int, keys_dir: Path | None) -> None:
    """Schema and marker in one transaction: a database either is a marked demo or untouched;
    then it is founded as a simulation, its keys in `keys_dir` (beside a SQLite file)."""
    cfg = db.alembic_config(e)
    from alembic import command

    with e.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")
        conn.execute(insert(Meta).values(key=MARKER, value=f"made by starfund demo (seed {seed})"))
    setup.initialise(e, meta.SIMULATION, STAFF[APPROVER], (APPROVER,),
                     chain_key=keys_dir / "chain.key" if keys_dir else None,
                     anchor_key=keys_dir / "anchor.pem" if keys_dir else None, migrate=False)


def _wipe(e: Engine) -> None:
    """Empty a marked demo database (not SQLite: there the file is deleted), in one transaction."""
    with e.begin() as conn:
        if conn.execute(select(Meta.value).where(Meta.key == MARKER)).first() is None:
            raise NotADemo("the demo marker vanished; nothing was changed")
        Base.metadata.drop_all(conn)
        conn.execute(text("DROP TABLE IF EXISTS alembic_version"))


def prepare(target: str, fresh: bool, seed: int) -> Engine:
    """The demo's database at `target`, made (or started over) by the demo; refuses anything else.

    SQLite: a file that does not exist is created; an existing file is used only
    if it carries the marker (deleted first with `fresh`). Other URLs: a database
    without any table is claimed; one carrying the marker is emptied with
    `fresh`; anything else is refused. With `fresh` off, a marked database that
    already holds a simulation is refused too (the demo would collide with itself).
    """
    try:
        url = make_url(db.resolve_url(target))
    except ArgumentError as e:
        raise UserError(f"{target!r} is neither a SQLite file nor a database URL ({e})") from None
    if "://" in target:
        target = url.render_as_string(hide_password=True)  # messages never show a password
    keys_dir = None
    if url.get_backend_name() == "sqlite" and url.database not in (None, "", ":memory:"):
        path = Path(url.database)
        keys_dir = Path(f"{path}.keys")
        if path.exists() or Path(f"{path}-wal").exists():
            if _sqlite_marker(path) is None:
                raise _refuse(target, "this file exists and is not a starfund demo database")
            if fresh:
                for suffix in ("", "-wal", "-shm", "-journal"):
                    Path(f"{path}{suffix}").unlink(missing_ok=True)
                shutil.rmtree(keys_dir, ignore_errors=True)
    try:
        e = db.make_engine(target)
        tables = inspect(e).get_table_names()
    except (NoSuchModuleError, DatabaseError) as err:
        raise UserError(f"cannot open the database {target!r}: "
                        f"{str(getattr(err, 'orig', err)).strip().splitlines()[0]}") from None
    if not tables:
        _create(e, seed, keys_dir)
        return e
    if not _has_marker(e):
        e.dispose()
        raise _refuse(target, "this database holds tables and no demo marker")
    if fresh:
        _wipe(e)
        _create(e, seed, keys_dir)
        return e
    with e.connect() as conn:
        if conn.execute(select(func.count()).select_from(Call)).scalar():
            e.dispose()
            raise NotADemo(f"{target}: this demo database already holds a simulation; run the "
                           "demo with --fresh to start it over (nothing was changed)")
    db.upgrade(e)
    return e


class Demo:
    def __init__(self, database: Engine, seed: int, outbox: str, out: Console,
                 templates: str | None = None, sender: str = DEFAULT_SENDER) -> None:
        self.db = database
        self.rng = random.Random(seed)
        self.channel = FileChannel(outbox, sender)
        self.templates = templates
        self.outbox = outbox
        self.staff = dict(STAFF)
        self.out = out
        self.work = Path(tempfile.mkdtemp(prefix="starfund-demo-"))

    # --- helpers -------------------------------------------------------------
    def at(self, when: datetime, what: str) -> None:
        clock.set_now(when)
        self.out.print(f"\n[bold]{when:%Y-%m-%d %H:%M}[/bold]  {what}")

    def advance(self, call_id: str, trigger: str, actor: Actor | str | None = None,
                only: list[str] | None = None) -> engine.Report:
        """Fire a trigger as `actor`, else as the staff member whose role the workflow names
        first for it (states/: Move.who)."""
        with self.db.begin() as conn:
            if actor is None:
                moves = for_workflow(engine.load_call(conn, call_id).workflow).moves_for(trigger)
                role = next(r for ms in moves.values() for m in ms for r in m.who if r in STAFF)
                actor = self.staff[role]
            r = engine.advance(conn, call_id, trigger, actor, only=only)
        parts = [f"{n} {s}->{d}" for (s, d), n in sorted(r.moved.items())]
        parts += [f"{n} skipped: {why}" for why, n in r.skipped.most_common()]
        self.out.print(f"  advance {trigger}: " + "; ".join(parts))
        return r

    def run_due(self) -> None:
        """Let the deadlines due now fire, exactly as `starfund scheduler run` would."""
        for f in firing.run_due(self.db, clock.now()):
            self.out.print(f"  deadline {f.kind} ({f.call_id}) {f.outcome}: {f.note}")

    def send(self) -> None:
        r = drain(self.db, self.channel, templates=self.templates)
        if r.sent or r.failed:
            self.out.print(f"  notifications delivered to {self.outbox}/: {r.sent} sent"
                           + (f", {r.failed} failed" if r.failed else ""))

    def counts(self, call_id: str) -> None:
        with self.db.connect() as conn:
            s = reports.status(conn, call_id)
        t = Table(title=f"{call_id}: applications per state", title_justify="left")
        t.add_column("state")
        t.add_column("label")
        t.add_column("count", justify="right")
        for row in s["states"]:
            t.add_row(row["state"], row["label"], str(row["count"]))
        self.out.print(t)

    def write_csv(self, name: str, rows: list[dict[str, Any]]) -> Path:
        path = self.work / name
        with path.open("w", newline="", encoding="utf-8") as f:
            w = tabular.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)
        return path

    # --- the people ----------------------------------------------------------
    def staff_accounts(self) -> None:
        """One account per staff role, added by the approver `init` made."""
        with self.db.begin() as conn:
            for role, name in STAFF.items():
                if role != APPROVER:
                    users.add(conn, STAFF[APPROVER], name, [role],
                              email=f"{name}@kexie.example.org" if role == AUDITOR else None)

    def contact_accounts(self) -> None:
        """An account for every society contact and expert: S001's and E001's made at once
        (the demo acts as them), every other one invited as `society import --accounts`
        does, its invitation held for review; one invitation released (it goes out with the
        first delivery). Then the staff and those two, as `user list` shows them."""
        from lifecycle.acts import invitations
        from notifications import delivery

        with self.db.begin() as conn:
            users.add(conn, STAFF[APPROVER], "s001-contact", [SOCIETY], society_id="S001")
            users.add(conn, STAFF[APPROVER], "e001-expert", [EXPERT], expert_id="E001")
            invited = invitations.invite_contacts(
                conn, STAFF[OFFICER], [s["id"] for s in self.societies], SOCIETY) + \
                invitations.invite_contacts(conn, STAFF[OFFICER], self.expert_ids, EXPERT)
            delivery.release(conn, STAFF[OFFICER], kind=contexts.INVITE_KIND,
                             ids=[self.first_invitation(conn)])
            rows = [r for r in accounts.listing(conn) if r["name"] in STAFF.values()
                    or r["name"] in ("s001-contact", "e001-expert")]
        t = Table(title="accounts (starfund user list)", title_justify="left")
        for c in ("account", "roles", "for"):
            t.add_column(c)
        for r in rows:
            t.add_row(r["name"], " ".join(r["roles"]), r["society"] or r["expert"] or "")
        t.add_row("scheduler", "scheduler", "(the system: fires deadlines)")
        self.out.print(t)
        self.out.print(f"  and {invited} more: every other society contact and expert, "
                       "invited (held for review: `starfund notify outbox`; one released, "
                       "delivered with the first mail)")
        self.out.print("  sign in to the portal as a society with s001-contact, as an expert "
                       "with e001-expert (`starfund serve --demo` gives each a password)")

    def first_invitation(self, conn: Any) -> int:
        from lifecycle.core.models import Notification

        return conn.execute(select(func.min(Notification.id)).where(
            Notification.kind == contexts.INVITE_KIND)).scalar_one()

    def people(self, n_societies: int = 60, n_experts: int = 40) -> None:
        rng = self.rng
        forms = [("学会", "Society"), ("研究会", "Research Association")]
        societies = []
        for i in range(n_societies):
            (d, e), (form, form_en) = DISCIPLINES[i % len(DISCIPLINES)], forms[i // len(DISCIPLINES)]
            societies.append({
                "id": f"S{i + 1:03d}", "name": f"市{d}{form}", "name_en": f"City {e} {form_en}",
                "email": f"office@s{i + 1:03d}.societies.example.org",
                "institution": rng.choice(INSTITUTIONS), "language": "en" if i % 10 == 9 else "zh",
                "annual_inspection_passed": "否" if rng.random() < 0.05 else "是",
                "penalty": "否", "class": CLASS_OF[d],
                # payee details (no random draw: the simulation's sequence stays as it was)
                "payee_name": f"市{d}{form}", "payee_bank": BANKS[i % len(BANKS)],
                "payee_account": f"6222 0210 {i + 1:04d} {(i + 1) * 7919 % 10000:04d}"})
        experts = []
        for i in range(n_experts):
            (s, se), (g, ge) = rng.choice(SURNAMES), rng.choice(GIVEN)
            member = rng.sample(societies, 2)
            experts.append({
                "id": f"E{i + 1:03d}", "name": f"{s}{g}", "name_en": f"{ge} {se}",
                "email": f"{ge.lower()}.{se.lower()}{i + 1}@experts.example.org",
                "institution": rng.choice(INSTITUTIONS), "language": "zh",
                "disciplines": ";".join(rng.sample([d for d, _ in DISCIPLINES], 2)),
                "societies": ";".join(m["id"] for m in member)})
        self.societies = societies
        self.expert_ids = [e["id"] for e in experts]
        from lifecycle.acts import registry

        with db.transaction(self.db) as s:
            a = registry.import_societies(s.connection(), self.write_csv("societies.csv", societies),
                                          self.staff[OFFICER])
            b = registry.import_experts(s.connection(), self.write_csv("experts.csv", experts),
                                        self.staff[OFFICER])
        self.out.print(f"  imported {a['created']} societies and {b['created']} experts")

    # --- one project-funding year --------------------------------------------
    def project_year(self, year: int, n_apps: int = 150) -> str:
        rng = self.rng
        config = kinds.load(EXAMPLE).model_dump(exclude_unset=True)
        shift = year - 2025
        call_id = f"{year}-project"
        config["id"], config["title"] = call_id, f"{year}年度学会重点活动项目资助"
        config["title_en"] = f"{year} key-activity project funding for societies"
        for k in ("declaration_opens", "declaration_closes", "review_due", "assessment_due"):
            v = config["calendar"][k]
            config["calendar"][k] = v.replace(year=v.year + shift)
        config["calendar"]["holidays"] = []
        for c in config["categories"]:
            c["budget"] = None  # the budget is divided by class, ranked within each class
        config["classes"], config["support"] = PROJECT_CLASSES, SUPPORT
        demo_years.with_checkpoints(config, year)
        call = kinds.parse(config, "examples/call.toml")
        cal = call.calendar

        self.at(cal.declaration_opens - timedelta(days=1), f"call {call_id} created")
        with db.transaction(self.db) as s:
            calls.create(s.connection(), call, self.staff[OFFICER], "examples/call.toml")

        self.at(cal.declaration_opens + timedelta(days=10), "societies' declarations imported")
        cats = [c for c in call.categories]
        rows, used = demo_years.continuations(self, call_id, year), set()
        used.update((r["society_id"], r["category"]) for r in rows)
        while len(rows) < n_apps:
            soc = rng.choice(self.societies)
            cat = rng.choice(cats)
            if (soc["id"], cat.id) in used:
                continue
            used.add((soc["id"], cat.id))
            d = soc["name"][1:].removesuffix("学会").removesuffix("研究会")
            e = soc["name_en"][5:].rsplit(" ", 1)[0].removesuffix(" Research")
            zt, et = TITLES[cat.id]
            over = rng.random() < 0.03
            rows.append({"society_id": soc["id"], "category": cat.id,
                         "title": zt.format(y=year, d=d), "title_en": et.format(y=year, e=e),
                         "requested_amount": cat.cap + 10000 if over else
                         rng.randrange(cat.cap // 4, cat.cap + 1, 1000),
                         "discipline": d,
                         "summary": "" if rng.random() < 0.03 else f"{d}相关活动，面向本市科技工作者。"})
        from lifecycle.acts import declarations

        with db.transaction(self.db) as s:
            declarations.import_applications(s.connection(), call_id,
                                             self.write_csv(f"{call_id}.csv", rows), self.staff[OFFICER])
        with self.db.connect() as conn:
            ids = list(conn.execute(select(Application.id).where(Application.call_id == call_id)
                                    .order_by(Application.id)).scalars())
        self.out.print(f"  {len(ids)} drafts")
        late = set(rng.sample(ids, 4))
        self.at(cal.declaration_closes - timedelta(days=3), "societies submit their declarations")
        self.advance(call_id, "submit", only=[i for i in ids if i not in late])
        self.advance(call_id, "withdraw", only=[rng.choice(sorted(late))])
        self.run_due()  # the 3-day reminder goes to the societies with drafts left
        self.send()
        demo_years.carried_over(self, call_id)

        self.at(cal.declaration_closes + timedelta(minutes=1), "declaration closes: formal check")
        self.run_due()  # the declaration_closes deadline fires close_declaration
        self.send()
        self.counts(call_id)

        demo_years.fund_continuations(self, call_id, cal.declaration_closes + timedelta(days=1))
        self.at(cal.declaration_closes + timedelta(days=2), "experts assigned, review starts")
        with db.transaction(self.db) as s:
            r = reviewing.assign(s.connection(), call_id, self.staff[COORDINATOR], seed=year)
        self.out.print(f"  {r['assigned']} assignments (conflicts avoided; load "
                       f"{r['load_min']}..{r['load_max']}; discipline matched "
                       f"{r['discipline_matched']})")
        self.advance(call_id, "start_review")
        self.send()

        self.at(cal.review_due - timedelta(days=2), "experts return score sheets")
        self.simulate_scores(call_id, call)
        self.run_due()  # the 3-day reminder goes to experts with sheets still missing
        self.send()
        self.at(cal.review_due, "reviews due")
        self.run_due()  # the reviews_due deadline fires close_review
        self.at(cal.review_due + timedelta(days=1), "late score sheets arrive; review closes")
        self.simulate_scores(call_id, call, late=True)
        self.advance(call_id, "close_review")
        self.at(cal.review_due + timedelta(days=3), "fair competition: rank and cut by budget")
        self.panel_decisions(call_id)
        self.advance(call_id, "rank")
        demo_years.bonuses(self, call_id)
        self.at(cal.review_due + timedelta(days=7), "leadership decision, public notice (公示)")
        self.advance(call_id, "propose")
        self.objections(call_id)
        self.send()
        with self.db.connect() as conn:
            notice_end = conn.execute(select(__import__("lifecycle.core.models", fromlist=["Deadline"])
                                             .Deadline.due_at)
                                      .where(__import__("lifecycle.core.models", fromlist=["Deadline"])
                                             .Deadline.key == f"{call_id}:notice_ends")).scalar()
        self.at(notice_end, "notice ends: award")
        self.run_due()  # the notice_ends deadline fires close_notice
        self.advance(call_id, "fund")
        self.send()
        self.counts(call_id)
        # then lifecycle.demo.years: the star call, the assessment, the outcomes
        return call_id

    def panel_decisions(self, call_id: str) -> None:
        """Flagged applications (reviewers disagree) get a panel score so ranking can go on."""
        with self.db.connect() as conn:
            call = engine.load_call(conn, call_id)
            flagged = sorted(a for a, g in ranking.call_aggregates(conn, call).items()
                             if g.blocked)
        with db.transaction(self.db) as s:
            for a in flagged:
                reviewing.panel_decision(s.connection(), a, 82.0, "panel discussion",
                                         self.staff[COORDINATOR])
        if flagged:
            self.out.print(f"  panel decisions for {len(flagged)} flagged application(s): "
                           + ", ".join(flagged))

    def objections(self, call_id: str) -> None:
        """Publish the notice, then two named objections: one dismissed, one upheld."""
        from lifecycle.acts import notice, objections

        with self.db.begin() as conn:
            r = notice.publish(conn, call_id, self.work / f"{call_id}-notice.html",
                                   self.staff[APPROVER])
        self.out.print(f"  notice published: {r['listed']} projects, {r['total']:,} yuan, "
                       f"until {r['last_day']} -> {self.work / (call_id + '-notice.html')}")
        with self.db.connect() as conn:
            listed = list(conn.execute(select(Application.id).where(
                Application.call_id == call_id, Application.state == IN_NOTICE)
                .order_by(Application.id)).scalars())
        if len(listed) < 2:
            return
        first, second = self.rng.sample(listed, 2)
        clock.advance(timedelta(days=2))
        self.out.print(f"\n[bold]{clock.now():%Y-%m-%d %H:%M}[/bold]  objections (异议) filed")
        evidence = self.write_csv("evidence.csv", [{"item": "budget line 3", "note": "duplicated"}])
        with self.db.begin() as conn:
            a = objections.file(conn, first, "李华", "lihua@example.org",
                                "the same activity was funded last year", self.staff[OFFICER])
        with self.db.begin() as conn:
            b = objections.file(conn, second, "张伟", "13800000000",
                                "budget duplicates another grant", self.staff[OFFICER], evidence)
        self.out.print(f"  objection {a['objection']} against {first}, objection "
                       f"{b['objection']} against {second} (with evidence)")
        clock.advance(timedelta(days=1))
        with self.db.begin() as conn:
            d = objections.resolve(conn, a["objection"], False, "the activity is a new edition",
                                   self.staff[APPROVER])
        with self.db.begin() as conn:
            u = objections.resolve(conn, b["objection"], True, "duplicate funding confirmed",
                                   self.staff[APPROVER])
        self.out.print(f"  objection {a['objection']} dismissed ({first} {d['moved']}); "
                       f"objection {b['objection']} upheld ({second} {u['moved']})")

    def simulate_scores(self, call_id: str, call, late: bool = False) -> None:
        from lifecycle.core.models import Assignment

        rng = self.rng
        with self.db.connect() as conn:
            pending = conn.execute(select(Assignment.expert_id, Assignment.application_id)
                                   .where(Assignment.call_id == call_id,
                                          Assignment.status == "assigned")
                                   .order_by(Assignment.id)).all()
        quality: dict[str, float] = {}
        sheets = []
        for expert_id, app_id in pending:
            if not late and rng.random() < 0.2:
                continue  # this expert is late
            q = quality.setdefault(app_id, rng.uniform(0.6, 0.98))
            sheets.append((expert_id, app_id, {
                c.id: round(min(c.max, max(0, rng.gauss(q, 0.06) * c.max)), 1)
                for c in call.criteria}))
        with db.transaction(self.db) as s:
            n = reviewing.record_scores(s.connection(), call_id, sheets, self.staff[COORDINATOR])
        self.out.print(f"  {n} score sheets recorded")


def run(url: str, years: int, seed: int, outbox: str, fresh: bool,
        out: Console, societies: int = 60, templates: str | None = None,
        sender: str = DEFAULT_SENDER, kind: str = "programme",
        progress: Progress = SILENT, history: str | None = None) -> None:
    """Run the demo: a database it makes (see `prepare`), people, and `years` programme years."""
    started = walltime.perf_counter()
    clock.set_now(datetime(2025, 2, 20, 9, 0))
    d = Demo(prepare(url, fresh, seed), seed, outbox, out, templates, sender)
    out.print(f"[bold]starfund demo[/bold]: {years} programme year(s) on {url}")
    d.staff_accounts()
    d.people(societies, max(16, societies * 2 // 3))
    if history:  # earlier years' results, as an office starting with starfund brings them in
        from lifecycle.acts.history import import_history

        with db.transaction(d.db) as s:
            r = import_history(s.connection(), history, d.staff[OFFICER])
        out.print(f"  history: {r['rows']} earlier result(s) of "
                  f"{', '.join(map(str, r['years']))} imported from {history}")
    d.contact_accounts()
    last = star = None
    progress.step("simulating", total=years)
    for i in range(years):
        if i:
            progress.advance()
        year = 2025 + i
        out.print(f"\n[bold reverse] programme year {year} [/bold reverse]")
        if kind == "grant":
            last = grant_year(d, year, n_apps=societies // 2)
            continue
        last = d.project_year(year, n_apps=societies * 5 // 2)
        star = demo_years.star_year(d, year, n=min(24, societies * 2 // 5))
        demo_years.assessment(d, last, year, between=lambda star=star, year=year: demo_years.dynamic_management(
            d, star, year))
    progress.advance()
    if kind != "grant":
        demo_years.summary(d, [2025 + i for i in range(years)])
    demo_years.who_did_what(d)
    with d.db.connect() as conn:
        v = audit.check(conn, audit.chain_key(conn))
    out.print(f"\naudit chain: {v.checked} events, keyed, " + (
        "intact" if v.ok else f"BROKEN: {'; '.join(p.message for p in v.problems)}"))
    out.print(f"done in {walltime.perf_counter() - started:.1f} s. The year as a report with "
              f"charts (one HTML file, opens offline):\n"
              f"  starfund --db {url} --as {STAFF[OFFICER]} report --year {2024 + years} "
              f"--html report.html\n"
              f"  starfund --db {url} --as {STAFF[OFFICER]} notice export {last} --pdf notice.pdf"
              f"   (the 公示; awards export: the 立项名单)\n"
              f"Look next (a simulation: --as picks the account):\n"
              f"  starfund --db {url} --as {STAFF[OFFICER]} status {last}\n"
              f"  starfund --db {url} --as {STAFF[OFFICER]} show {last}-00001\n"
              f"  starfund --db {url} --as {STAFF[AUDITOR]} audit query --call {last} "
              f"--trigger close_notice\n"
              f"  starfund --db {url} --as {STAFF[AUDITOR]} audit anchor --dir anchors\n"
              f"  starfund --db {url} --as {STAFF[AUDITOR]} audit verify --anchors anchors\n"
              + (f"  starfund --db {url} --as {STAFF[OFFICER]} stars {star}        (the star table)\n"
                 if star else "")
              + f"  starfund --db {url} --as {STAFF[OFFICER]} user roles   (who may do what)\n"
              f"  starfund --db {url} --as {STAFF[OFFICER]} society show S001   (stars and projects of one society)\n"
              + (f"  starfund --db {url} --as {STAFF[OFFICER]} rank {last}   (ranking per class, bonuses in the reasons)\n"
                 f"  starfund --db {url} --as {STAFF[OFFICER]} model list       (model societies, 示范学会)\n"
                 if star else "")
              + f"  ls {outbox}/ | head   (the notifications, as .eml files)\n"
              f"  starfund --db {url} serve --demo   (the portal: a fresh demo, a call open "
              f"for declarations, a login for every role)")


# --- the portal's demo: starfund serve --demo ---------------------------------------------------

DEMO_PASSWORD = "starfund-demo"
"""The password `serve --demo` gives every demo account (a simulation; never on a live database)."""


def seed_portal(env: Env) -> tuple[str, list[tuple[str, str, str]]]:
    """The demo's year on its own database, then a next call whose declaration window is open
    at the demo's last moment, and a password for each account: what `serve --demo` serves.
    Returns the database and (account, roles, password) for the logins it prints."""
    url = env.db_arg or DEFAULT_DB
    run(url, years=1, seed=2025, outbox="outbox", fresh=True, out=rich_console())
    e = db.make_engine(url)
    try:
        now = clock.now()
        config = kinds.load(EXAMPLE).model_dump(exclude_unset=True)
        config["id"], config["title"] = "2026-project", "2026年度学会重点活动项目资助"
        config["title_en"] = "2026 key-activity project funding for societies"
        closes = now + timedelta(days=30)
        config["calendar"].update(declaration_opens=now - timedelta(days=1),
                                  declaration_closes=closes, review_due=closes + timedelta(days=30),
                                  assessment_due=closes + timedelta(days=250), holidays=[])
        call = kinds.parse(config, "examples/call.toml")
        with e.begin() as conn:
            calls.create(conn, call, STAFF[OFFICER], "examples/call.toml")
            rows = [r for r in accounts.listing(conn) if r["name"] in STAFF.values()
                    or r["name"] in ("s001-contact", "e001-expert")]  # the others: invited
            for r in rows:
                users.set_password(conn, STAFF[APPROVER], r["name"], DEMO_PASSWORD)
    finally:
        e.dispose()
    return url, [(r["name"], "/".join(r["roles"]), DEMO_PASSWORD) for r in rows]


# --- the command: starfund demo ------------------------------------------------------------------

@click.command()
@click.option("--years", default=1, show_default=True, type=click.IntRange(1, 10),
              help="Programme years to run in a row.")
@click.option("--seed", default=2025, show_default=True, help="Random seed of the simulation.")
@click.option("--outbox", default="outbox", show_default=True, type=OutputPath(folder=True),
              help="Folder the notifications are delivered to.")
@click.option("--fresh/--keep", default=True, show_default=True,
              help="Start the demo's own database over (--keep: use it only if it holds no "
                   "simulation yet).")
@click.option("--societies", default=60, show_default=True, type=click.IntRange(20, 80),
              help="Societies in the simulation (each year ~2.5 declarations per society).")
@click.option("--kind", "kind", type=click.Choice(["programme", "grant"]), default="programme",
              show_default=True,
              help="programme: the 星级学会 year (project and star calls); grant: a one-off "
                   "grant call (examples/grant-call.toml) run whole.")
@click.option("--history", type=SafePath(dir_okay=False, exists=True), metavar="FILE",
              help="Start from earlier years' results (`history import`; e.g. "
                   "examples/history.csv): the bar, support and model rules count them.")
@common
def demo(env: Env, years: int, seed: int, outbox: str, fresh: bool, societies: int,
         kind: str, history: str | None) -> None:
    """Simulate a whole programme year (or several) on a new database, printing each step.

    The demo writes only to a database it made: a new SQLite file (default
    starfund-demo.db), an empty database, or one an earlier demo made and
    marked. Pointed at any other database it refuses and changes nothing.

    \b
    Example:  starfund demo
              starfund demo --years 3 --db demo.db
              starfund demo --kind grant --db grant-demo.db
    """
    with shown(env, "starfund demo", interrupted="the demo's database is left as it "
                                                 "was at the last act; run it again") as progress:
        run(env.db_arg or DEFAULT_DB, years=years, seed=seed, outbox=outbox, fresh=fresh,
            out=rich_console(), societies=societies,
            templates=env.settings.get("templates"), sender=env.settings.get("mail_from"),
            kind=kind, progress=progress, history=history)
