"""What a 科协 lists, pays and publishes (issue 13): lists with totals, sorting and paging that
fit 80 columns; payee details masked but to finance; the finance export, vouchers, dry runs
and statements; the public notice (公示) and award list (立项名单) as HTML, XLSX and PDF; the
report's figures. A society named like a formula (=...) goes through every export inert."""
from __future__ import annotations

import csv
import io

from openpyxl import load_workbook
from rich.cells import cell_len
from worlds import (
    FINANCE,
    Cli,
    call_file,
    experts,
    fingerprint,
    funded_project_call,
    in_review,
    json_of,
    proposed,
    refused,
    score_assigned,
    societies,
    write_csv,
)

EVIL = '=HYPERLINK("http://x.example")学会'
ACCOUNT = "6222 0210 0112 3456"
S = ["S001", "S002", "S003"]


def _world(cli: Cli, tmp_path) -> str:
    rows = societies(3, S001={"name": EVIL, "payee_name": "市测试学会", "payee_bank": "工商银行",
                              "payee_account": ACCOUNT})
    cli("society", "import", write_csv(tmp_path / "soc.csv", rows), now="2025-01-10")
    cli("expert", "import", write_csv(tmp_path / "exp.csv", experts(4)), now="2025-01-10")
    call_id, _ = funded_project_call(cli, tmp_path, S, call_file(tmp_path, checkpoints=True))
    return call_id


def _fits(text: str) -> None:
    assert max(cell_len(line) for line in text.splitlines()) <= 80, text


def _inert_xlsx(path, value: str = EVIL) -> None:
    """The formula-like text is in the workbook as a string cell, never a formula."""
    cells = [c for row in load_workbook(path).active.iter_rows() for c in row
             if c.value == value]
    assert cells and all(c.data_type == "s" for c in cells), path


def test_lists_money_and_exports(cli, tmp_path):
    call_id = _world(cli, tmp_path)
    a1 = f"{call_id}-S001"

    # application list: 80 columns, totals, sorting, paging; JSON totals; inert CSV and XLSX
    out = cli("application", "list", call_id, "--limit", "2", "--sort", "-id").output
    _fits(out)
    assert "total: 3 applications; requested 60,000; granted 60,000" in out
    assert "page 1 of 2 (--page 2 for more)" in out
    assert out.index(f"{call_id}-S003") < out.index(f"{call_id}-S002") and a1 not in out
    page = json_of(cli("application", "list", call_id, "--json", "--limit", "2", "--page", "2",
                       "--sort", "-id"))
    assert (page["total"], page["pages"], [r["id"] for r in page["rows"]]) == (3, 2, [a1])
    assert page["rows"][0]["society"] == EVIL and page["totals"]["granted"] == 60000
    got = list(csv.reader(io.StringIO(cli("application", "list", "--society", "S001",
                                          "--csv").output)))
    assert got[1][got[0].index("society")] == "'" + EVIL
    cli("application", "list", call_id, "--xlsx", tmp_path / "apps.xlsx")
    _inert_xlsx(tmp_path / "apps.xlsx")
    assert "no society 'S999'" in refused(cli, "application", "list", "--society", "S999")

    # society list: the account number masked, in full to finance only
    out = cli("society", "list").output
    _fits(out)
    assert "total: 3 societies; granted 60,000" in out
    mine = json_of(cli("society", "list", "--json"))["rows"][0]
    assert mine["payee_account"] == "**** 3456" and mine["name"] == EVIL
    assert json_of(cli("society", "list", "--json", actor=FINANCE))["rows"][0][
        "payee_account"] == ACCOUNT
    cli("society", "list", "--xlsx", tmp_path / "soc.xlsx")
    _inert_xlsx(tmp_path / "soc.xlsx")

    # payments: a dry run records nothing; a payment carries its voucher
    before = fingerprint(cli.db)
    dry = json_of(cli("payments", "pay", call_id, "--dry-run", "--json", now="2025-05-20",
                      actor=FINANCE))
    assert (dry["dry_run"], dry["instalments"], dry["amount"]) == (True, 3, 30000)
    assert fingerprint(cli.db) == before
    r = cli("payments", "pay", call_id, "--voucher", "PZ-2025-007", now="2025-05-20",
            actor=FINANCE)
    assert "paid 3 instalments to 3 applications: 30,000 yuan (voucher PZ-2025-007)" in r.output
    # the finance export: per society and instalment, the account in full, for finance only
    out = refused(cli, "payments", "export", call_id, "--xlsx", tmp_path / "no.xlsx")
    assert "(payment.export); it is for finance" in out
    cli("payments", "export", call_id, "--xlsx", tmp_path / "pay.xlsx", actor=FINANCE)
    _inert_xlsx(tmp_path / "pay.xlsx")
    rows = list(load_workbook(tmp_path / "pay.xlsx").active.values)
    head = rows[0]
    first = dict(zip(head, rows[1]))
    assert first["账号 account number"] == ACCOUNT and first["凭证号 voucher"] == "PZ-2025-007"
    assert (first["金额 amount (yuan)"], first["状态 status"]) == (10000, "paid")
    assert len(rows) == 1 + 3 * 3  # three instalments each
    # the statement a society is sent: masked, with what was paid
    st = cli("payments", "statement", "S001", "--html", tmp_path / "st.html").output
    assert "**** 3456" in st and ACCOUNT not in st
    page = (tmp_path / "st.html").read_text(encoding="utf-8")
    assert "**** 3456" in page and "PZ-2025-007" in page and ACCOUNT not in page
    assert "=HYPERLINK(&#34;http://x.example&#34;)学会" in page  # escaped in HTML

    # the notice and the award list of the finished call: its list, its period, read-only
    before = fingerprint(cli.db)
    n = json_of(cli("notice", "export", call_id, "--json", "--xlsx", tmp_path / "n.xlsx",
                    "--html", tmp_path / "n.html"))
    assert (n["count"], n["total"], n["draft"]) == (3, 60000, False)
    assert n["starts"] <= n["last_day"] and n["call"]["channel"].startswith("书面实名异议")
    assert list(load_workbook(tmp_path / "n.xlsx").active.values)[0][:3] == ("序号", "类别", "项目编号")
    _inert_xlsx(tmp_path / "n.xlsx")
    en = json_of(cli("notice", "export", call_id, "--json", "--lang", "en", "--xlsx",
                     tmp_path / "n-en.xlsx"))
    assert en["call"]["channel"].startswith("Signed, written objections")
    assert list(load_workbook(tmp_path / "n-en.xlsx").active.values)[0][0] == "No."
    w = json_of(cli("awards", "export", call_id, "--json", "--xlsx", tmp_path / "a.xlsx"))
    assert (w["count"], w["total"]) == (3, 60000)
    _inert_xlsx(tmp_path / "a.xlsx")
    assert fingerprint(cli.db) == before
    r = cli("notice", "publish", call_id, "--html", tmp_path / "again.html", now="2025-06-01")
    assert f"3 project(s), 60,000 yuan; notice runs until {n['last_day']}" in r.output

    # the report's figures and its workbook
    rep = json_of(cli("report", call_id, "--json", "--xlsx", tmp_path / "r.xlsx"))["calls"][0]
    funnel = {s["stage"]: s["count"] for s in rep["funnel"]}
    assert funnel["declared"] == funnel["awarded"] == funnel["funded"] == 3
    assert rep["money"]["paid"] == 30000 and len(rep["experts"]) == 4
    academic = next(s for s in rep["scores"] if s["category"] == "academic")
    assert academic["scores"] == [90.0, 90.0, 90.0] and academic["cut"] == 90.0
    soc = json_of(cli("report", "--society", "S001", "--json", "--xlsx", tmp_path / "s.xlsx"))
    assert [h["application"] for h in soc["society"]["history"]] == [a1]
    wb = load_workbook(tmp_path / "s.xlsx")
    assert [c.value for c in wb["society"][2]][0] == EVIL and wb["society"]["A2"].data_type == "s"


def test_recovery_settles_what_a_terminated_project_owes(cli, tmp_path):
    """`payments recover` records money paid back; more than is owed is refused."""
    from worlds import assess_checkpoint, people

    people(cli, tmp_path, n_societies=2, n_experts=4)
    call_id, _ = funded_project_call(cli, tmp_path, ["S001", "S002"],
                                     call_file(tmp_path, checkpoints=True))
    cli("payments", "pay", call_id, now="2025-05-25", actor=FINANCE)
    a = f"{call_id}-S001"
    assess_checkpoint(cli, tmp_path, call_id, {a: 50, f"{call_id}-S002": 90},
                      decided="2025-09-26")
    assert json_of(cli("payments", "list", call_id, "--json"))["to_recover"] == 10000
    out = refused(Cli(cli.db, actor=FINANCE), "payments", "recover", a, "--amount", "12000",
                  "--voucher", "R-1", now="2025-10-01")
    assert "is to recover 10,000 yuan; 12,000 is more than that" in out
    assert "(payment.recover); it is for finance" in refused(
        cli, "payments", "recover", a, "--amount", "4000", "--voucher", "R-1", now="2025-10-01")
    r = json_of(cli("payments", "recover", a, "--amount", "4000", "--voucher", "R-1", "--json",
                    now="2025-10-01", actor=FINANCE))
    assert r["still_to_recover"] == 6000
    m = json_of(cli("payments", "list", call_id, "--json"))
    assert (m["recovered"], m["to_recover"]) == (4000, 6000)
    st = json_of(cli("payments", "statement", "S001", "--json"))
    assert (st["totals"]["recovered"], st["totals"]["to_recover"]) == (4000, 6000)


def test_who_still_owes_scores_and_a_notice_before_it_closes(cli, tmp_path):
    got = in_review(cli, tmp_path)
    late = [(x, a) for a, xs in got.items() for x in xs][:2]  # two sheets not returned
    score_assigned(cli.db, skip=late)
    owed = json_of(cli("expert", "list", "--call", "2025-project", "--outstanding", "--json"))
    expected = {}
    for x, _ in late:
        expected[x] = expected.get(x, 0) + 1
    assert {r["id"]: r["outstanding"] for r in owed["rows"]} == expected
    assert all(r["since"].startswith("2025-04-08") for r in owed["rows"])
    out = cli("expert", "list", "--call", "2025-project", "--outstanding").output
    _fits(out)
    assert f"owed {len(late)}" in out
    assert "has no public notice yet" in refused(cli, "notice", "export", "2025-project")


def test_the_notice_while_it_runs_and_the_award_list_waits(cli, tmp_path):
    proposed(cli, tmp_path)  # six proposed, the notice published (opened)
    out = refused(cli, "awards", "export", "2025-project", "--xlsx", tmp_path / "a.xlsx",
                  now="2025-05-12")
    assert "the public notice of 2025-project has not closed: 6 application(s)" in out
    assert not (tmp_path / "a.xlsx").exists()
    n = json_of(cli("notice", "export", "2025-project", "--json", now="2025-05-12"))
    assert (n["count"], n["running"], n["starts"]) == (6, True, "2025-05-10")
