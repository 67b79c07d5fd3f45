"""Assigning experts: conflicts avoided, disciplines matched, loads balanced, all or nothing."""
from __future__ import annotations

from collections import Counter, deque

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from worlds import (
    CALL,
    applications,
    assignments,
    eligible_call,
    experts,
    fingerprint,
    json_of,
    score,
)

from lifecycle.rules.assignment import Applicant, Reviewer, conflict_of, plan


def audit_actions(cli, action: str) -> list[dict]:
    return json_of(cli("audit", "query", "--call", CALL, "--trigger", action, "--limit", "0",
                       "--json"))


def test_no_conflicted_expert_is_ever_assigned(cli, tmp_path):
    # societies(n) gives S00i the institution Inst{i % 4}
    pool = experts(9, E001={"societies": "S001"}, E002={"conflict_societies": "S002"},
                          E003={"institution": "Inst3"}, E004={"conflict_institutions": "Inst0"})
    apps = applications(6, ("academic",), A0005={"excluded_experts": "E005;E006"})
    eligible_call(cli, tmp_path, pool, apps)
    r = json_of(cli("review", "assign", CALL, "--per-application", "3", "--json",
                    now="2025-04-08"))
    assert r["assigned"] == 18 and r["applications"] == 6
    got = assignments(cli)
    assert all(len(v) == 3 for v in got.values()) and len(got) == 6
    assert "E001" not in got["A0001"]
    assert "E002" not in got["A0002"]
    assert "E003" not in got["A0003"]
    assert "E004" not in got["A0004"]
    assert not {"E005", "E006"} & set(got["A0005"])
    events = audit_actions(cli, "assign")
    assert len(events) == 18
    assert {(e["application_id"], e["payload"]["expert"]) for e in events} == {
        (a, x) for a, xs in got.items() for x in xs}


def test_disciplines_are_matched_where_possible(cli, tmp_path):
    pool = experts(10, **{f"E00{i}": {"disciplines": "物理;化学"} for i in (1, 2, 3)})
    apps = applications(4, ("academic",), A0001={"discipline": "物理"},
                        A0002={"discipline": "物理"})
    eligible_call(cli, tmp_path, pool, apps)
    r = json_of(cli("review", "assign", CALL, "--per-application", "3", "--max-load", "2",
                    "--json", now="2025-04-08"))
    got = assignments(cli)
    assert set(got["A0001"]) == set(got["A0002"]) == {"E001", "E002", "E003"}
    assert r["discipline_matched"] == 6


def test_load_is_balanced_and_never_over_the_limit(cli, tmp_path):
    eligible_call(cli, tmp_path, experts(8), applications(10, ("academic",)))
    r = json_of(cli("review", "assign", CALL, "--per-application", "3", "--json",
                    now="2025-04-08"))
    loads = Counter(x for xs in assignments(cli).values() for x in xs)
    assert r["max_load"] == 4  # ceil(30 / 8): no expert gets more than needed
    assert max(loads.values()) <= 4 and sum(loads.values()) == 30


def test_refuses_and_assigns_nothing_when_load_limit_is_too_low(cli, tmp_path):
    eligible_call(cli, tmp_path, experts(8), applications(10, ("academic",)))
    before = fingerprint(cli.db)
    r = cli("review", "assign", CALL, "--per-application", "3", "--max-load", "3",
            ok=False, now="2025-04-08")
    assert r.exit_code == 1
    assert "cannot get 3 experts" in r.output and "nothing was assigned" in r.output
    assert "load limit 3" in r.output and "raise --max-load" in r.output
    assert fingerprint(cli.db) == before


def test_refusal_names_the_short_application_and_why(cli, tmp_path):
    # every expert but two belongs to S001, so A0001 can get only two
    pool = experts(6, **{f"E00{i}": {"societies": "S001"} for i in range(1, 5)})
    eligible_call(cli, tmp_path, pool, applications(3, ("academic",)))
    before = fingerprint(cli.db)
    r = cli("review", "assign", CALL, "--per-application", "3", ok=False, now="2025-04-08")
    assert r.exit_code == 1
    assert "A0001: only 2 expert(s) without a conflict for 3 slot(s)" in r.output
    assert "4 of the applicant society" in r.output
    assert "A0002" not in r.output
    assert fingerprint(cli.db) == before


def test_same_seed_same_result_and_dry_run_writes_nothing(cli, tmp_path):
    eligible_call(cli, tmp_path, experts(12), applications(10, ("academic",)))
    before = fingerprint(cli.db)
    runs = {seed: [json_of(cli("review", "assign", CALL, "--seed", str(seed), "--dry-run",
                               "--json", now="2025-04-08"))["pairs"] for _ in range(2)]
            for seed in (1, 2, 3)}
    assert fingerprint(cli.db) == before
    assert all(a == b for a, b in runs.values())
    assert len({str(v[0]) for v in runs.values()}) > 1  # the seed does choose
    r = json_of(cli("review", "assign", CALL, "--seed", "2", "--json", now="2025-04-08"))
    assert r["pairs"] == runs[2][0]


def test_running_assign_again_only_fills_what_is_missing(cli, tmp_path):
    eligible_call(cli, tmp_path, experts(12), applications(6, ("academic",)))
    cli("review", "assign", CALL, "--per-application", "3", now="2025-04-08")
    first = assignments(cli)
    r = json_of(cli("review", "assign", CALL, "--per-application", "3", "--json",
                    now="2025-04-08"))
    assert r["assigned"] == 0 and assignments(cli) == first
    cli("review", "recuse", "A0001", "--expert", first["A0001"][0], "--reason", "co-author",
        now="2025-04-09")
    r = json_of(cli("review", "assign", CALL, "--per-application", "3", "--json",
                    now="2025-04-09"))
    again = assignments(cli)
    assert r["assigned"] == 1 and len(again["A0001"]) == 3
    assert first["A0001"][0] not in again["A0001"]  # a recused expert never comes back


def test_recuse_then_reassign_with_the_same_checks(cli, tmp_path):
    pool = experts(8, E007={"societies": "S001"})
    eligible_call(cli, tmp_path, pool, applications(4, ("academic",)))
    cli("review", "assign", CALL, "--per-application", "3", "--max-load", "3", now="2025-04-08")
    cli("advance", CALL, "start_review", now="2025-04-08")
    got = assignments(cli)
    gone = got["A0001"][0]
    r = cli("review", "recuse", "A0001", "--expert", gone, "--reason", "former student",
            now="2025-04-09")
    assert "2 expert(s) left" in r.output
    conflicted = cli("review", "reassign", "A0001", "--from", gone, "--to", "E007", ok=False)
    assert conflicted.exit_code == 1 and "member of the applicant society" in conflicted.output
    again = cli("review", "reassign", "A0001", "--from", gone, "--to", got["A0001"][1], ok=False)
    assert again.exit_code == 1 and "already on A0001" in again.output
    free = sorted({f"E00{i}" for i in range(1, 7)} - set(got["A0001"]) - {gone})
    busy = [e for e in free if sum(e in v for v in got.values()) >= 3]
    idle = [e for e in free if e not in busy]
    if busy:
        over = cli("review", "reassign", "A0001", "--from", gone, "--to", busy[0],
                   "--max-load", "3", ok=False)
        assert over.exit_code == 1 and "load limit 3" in over.output
    cli("review", "reassign", "A0001", "--from", gone, "--to", idle[0], "--reason", "free slot",
        now="2025-04-10")
    assert idle[0] in assignments(cli)["A0001"] and len(assignments(cli)["A0001"]) == 3
    twice = cli("review", "reassign", "A0001", "--from", gone, "--to", idle[-1], ok=False)
    assert twice.exit_code == 1 and "already given" in twice.output
    rec = audit_actions(cli, "recuse")
    rea = audit_actions(cli, "reassign")
    assert rec[0]["payload"]["reason"] == "former student" and rec[0]["payload"]["expert"] == gone
    assert rea[0]["payload"]["from"] == gone and rea[0]["payload"]["to"] == idle[0]
    shown = json_of(cli("show", "A0001", "--json"))
    assert any(n["kind"] == "review_assigned" and f"e{int(idle[0][1:])}@" in n["to"]
               for n in shown["notifications"])  # the new expert is told
    sent = cli("notify", "send", "--outbox", tmp_path / "mail")
    assert "0 failed" in sent.output
    assert any(p.name.startswith("review_assigned_A0001_")
               and f"e{int(idle[0][1:])}@".encode() in p.read_bytes()
               for p in (tmp_path / "mail").glob("*.eml"))


def test_reassign_refuses_an_expert_who_returned_scores(cli, tmp_path):
    eligible_call(cli, tmp_path, experts(8), applications(2, ("academic",)))
    cli("review", "assign", CALL, "--per-application", "3", now="2025-04-08")
    cli("advance", CALL, "start_review", now="2025-04-08")
    who = assignments(cli)["A0001"][0]
    score(cli, tmp_path, {(who, "A0001"): 85})
    r = cli("review", "reassign", "A0001", "--from", who, "--to", "E008", ok=False)
    assert r.exit_code == 1 and "already returned scores" in r.output


# --- properties of the algorithm -------------------------------------------------------

def _feasible(experts: list[Reviewer], apps: list[Applicant], need: int, limit: int) -> bool:
    """Brute truth by max flow (Edmonds-Karp): can every application get `need` experts?"""
    n_a, n_e = len(apps), len(experts)
    src, sink = n_a + n_e, n_a + n_e + 1
    cap: dict[tuple[int, int], int] = Counter()
    adj: dict[int, set[int]] = {i: set() for i in range(n_a + n_e + 2)}

    def edge(u: int, v: int, c: int) -> None:
        cap[(u, v)] += c
        adj[u].add(v)
        adj[v].add(u)

    for i, a in enumerate(apps):
        edge(src, i, need)
        for j, e in enumerate(experts):
            if conflict_of(e, a) is None:
                edge(i, n_a + j, 1)
    for j in range(n_e):
        edge(n_a + j, sink, limit)
    flow = 0
    while True:
        parent = {src: src}
        q = deque([src])
        while q and sink not in parent:
            u = q.popleft()
            for v in adj[u]:
                if v not in parent and cap[(u, v)] > 0:
                    parent[v] = u
                    q.append(v)
        if sink not in parent:
            return flow == need * n_a
        v = sink
        while v != src:
            u = parent[v]
            cap[(u, v)] -= 1
            cap[(v, u)] += 1
            v = u
        flow += 1


SOC = [f"S{i}" for i in range(4)]
INST = ["I0", "I1", "I2"]


@st.composite
def pools(draw):
    n_e = draw(st.integers(1, 8))
    experts = [Reviewer(f"E{j}", draw(st.sampled_from(INST + [""])),
                        frozenset(draw(st.sets(st.sampled_from(["d1", "d2"]), max_size=1))),
                        frozenset(draw(st.sets(st.sampled_from(SOC), max_size=1))),
                        frozenset(draw(st.sets(st.sampled_from(SOC), max_size=1))),
                        frozenset(draw(st.sets(st.sampled_from(INST), max_size=1))))
               for j in range(n_e)]
    n_a = draw(st.integers(1, 7))
    apps = [Applicant(f"A{i}", draw(st.sampled_from(SOC)), draw(st.sampled_from(INST)),
                      draw(st.sampled_from(["", "d1", "d2"])),
                      frozenset(draw(st.sets(st.sampled_from([e.id for e in experts]),
                                             max_size=1))))
            for i in range(n_a)]
    return experts, apps, draw(st.integers(1, 3)), draw(st.one_of(st.none(), st.integers(1, 5))), \
        draw(st.integers(0, 1000))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(pools())
def test_every_application_gets_its_count_or_nothing_is_assigned(case):
    experts, apps, need, limit, seed = case
    result = plan(experts, apps, need, limit, seed)
    by_id = {e.id: e for e in experts}
    if result.short:
        assert result.pairs == []
        if limit is not None:
            assert not _feasible(experts, apps, need, limit)  # a refusal is never wrong
        return
    got: dict[str, list[str]] = {}
    for a, e, _ in result.pairs:
        got.setdefault(a, []).append(e)
    for a in apps:
        chosen = got.get(a.id, [])
        assert len(chosen) == need == len(set(chosen))
        assert all(conflict_of(by_id[e], a) is None for e in chosen)
    loads = Counter(e for _, e, _ in result.pairs)
    assert max(loads.values()) <= result.max_load
    if limit is not None:
        assert result.max_load == limit
    assert plan(experts, list(reversed(apps)), need, limit, seed).pairs == result.pairs


def test_a_recused_experts_scores_no_longer_count(cli, tmp_path):
    eligible_call(cli, tmp_path, experts(8), applications(2, ("academic",)))
    cli("review", "assign", CALL, "--per-application", "3", now="2025-04-08")
    cli("advance", CALL, "start_review", now="2025-04-08")
    xs = assignments(cli)["A0001"]
    score(cli, tmp_path, {(xs[0], "A0001"): 40, (xs[1], "A0001"): 80, (xs[2], "A0001"): 90})
    before = {r["application"]: r for r in json_of(cli("rank", CALL, "--json"))["rows"]}
    assert before["A0001"]["reviews"] == 3 and before["A0001"]["score"] == 70.0
    cli("review", "recuse", "A0001", "--expert", xs[0], "--reason", "late conflict",
        now="2025-04-21")
    after = {r["application"]: r for r in json_of(cli("rank", CALL, "--json"))["rows"]}
    assert after["A0001"]["reviews"] == 2 and after["A0001"]["score"] == 85.0
    ev = audit_actions(cli, "recuse")
    assert ev[0]["payload"]["was"] == "submitted" and ev[0]["payload"]["total_set_aside"] == 40.0
