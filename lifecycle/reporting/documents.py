"""Documents people publish, send and read: the public notice (公示), the award list (立项名单),
a society's payment statement and the report, as HTML (one self-contained file: styles and
charts inline, nothing fetched), XLSX (every text cell inert) and PDF (WeasyPrint, with the
Noto CJK fonts Debian installs). Rendered with the sandboxed, strict, auto-escaping
environment of `notifications.render` over this package's templates; headings in Chinese
by default, English with lang="en"."""
from __future__ import annotations

from pathlib import Path
from typing import IO, Any

from lifecycle.core.errors import BadValue
from lifecycle.reporting.figures import MOVES

TEMPLATES = Path(__file__).resolve().parent / "templates"

LABELS: dict[str, dict[str, str]] = {
    "zh": {"notice": "拟资助项目公示", "notice_star": "星级学会评定结果公示",
           "awards": "立项名单", "awards_star": "星级学会名单",
           "no": "序号", "id": "项目编号", "title": "项目名称", "society": "申报学会",
           "stars": "星级", "amount": "资助金额（元）", "reward": "奖励金额（元）",
           "category": "类别", "total": "合计", "period": "公示期", "channel": "异议渠道",
           "draft": "草稿：公示尚未发布", "count": "项", "yuan": "元",
           "to": "至", "object_by": "公示期间如有异议，请于以下日期前提出：",
           "objection_rule": "异议须实名，写明理由并提供证据，匿名异议不予受理。",
           "publisher": "市科协学会工作部", "awarded_on": "立项日期",
           "statement": "资助款项对账单", "payee": "收款账户", "granted": "资助金额",
           "paid": "已拨付", "due": "待拨付", "planned": "计划拨付", "recovered": "已退回",
           "to_recover": "应退回", "instalment": "款项", "status": "状态", "voucher": "凭证号",
           "paid_on": "拨付日期", "due_on": "应付日期", "application": "项目",
           "generated": "生成日期", "colon": "：", "comma": "，", "stop": "。",
           "lp": "（", "rp": "）"},
    "en": {"notice": "Public notice of the proposed projects",
           "notice_star": "Public notice of the star ratings",
           "awards": "Award list", "awards_star": "Star-rated societies",
           "no": "No.", "id": "Application", "title": "Title", "society": "Society",
           "stars": "Stars", "amount": "Amount (yuan)", "reward": "Reward (yuan)",
           "category": "Category", "total": "Total", "period": "Notice period",
           "channel": "Objections", "draft": "Draft: the notice has not been published",
           "count": "projects", "yuan": "yuan", "to": "to",
           "object_by": "Objections during the notice are accepted until ",
           "objection_rule": "Objections must be signed and give reasons and evidence; "
                             "anonymous objections are not considered.",
           "publisher": "Society Affairs Department", "awarded_on": "Awarded",
           "statement": "Statement of grant payments", "payee": "Payee", "granted": "Granted",
           "paid": "Paid", "due": "Due", "planned": "Planned", "recovered": "Recovered",
           "to_recover": "To recover", "instalment": "Instalment", "status": "Status",
           "voucher": "Voucher", "paid_on": "Paid on", "due_on": "Due on",
           "application": "Project", "generated": "Generated", "colon": ": ", "comma": ", ",
           "stop": ". ", "lp": " (", "rp": ")"},
}


def _env():
    from notifications.render import environment

    return environment(str(TEMPLATES))


def render(template: str, data: dict[str, Any], lang: str = "zh", **extra: Any) -> str:
    """One of this package's templates over `data` (plain data from `published`, `figures` or
    a statement), with the labels of `lang`."""
    t = LABELS["en" if lang == "en" else "zh"]
    return _env().get_template(template).render(d=data, t=t, lang=lang, star_moves=MOVES,
                                                **extra)


def notice_html(data: dict[str, Any]) -> str:
    return render("notice.html", data, data["lang"])


def awards_html(data: dict[str, Any]) -> str:
    return render("awards.html", data, data["lang"])


def statement_html(data: dict[str, Any], lang: str = "zh") -> str:
    return render("statement.html", data, lang)


def listing_rows(data: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """A notice's or award list's rows for a spreadsheet: headers in the data's language."""
    t = LABELS["en" if data["lang"] == "en" else "zh"]
    star = data["call"]["stars"]
    headers = [t["no"], t["category"], t["id"], t["title"], t["society"]] + \
        ([t["stars"], t["reward"]] if star else [t["amount"]])
    rows = []
    for g in data["groups"]:
        for i, p in enumerate(g["projects"], start=1):
            rows.append([i, g["name"], p["id"], p["title"], p["society"]]
                        + ([p["stars"], p["amount"]] if star else [p["amount"]]))
    return headers, rows


def write_xlsx(path: str | Path | IO[bytes], sheet: str, headers: list[str],
               rows: list[list[Any]]) -> None:
    """One sheet of inert cells, to a file or an open binary stream (the portal's downloads)."""
    from lifecycle.core.tabular import new_workbook, xlsx_append

    wb = new_workbook()
    ws = wb.create_sheet(sheet)
    xlsx_append(ws, headers)
    for r in rows:
        xlsx_append(ws, r)
    wb.save(path)


def pdf(html: str) -> bytes:
    """The page as PDF (WeasyPrint; CJK text in the Noto CJK fonts)."""
    try:
        from weasyprint import HTML
    except OSError as e:  # pango missing: a system library, not a Python package
        raise BadValue(f"cannot make a PDF: WeasyPrint needs pango ({e}); install it with "
                       "`apt-get install libpango-1.0-0 libpangoft2-1.0-0`") from None
    return HTML(string=html).write_pdf()


def write(html: str, path: str | Path, kind: str) -> None:
    """Write a rendered page as HTML or PDF."""
    if kind == "pdf":
        Path(path).write_bytes(pdf(html))
    else:
        Path(path).write_text(html, encoding="utf-8")


REPORT = {
    "zh": {"report": "年度报告", "applications": "申报项目", "awarded": "立项金额（元）",
           "paid": "已拨付（元）", "to_recover": "应退回（元）", "requested": "申报金额",
           "cut": "分数线", "years": "历年对比", "year": "年度", "funded": "资助项目",
           "terminated": "终止", "rewards": "星级奖励（元）", "call": "批次", "score": "评分",
           "grade": "等级/星级", "society": "学会历年情况"},
    "en": {"report": "Report", "applications": "applications", "awarded": "awarded (yuan)",
           "paid": "paid (yuan)", "to_recover": "to recover (yuan)", "requested": "requested",
           "cut": "cut line", "years": "Year by year", "year": "year", "funded": "projects funded",
           "terminated": "projects terminated", "rewards": "star rewards (yuan)", "call": "call",
           "score": "score", "grade": "grade / stars", "society": "A society's history"},
}


def report_html(calls: list[dict[str, Any]], years: list[dict[str, Any]] | None = None,
                society: dict[str, Any] | None = None, title: str = "",
                lang: str = "zh", generated: str = "") -> str:
    """The report as one self-contained page: each call's figures with its charts, the years
    side by side with the star moves, or a society's history."""
    from lifecycle.reporting import charts

    lang = "en" if lang == "en" else "zh"
    svgs = []
    for c in calls:
        svgs.append({
            "funnel": charts.svg_funnel(c, lang),
            "budget": charts.svg_budget(c, lang) if not c["call"]["stars"] else "",
            "scores": charts.svg_scores(c, lang) if any(s["scores"] for s in c["scores"]) else "",
            "experts": charts.svg_experts(c, lang) if c["experts"] else "",
            "assessment": charts.svg_assessment(c, lang)
            if c["assessment"]["grades"] or any(c["assessment"]["outcomes"].values()) else "",
            "stars": charts.svg_stars(c, lang) if c.get("stars") else ""})
    moves = charts.svg_moves(years, lang) if years and any(
        sum(y["moves"].values()) for y in years) else ""
    return render("report.html", {}, lang, calls=calls, svgs=svgs, years=years or [],
                  moves_svg=moves, society=society,
                  society_svg=charts.svg_society(society, lang)
                  if society and society["history"] else "",
                  title=title, generated=generated, r=REPORT[lang])


def report_xlsx(path: str | Path, calls: list[dict[str, Any]],
                years: list[dict[str, Any]] | None = None,
                society: dict[str, Any] | None = None) -> None:
    """The report's tables as a workbook: one sheet per kind of figure (text cells inert)."""
    from lifecycle.core.tabular import new_workbook, xlsx_append

    wb = new_workbook()
    sheets = {
        "funnel": (["call", "stage", "count"],
                   [[c["call"]["id"], s["stage"], s["count"]] for c in calls for s in c["funnel"]]),
        "budget": (["call", "category", "name", "budget", "requested", "awarded", "paid"],
                   [[c["call"]["id"], b["category"], b["name"], b["budget"], b["requested"],
                     b["awarded"], b["paid"]] for c in calls for b in c["budget"]]),
        "scores": (["call", "category", "ranked", "funded", "cut line", "scores"],
                   [[c["call"]["id"], s["category"], s["ranked"], s["funded"], s["cut"],
                     ", ".join(f"{v:g}" for v in s["scores"])] for c in calls for s in c["scores"]]),
        "experts": (["call", "expert", "name", "reviews", "mean", "normalised mean"],
                    [[c["call"]["id"], e["expert"], e["name"], e["reviews"], e["mean"],
                      e["normalised"]] for c in calls for e in c["experts"]]),
        "outcomes": (["call", "outcome", "count"],
                     [[c["call"]["id"], o, n] for c in calls
                      for o, n in c["assessment"]["outcomes"].items()]),
    }
    if years:
        sheets["years"] = (["year", "funded", "terminated", "ineligible", "paid", "withheld",
                            "recovered", "to recover", "star declarations"]
                           + list(MOVES) + ["rewards"],
                           [[y["year"], y["funded"], y["terminated"], y["ineligible"], y["paid"],
                             y["withheld"], y["recovered"], y["to_recover"], y["star_declared"]]
                            + [y["moves"][m] for m in MOVES] + [y["rewards"]]
                            for y in years])
    if society:
        name = society["society"]["name"]
        sheets["society"] = (["society", "year", "call", "application", "category", "state",
                              "score", "requested", "granted", "grade", "stars"],
                             [[name, h["year"], h["call"], h["application"], h["category"],
                               h["state"], h["score"], h["requested"], h["granted"], h["grade"],
                               h["stars"]] for h in society["history"]])
    for name, (headers, rows) in sheets.items():
        ws = wb.create_sheet(name)
        xlsx_append(ws, headers)
        for row in rows:
            xlsx_append(ws, row)
    wb.save(path)
