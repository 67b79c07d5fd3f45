"""Who reviews what (专家分配), with conflict-of-interest avoidance (回避): the pure plan.

The rule, in order of strength:
1. never a conflicted expert: not of the applicant society (member or leader),
   not of the society's institution, not one who declared a conflict with the
   society or the institution, not one the applicant asked to exclude, and
   never again an expert who recused itself or was taken off the application;
2. never more than the load limit (`--max-load`, else the call's `max_load`,
   else the smallest limit that lets every application get its experts);
3. every application gets its count of experts, or nothing is assigned and the
   short applications are named with the reason;
4. disciplines are matched where possible, then the least loaded expert wins;
   ties are broken by a shuffle seeded with `--seed`, so a seed gives one result.

`plan` is the algorithm, on plain records (no database): greedy (most
constrained application first), then augmenting paths (a max-flow step) for any
application the greedy left short, so it refuses only when no assignment exists
under the limit. Loading the pool and writing the plan is `lifecycle.acts.assignment`.
"""
from __future__ import annotations

import heapq
import math
import random
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Reviewer:
    """An expert as the plan sees it: institution, disciplines, societies and declared conflicts."""

    id: str
    institution: str = ""
    disciplines: frozenset[str] = frozenset()
    societies: frozenset[str] = frozenset()
    conflict_societies: frozenset[str] = frozenset()
    conflict_institutions: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Applicant:
    """An application as the plan sees it: who applies, its discipline and its experts so far."""

    id: str
    society_id: str
    institution: str = ""
    discipline: str = ""
    excluded: frozenset[str] = frozenset()
    have: frozenset[str] = frozenset()
    """Experts already (live) assigned: they count toward the need."""
    barred: frozenset[str] = frozenset()
    """Experts who recused themselves from it or were taken off it."""


def conflict_of(ex: Reviewer, app: Applicant) -> str | None:
    """Why `ex` may not review `app` (回避), or None."""
    if app.society_id in ex.societies:
        return "member of the applicant society"
    if app.society_id in ex.conflict_societies:
        return "declared a conflict with the applicant society"
    if ex.institution and ex.institution == app.institution:
        return "of the applicant's institution"
    if app.institution and app.institution in ex.conflict_institutions:
        return "declared a conflict with the applicant's institution"
    if ex.id in app.excluded:
        return "excluded by the applicant"
    if ex.id in app.barred:
        return "recused or taken off this application"
    return None


@dataclass
class Plan:
    """The outcome of `plan`: the new pairs and the loads, or why some applications are short."""

    pairs: list[tuple[str, str, bool]] = field(default_factory=list)
    """(application, expert, discipline matched) for each new assignment."""
    max_load: int = 0
    short: dict[str, str] = field(default_factory=dict)
    """Application -> why it cannot get its experts (then `pairs` is empty)."""
    loads: dict[str, int] = field(default_factory=dict)


def _norm(d: str) -> str:
    return d.strip().lower()


class _Pool:
    """Integer-indexed experts and the indices that make conflict checks set lookups."""

    def __init__(self, experts: list[Reviewer], seed: int) -> None:
        self.experts = sorted(experts, key=lambda e: e.id)
        self.n = len(self.experts)
        self.index = {e.id: i for i, e in enumerate(self.experts)}
        order = list(range(self.n))
        random.Random(seed).shuffle(order)
        self.rank = [0] * self.n
        for r, i in enumerate(order):
            self.rank[i] = r
        self.member: dict[str, set[int]] = defaultdict(set)
        self.declared_soc: dict[str, set[int]] = defaultdict(set)
        self.own_inst: dict[str, set[int]] = defaultdict(set)
        self.declared_inst: dict[str, set[int]] = defaultdict(set)
        self.discipline: dict[str, list[int]] = defaultdict(list)
        for i, e in enumerate(self.experts):
            for s in e.societies:
                self.member[s].add(i)
            for s in e.conflict_societies:
                self.declared_soc[s].add(i)
            if e.institution:
                self.own_inst[e.institution].add(i)
            for inst in e.conflict_institutions:
                self.declared_inst[inst].add(i)
            for d in e.disciplines:
                self.discipline[_norm(d)].append(i)

    def blocked(self, app: Applicant) -> tuple[set[int], dict[str, int]]:
        """Experts `app` may not get, and how many for each kind of conflict."""
        parts = {
            "of the applicant society": self.member.get(app.society_id, set())
            | self.declared_soc.get(app.society_id, set()),
            "of its institution": (self.own_inst.get(app.institution, set())
                                   | self.declared_inst.get(app.institution, set()))
            if app.institution else set(),
            "excluded by the applicant": {self.index[x] for x in app.excluded if x in self.index},
            "recused or taken off": {self.index[x] for x in app.barred if x in self.index},
        }
        blocked: set[int] = set().union(*parts.values())
        return blocked, {k: len(v) for k, v in parts.items() if v}


def plan(experts: Iterable[Reviewer], apps: Iterable[Applicant], per_application: int,
         max_load: int | None = None, seed: int = 0,
         base_load: dict[str, int] | None = None) -> Plan:
    """Choose experts for every application, or say which applications are short and why."""
    pool = _Pool(list(experts), seed)
    apps = sorted(apps, key=lambda a: a.id)
    n = pool.n
    base = [0] * n
    for eid, k in (base_load or {}).items():
        if eid in pool.index:
            base[pool.index[eid]] = k
    need = [max(0, per_application - len(a.have)) for a in apps]
    blocked: list[set[int]] = []
    short: dict[str, str] = {}
    for k, a in enumerate(apps):
        b, kinds = pool.blocked(a)
        b |= {pool.index[x] for x in a.have if x in pool.index}
        blocked.append(b)
        free = n - len(b)
        if free < need[k]:
            why = ", ".join(f"{v} {kind}" for kind, v in kinds.items()) or "the pool is too small"
            short[a.id] = (f"only {free} expert(s) without a conflict for {need[k]} slot(s) "
                           f"({n} in the pool; conflicts: {why})")
    if short:
        return Plan(short=short)
    total = sum(need)
    if total == 0:
        return Plan(max_load=max_load or max(base, default=0))
    if max_load is not None:
        return _solve(pool, apps, need, blocked, base, max_load, seed)
    limit = max(1, math.ceil((sum(base) + total) / max(n, 1)))
    while True:
        result = _solve(pool, apps, need, blocked, base, limit, seed)
        if not result.short or limit >= len(apps) + max(base, default=0):
            return result
        limit = limit + max(1, limit // 4)


def _solve(pool: _Pool, apps: list[Applicant], need: list[int], blocked: list[set[int]],
           base: list[int], limit: int, seed: int) -> Plan:
    n, rank = pool.n, pool.rank
    load = list(base)
    rng = random.Random(seed + 1)
    tiebreak = list(range(len(apps)))
    rng.shuffle(tiebreak)
    order = sorted(range(len(apps)), key=lambda k: (n - len(blocked[k]), tiebreak[k]))
    glob = [(load[i], rank[i], i) for i in range(n) if load[i] < limit]
    heapq.heapify(glob)
    disc: dict[str, list[tuple[int, int, int]]] = {}
    for d, members in pool.discipline.items():
        h = [(load[i], rank[i], i) for i in members if load[i] < limit]
        heapq.heapify(h)
        disc[d] = h
    exp_disc = [[_norm(d) for d in e.disciplines] for e in pool.experts]
    new: list[set[int]] = [set() for _ in apps]
    holders: list[set[int]] = [set() for _ in range(n)]   # expert -> apps given by this plan

    def take(heap: list, k: int, want: int, chosen: list[int]) -> None:
        aside = []
        while len(chosen) < want and heap:
            entry = heapq.heappop(heap)
            lo, _r, i = entry
            if lo != load[i] or load[i] >= limit:
                continue  # stale entry, or full
            if i in blocked[k] or i in chosen:
                aside.append(entry)
                continue
            chosen.append(i)
        for entry in aside:
            heapq.heappush(heap, entry)

    for k in order:
        if not need[k]:
            continue
        chosen: list[int] = []
        d = _norm(apps[k].discipline)
        if d and d in disc:
            take(disc[d], k, need[k], chosen)
        take(glob, k, need[k], chosen)
        for i in chosen:
            load[i] += 1
            new[k].add(i)
            holders[i].add(k)
            if load[i] < limit:
                heapq.heappush(glob, (load[i], rank[i], i))
                for dd in exp_disc[i]:
                    heapq.heappush(disc[dd], (load[i], rank[i], i))

    by_rank = sorted(range(n), key=lambda i: rank[i])
    short: dict[str, str] = {}
    for k in order:
        while len(new[k]) < need[k]:
            if not _augment(k, by_rank, blocked, new, holders, load, limit):
                free = n - len(blocked[k])
                short[apps[k].id] = (f"its {free} expert(s) without a conflict are at the load "
                                     f"limit {limit} or needed elsewhere; raise --max-load or "
                                     "add experts")
                break
    if short:
        return Plan(max_load=limit, short=short)
    pairs = []
    for k, a in enumerate(apps):
        d = _norm(a.discipline)
        for i in sorted(new[k], key=lambda i: pool.experts[i].id):
            pairs.append((a.id, pool.experts[i].id, bool(d) and d in exp_disc[i]))
    loads = {pool.experts[i].id: load[i] for i in range(n)}
    return Plan(pairs=pairs, max_load=limit, loads=loads)


def _augment(start: int, by_rank: list[int], blocked: list[set[int]], new: list[set[int]],
             holders: list[set[int]], load: list[int], limit: int) -> bool:
    """One more expert for `start` along an augmenting path (others swap experts to make room)."""
    parent: dict[int, tuple[int, int]] = {}
    seen = {start}
    queue = [start]
    for x in queue:
        for i in by_rank:
            if i in blocked[x] or i in new[x]:
                continue
            if load[i] < limit:
                load[i] += 1
                new[x].add(i)
                holders[i].add(x)
                while x != start:
                    px, pi = parent[x]
                    new[x].discard(pi)
                    holders[pi].discard(x)
                    new[px].add(pi)
                    holders[pi].add(px)
                    x = px
                return True
            for y in sorted(holders[i]):
                if y not in seen:
                    seen.add(y)
                    parent[y] = (x, i)
                    queue.append(y)
    return False
