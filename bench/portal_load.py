"""The portal under load (issue 12): experts scoring in the last hour before the deadline,
societies browsing, on a real `starfund serve` (uvicorn) over loopback.

For each backend (SQLite in WAL mode, PostgreSQL) it seeds one database through the engine
(two calls: `load`, under review with its deadline an hour away, and `shown`, on its public
notice; 50 societies, 200 experts, every assignment, an account with a password for each
society and expert), then for each number of workers it runs on a fresh copy of it:

1. `starfund serve --workers N` as a child process, the time frozen by STARFUND_NOW at an
   hour before `load`'s review_due; the script waits until it answers;
2. the load, from one asyncio process with one httpx client (own cookies) per person:
   every expert logs in through the login form (its CSRF token read from the page), opens
   its assignments, then for each one opens the score form and submits every criterion
   (the form's CSRF token read from the page); every society logs in and browses its home
   page, its applications and the 公示 of `shown` until the experts are done. Each person
   starts at a random moment in the ramp-up and waits a random think time between clicks;
3. the server is stopped, and the database checked: every score the portal accepted is an
   assignment `submitted` and exactly one `score` audit event, and the audit chain verifies.

It prints one table row per run: requests, throughput, p50/p95/p99 latency (client side,
every request), the slowest kind of request, errors (anything but the expected status), and
the score counts.

    .venv/bin/python bench/portal_load.py                        # both backends, 1 and 2 workers
    .venv/bin/python bench/portal_load.py --backend sqlite --workers 1
    .venv/bin/python bench/portal_load.py --think 0              # flat out: the ceiling
    .venv/bin/python bench/portal_load.py --experts 5 --societies 2   # a quick check

Passwords: every account gets the same Argon2 hash of the one password, made once with
argon2-cffi's default parameters, so seeding hashes once while every login still verifies
a full-cost hash.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import signal
import socket
import subprocess
import sys
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import _seed  # noqa: E402
from sqlalchemy import func, insert, select, update  # noqa: E402

from lifecycle import kinds
from lifecycle.acts import assignment, calls, consents, scoresheets  # noqa: E402
from lifecycle.core import accounts, audit, clock, db  # noqa: E402
from lifecycle.core.models import (  # noqa: E402
    Account,
    Application,
    Assignment,
    AuditEvent,
    Expert,
    Society,
)
from lifecycle.engine import engine
from web import processing_rules  # noqa: E402

ROOT = _seed.ROOT
STARFUND = Path(sys.executable).parent / "starfund"
LOAD, SHOWN = "load", "shown"
PASSWORD = "bench portal password"
CATEGORIES = _seed.CATEGORIES
HTTP_OK = {"GET": 200, "POST": 303}
KEEPALIVE_S = 4.0
"""Below uvicorn's default timeout_keep_alive (5 s), which `starfund serve` keeps."""
CSRF = re.compile(r'name="csrf" value="([0-9a-f]+)"')


# --- seeding ----------------------------------------------------------------------------

@dataclass
class World:
    url: str
    now: datetime
    experts: dict[str, list[tuple[int, str]]]  # account -> [(assignment id, category)]
    societies: dict[str, list[str]]  # account -> its application ids in `load`
    criteria: dict[str, list[tuple[str, float]]]  # category -> [(criterion id, max)]


def _at(text: str) -> None:
    clock.set_now(text)


def seed(url: str, n_experts: int, n_societies: int, apps_per_society: int, per: int,
         out=print) -> World:
    t0 = time.perf_counter()
    e = db.make_engine(url)
    _at("2025-02-01 09:00")
    _seed.found(e)
    base = kinds.load(ROOT / "examples" / "call.toml")
    load_call = base.model_copy(update={
        "id": LOAD, "review": base.review.model_copy(update={"per_application": per,
                                                               "min_reviews": min(3, per)})})
    cal = base.calendar.model_copy(update={
        "declaration_opens": datetime(2025, 2, 3, 9), "declaration_closes":
        datetime(2025, 3, 10, 17), "review_due": datetime(2025, 4, 30, 17)})
    shown_call = base.model_copy(update={
        "id": SHOWN, "title": "2025年度公示中的批次", "title_en": "A call on its notice",
        "calendar": cal, "review": base.review.model_copy(update={"per_application": 3,
                                                                   "min_reviews": 3})})
    with db.transaction(e) as s:
        conn = s.connection()
        calls.create(conn, load_call, "bench-admin")
        calls.create(conn, shown_call, "bench-admin")
        conn.execute(insert(Society), [
            {"id": f"S{i:04d}", "name": f"负载测试{i}学会", "name_en": f"Load Society {i}",
             "email": f"s{i}@example.org", "institution": f"Inst{i}", "language": "zh",
             "annual_inspection_passed": True, "penalty": False} for i in range(n_societies)])
        conn.execute(insert(Expert), [
            {"id": f"E{i:04d}", "name": f"专家{i}", "name_en": f"Expert {i}",
             "email": f"e{i}@example.org", "institution": f"Univ{i}", "language": "zh",
             "disciplines": [], "societies": [], "conflict_societies": [],
             "conflict_institutions": []} for i in range(n_experts)])
        for i in range(n_societies):
            accounts.add(conn, f"s{i:04d}", ["society"], society_id=f"S{i:04d}")
        for i in range(n_experts):
            accounts.add(conn, f"e{i:04d}", ["expert"], expert_id=f"E{i:04d}")
        conn.execute(update(Account).where(Account.roles.in_(("society", "expert")))
                     .values(password_hash=accounts.hash_password(PASSWORD)))
        for name in [f"s{i:04d}" for i in range(n_societies)] + \
                [f"e{i:04d}" for i in range(n_experts)]:  # the rules agreed, as on first use
            consents.agree(conn, name, processing_rules.VERSION)

    def apps(call, per_society: int, at: str) -> None:
        _at(at)
        rows = [{"id": f"{call.id}-{s:04d}-{k}", "society_id": f"S{s:04d}",
                 "category": CATEGORIES[(s + k) % len(CATEGORIES)],
                 "title": f"项目 {s}-{k}", "title_en": f"Project {s}-{k}", "discipline": "",
                 "requested_amount": 20000, "excluded_experts": [],
                 "fields": {"summary": "摘要"}}
                for s in range(n_societies) for k in range(per_society)]
        with db.transaction(e) as s:
            engine.create_applications(s.connection(), call, rows, "bench-admin")
        engine.advance_in_tx(e, call.id, "submit", "bench-admin")

    def review(call_id: str, per_app: int, at: str) -> None:
        _at(at)
        engine.advance_in_tx(e, call_id, "close_declaration", "bench-admin")
        with e.begin() as conn:
            assignment.assign(conn, call_id, "bench-admin", per_application=per_app, seed=1)
        engine.advance_in_tx(e, call_id, "start_review", "bench-admin")

    # in the order of the programme's time: `shown` runs a month ahead of `load`
    apps(shown_call, 1, "2025-02-10 10:00")
    review(SHOWN, 3, "2025-03-11 09:00")
    apps(load_call, apps_per_society, "2025-03-20 10:00")
    _at("2025-04-01 10:00")
    with e.begin() as conn:
        pairs = conn.execute(select(Assignment.expert_id, Assignment.application_id,
                                    Application.category)
                             .join(Application, Application.id == Assignment.application_id)
                             .where(Assignment.call_id == SHOWN)).all()
        scoresheets.record(conn, SHOWN, [
            (x, a, {c.id: c.max * 0.9 for c in shown_call.criteria_for(cat)})
            for x, a, cat in pairs], "bench-admin")
    review(LOAD, per, "2025-04-08 09:00")
    for trigger, at in (("close_review", "2025-04-30 17:01"), ("rank", "2025-05-01 10:00"),
                        ("propose", "2025-05-03 10:00"), ("open_notice", "2025-05-03 10:00")):
        _at(at)
        report = engine.advance_in_tx(e, SHOWN, trigger, "bench-admin")
        assert report.moved_total, (trigger, report.skipped_ids)

    with e.connect() as conn:
        experts: dict[str, list[tuple[int, str]]] = defaultdict(list)
        for r in conn.execute(select(Assignment.id, Assignment.expert_id, Application.category)
                              .join(Application, Application.id == Assignment.application_id)
                              .where(Assignment.call_id == LOAD).order_by(Assignment.id)):
            experts["e" + r.expert_id[1:]].append((r.id, r.category))
        societies: dict[str, list[str]] = defaultdict(list)
        for r in conn.execute(select(Application.id, Application.society_id)
                              .where(Application.call_id == LOAD)):
            societies["s" + r.society_id[1:]].append(r.id)
    e.dispose()
    now = load_call.calendar.review_due - timedelta(hours=1)
    clock.set_now(None)
    out(f"  seeded {url.rsplit('/', 1)[-1]}: {n_societies} societies, {n_experts} experts, "
        f"{sum(map(len, experts.values()))} assignments to score, in "
        f"{time.perf_counter() - t0:.1f} s")
    return World(url, now, dict(experts), dict(societies),
                 {c: [(x.id, x.max) for x in load_call.criteria_for(c)] for c in CATEGORIES})


# --- the server -------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(url: str, now: datetime, workers: int) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "STARFUND_ACTOR": "bench-admin", "STARFUND_NOW": now.isoformat()}
    proc = subprocess.Popen([str(STARFUND), "--db", url, "serve", "--port", str(port),
                             "--workers", str(workers)], env=env, start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    import httpx2

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"starfund serve exited {proc.returncode}:\n{proc.stdout.read()}")
        try:
            if httpx2.get(base + "/", timeout=2).status_code == 200:
                return proc, base
        except httpx2.TransportError:
            pass
        time.sleep(0.1)
    stop_server(proc)
    raise SystemExit("starfund serve did not answer within 60 s")


def stop_server(proc: subprocess.Popen) -> str:
    """SIGINT to the server's own process group (the one this script started), then its log."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc.stdout.read() if proc.stdout else ""


# --- the load ---------------------------------------------------------------------------

@dataclass
class Stats:
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: Counter = field(default_factory=Counter)
    accepted: list[int] = field(default_factory=list)
    samples: list[str] = field(default_factory=list)

    def error(self, kind: str, what: str) -> None:
        self.errors[kind] += 1
        if len(self.samples) < 5:
            self.samples.append(f"{kind}: {what}")


class Person:
    def __init__(self, base: str, name: str, stats: Stats, think: float, rng: random.Random):
        import httpx2

        # idle connections are dropped before uvicorn's 5 s keep-alive timeout closes them:
        # reusing one the server is closing fails the request (a browser would retry it)
        self.client = httpx2.AsyncClient(
            base_url=base, follow_redirects=False, timeout=120,
            limits=httpx2.Limits(keepalive_expiry=KEEPALIVE_S))
        self.name, self.stats, self.think, self.rng = name, stats, think, rng

    async def pause(self) -> None:
        if self.think:
            await asyncio.sleep(self.rng.uniform(0.5, 1.5) * self.think)

    async def hit(self, kind: str, method: str, path: str, data: dict | None = None):
        t = time.perf_counter()
        try:
            r = await self.client.request(method, path, data=data)
        except Exception as e:  # noqa: BLE001 - every failure counts as an error
            self.stats.error(kind, f"{method} {path}: {type(e).__name__} {e}")
            return None
        self.stats.latencies[kind].append(time.perf_counter() - t)
        if r.status_code != HTTP_OK[method]:
            self.stats.error(kind, f"{method} {path}: {r.status_code} {r.text[:300]!r}")
            return None
        return r

    async def login(self) -> bool:
        page = await self.hit("login form", "GET", "/login")
        if page is None:
            return False
        await self.pause()
        r = await self.hit("login", "POST", "/login", {
            "name": self.name, "password": PASSWORD, "csrf": CSRF.search(page.text).group(1)})
        return r is not None

    async def close(self) -> None:
        await self.client.aclose()


async def expert(p: Person, work: list[tuple[int, str]], world: World) -> None:
    home = await p.hit("expert home", "GET", "/expert")
    if home is None:
        return
    missing = [a for a, _ in work if f"/review/{a}" not in home.text]
    if missing:
        p.stats.error("expert home", f"{p.name}: assignments {missing} not listed")
    for number, category in work:
        await p.pause()
        form = await p.hit("score form", "GET", f"/review/{number}")
        if form is None:
            continue
        await p.pause()
        data = {"csrf": CSRF.search(form.text).group(1), "action": "submit",
                **{f"score_{c}": f"{round(p.rng.uniform(0.5, 1.0) * mx, 1):g}"
                   for c, mx in world.criteria[category]}}
        r = await p.hit("score submit", "POST", f"/review/{number}", data)
        if r is None:
            continue
        if r.headers.get("location") != "/expert" or \
                r.cookies.get("starfund_flash", "").startswith("%21"):
            p.stats.error("score submit", f"{p.name} {number}: refused, "
                          f"{r.headers.get('location')} {r.cookies.get('starfund_flash')}")
            continue
        p.stats.accepted.append(number)
        await p.hit("expert home", "GET", "/expert")


async def society(p: Person, apps: list[str], done: asyncio.Event) -> None:
    while not done.is_set():
        await p.hit("society home", "GET", "/society")
        await p.pause()
        await p.hit("application", "GET", f"/app/{p.rng.choice(apps)}")
        await p.pause()
        await p.hit("notice", "GET", f"/notice/{SHOWN}")
        await p.pause()


async def run_load(base: str, world: World, think: float, ramp: float, seed: int
                   ) -> tuple[Stats, float, Stats, float]:
    """Everyone logs in (the login phase, within `ramp`), then the last hour: experts
    score, societies browse. The figures of each phase, and its seconds."""
    logins, stats = Stats(), Stats()
    rng = random.Random(seed)
    done = asyncio.Event()

    async def later(start: float, coro):
        await asyncio.sleep(start)
        return await coro

    experts = [Person(base, name, logins, think, random.Random(rng.random()))
               for name in world.experts]
    societies = [Person(base, name, logins, think, random.Random(rng.random()))
                 for name in world.societies]
    people = experts + societies
    t = time.perf_counter()
    ok = await asyncio.gather(*(later(rng.uniform(0, ramp), p.login()) for p in people))
    login_seconds = time.perf_counter() - t
    experts = [p for p, good in zip(people, ok, strict=True) if good and p in experts]
    societies = [p for p, good in zip(people, ok, strict=True) if good and p in societies]
    for p in people:
        p.stats = stats
    t = time.perf_counter()
    browsing = [asyncio.create_task(later(rng.uniform(0, think),
                                          society(p, world.societies[p.name], done)))
                for p in societies]
    await asyncio.gather(*(later(rng.uniform(0, think), expert(p, world.experts[p.name], world))
                           for p in experts))
    done.set()
    await asyncio.gather(*browsing)
    seconds = time.perf_counter() - t
    await asyncio.gather(*(p.close() for p in people))
    return stats, seconds, logins, login_seconds


# --- the check --------------------------------------------------------------------------

def check_database(url: str, accepted: list[int]) -> dict[str, object]:
    e = db.make_engine(url)
    with e.connect() as conn:
        submitted = set(conn.execute(select(Assignment.id).where(
            Assignment.call_id == LOAD, Assignment.status == "submitted")).scalars())
        events = conn.execute(select(AuditEvent.application_id, AuditEvent.payload).where(
            AuditEvent.call_id == LOAD, AuditEvent.action == "score")).all()
        pair = {r.id: (r.application_id, r.expert_id) for r in conn.execute(
            select(Assignment.id, Assignment.application_id, Assignment.expert_id)
            .where(Assignment.call_id == LOAD))}
        corrections = conn.execute(select(func.count()).where(
            AuditEvent.call_id == LOAD, AuditEvent.action == "score_correct")).scalar_one()
        verified = audit.check(conn, audit.chain_key(conn))
    e.dispose()
    import json

    per_pair = Counter((a, json.loads(p)["expert"]) for a, p in events)
    wanted = Counter(pair[n] for n in accepted)
    exact = (set(accepted) == submitted and len(accepted) == len(set(accepted))
             and per_pair == wanted and not corrections)
    return {"accepted": len(accepted), "submitted": len(submitted), "events": len(events),
            "exactly_once": exact, "chain": not verified.problems,
            "problems": [p.message for p in verified.problems][:3]}


# --- the report -------------------------------------------------------------------------

def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    s = sorted(values)
    return s[min(len(s) - 1, max(0, round(q / 100 * len(s) + 0.5) - 1))] * 1000


def row(backend: str, workers: int, stats: Stats, seconds: float, logins: Stats,
        login_seconds: float, checked: dict) -> dict:
    every = [x for v in stats.latencies.values() for x in v]
    p95 = {k: pct(v, 95) for k, v in stats.latencies.items()}
    posts = logins.latencies["login"]
    return {"backend": backend, "workers": workers, "requests": len(every),
            "seconds": seconds, "rps": len(every) / seconds if seconds else 0.0,
            "p50": pct(every, 50), "p95": pct(every, 95), "p99": pct(every, 99),
            "score_p95": p95.get("score submit", float("nan")),
            "logins_per_s": len(posts) / login_seconds if login_seconds else 0.0,
            "login_p50": pct(posts, 50), "login_p95": pct(posts, 95),
            "errors": sum(stats.errors.values()) + sum(logins.errors.values()), **checked}


COLUMNS = [("backend", "backend", "{}"), ("workers", "workers", "{}"),
           ("logins/s", "logins_per_s", "{:.1f}"), ("login p50 ms", "login_p50", "{:.0f}"),
           ("login p95 ms", "login_p95", "{:.0f}"),
           ("requests", "requests", "{}"), ("req/s", "rps", "{:.0f}"),
           ("p50 ms", "p50", "{:.0f}"), ("p95 ms", "p95", "{:.0f}"), ("p99 ms", "p99", "{:.0f}"),
           ("score POST p95 ms", "score_p95", "{:.0f}"),
           ("errors", "errors", "{}"), ("scores accepted", "accepted", "{}"),
           ("submitted in db", "submitted", "{}"), ("score events", "events", "{}"),
           ("exactly once", "exactly_once", "{}"), ("chain ok", "chain", "{}")]


def table(rows: list[dict]) -> str:
    head = "| " + " | ".join(c for c, _, _ in COLUMNS) + " |"
    lines = [head, "|" + "---|" * len(COLUMNS)]
    for r in rows:
        lines.append("| " + " | ".join(f.format(r[k]) for _, k, f in COLUMNS) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> list[dict]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--backend", choices=["sqlite", "postgres", "both"], default="both")
    ap.add_argument("--workers", default="1,2", help="comma-separated (default 1,2)")
    ap.add_argument("--experts", type=int, default=200)
    ap.add_argument("--societies", type=int, default=50)
    ap.add_argument("--apps-per-society", type=int, default=4)
    ap.add_argument("--per-application", type=int, default=5)
    ap.add_argument("--think", type=float, default=2.0,
                    help="mean seconds a person waits between clicks (0: flat out)")
    ap.add_argument("--ramp", type=float, default=60.0,
                    help="people log in at random moments within this many seconds")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    backends = ["sqlite", "postgres"] if args.backend == "both" else [args.backend]
    workers = [int(w) for w in args.workers.split(",")]
    print(f"bench/portal_load.py: {args.experts} experts scoring, {args.societies} societies "
          f"browsing, think {args.think:g} s, ramp {args.ramp:g} s; {os.cpu_count()} CPUs")
    rows = []
    for backend in backends:
        if backend == "postgres" and (why := _seed.pg_available()):
            print(f"  postgres skipped: {why}")
            continue
        url, drop = _seed.new_database(backend)
        try:
            world = seed(url, args.experts, args.societies, args.apps_per_society,
                         args.per_application)
            for n in workers:
                copy, drop_copy = _seed.clone_database(url)
                try:
                    proc, base = start_server(copy, world.now, n)
                    try:
                        stats, seconds, logins, login_seconds = asyncio.run(run_load(
                            base, world, args.think, args.ramp, args.seed))
                    finally:
                        log = stop_server(proc)
                    checked = check_database(copy, stats.accepted)
                    rows.append(row(backend, n, stats, seconds, logins, login_seconds, checked))
                    r = rows[-1]
                    print(f"  {backend} x{n}: logins in {login_seconds:.1f} s; then "
                          f"{r['requests']} requests in {seconds:.1f} s, p95 {r['p95']:.0f} ms, "
                          f"errors {r['errors']}, exactly once {r['exactly_once']}, "
                          f"chain {r['chain']}")
                    for kind, v in sorted({**logins.latencies, **stats.latencies}.items()):
                        print(f"      {kind:<14} n={len(v):<5} p50 {pct(v, 50):6.0f} "
                              f"p95 {pct(v, 95):6.0f} p99 {pct(v, 99):6.0f} ms")
                    if stats.errors or logins.errors:
                        print(f"      errors by kind: {dict(logins.errors + stats.errors)}")
                    for s in logins.samples + stats.samples:
                        print(f"      error {s}")
                    if checked["problems"]:
                        print(f"      audit: {checked['problems']}")
                    if log.strip():
                        print("      server log: " + log.strip()[-1500:].replace(
                            "\n", "\n      "))
                finally:
                    drop_copy()
        finally:
            drop()
    print()
    print(table(rows))
    return rows


if __name__ == "__main__":
    main()
