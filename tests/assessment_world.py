"""Small project and star calls brought to the point a test needs, through the CLI.

Used by the assessment, outcome, payment, star and multi-year tests.
"""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from conftest import EXAMPLE_CALL, ROOT, societies, write_csv
from sqlalchemy import select

from lifecycle.core import callconfig
from lifecycle.core.db import make_engine
from lifecycle.core.models import Assignment

STAR_CALL = ROOT / "examples" / "star-call.toml"
CRITERIA = {"content": 30, "method": 25, "team": 15, "outputs": 20, "budget": 10}


def json_of(result) -> Any:
    return json.loads(result.output)


def _shift_years(text: str, years: int) -> str:
    return re.sub(r"\b(20\d\d)-(\d\d-\d\d)", lambda m: f"{int(m.group(1)) + years}-{m.group(2)}",
                  text)


def project_toml(tmp_path: Path, call_id: str = "2025-project", years: int = 0,
                 checkpoints: bool = True, replace: dict[str, str] | None = None) -> Path:
    """examples/call.toml, its commented mid-term/final plan switched on, moved `years` on."""
    text = EXAMPLE_CALL.read_text(encoding="utf-8")
    if checkpoints:
        head, tail = text.split("# check and a final acceptance:", 1)
        tail = re.sub(r"(?m)^# (\[|[a-z_]+ = )", r"\1", tail)
        tail = tail.replace("[payments]   (default: one payment of the whole grant on award)",
                            "[payments]")
        text = head + tail
    text = _shift_years(text, years)
    text = re.sub(r'(?m)^id = "2025-project"', f'id = "{call_id}"', text)
    for old, new in (replace or {}).items():
        assert old in text, old
        text = text.replace(old, new)
    path = tmp_path / f"{call_id}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def star_toml(tmp_path: Path, call_id: str = "2025-star", years: int = 0,
              replace: dict[str, str] | None = None) -> Path:
    text = _shift_years(STAR_CALL.read_text(encoding="utf-8"), years)
    text = re.sub(r'(?m)^id = "2025-star"', f'id = "{call_id}"', text)
    for old, new in (replace or {}).items():
        assert old in text, old
        text = text.replace(old, new)
    path = tmp_path / f"{call_id}.toml"
    path.write_text(text, encoding="utf-8")
    return path


def people(cli, tmp_path: Path, n_societies: int = 8, n_experts: int = 5,
           member: dict[str, str] | None = None) -> None:
    """Societies S001.. and experts E001.. (E00k belongs to member[E00k] if given)."""
    cli("society", "import", write_csv(tmp_path / "soc.csv", societies(n_societies)),
        now="2025-01-10")
    rows = [{"id": f"E{i:03d}", "name": f"专家{i}", "email": f"e{i}@example.org",
             "institution": f"Uni{i}", "societies": (member or {}).get(f"E{i:03d}", "")}
            for i in range(1, n_experts + 1)]
    cli("expert", "import", write_csv(tmp_path / "exp.csv", rows), now="2025-01-10")


def _at(cal_value, **delta) -> str:
    from datetime import timedelta

    return (cal_value + timedelta(**delta)).isoformat()


def funded_project_call(cli, tmp_path: Path, societies_: list[str], call_file: Path,
                        amount: int = 20000) -> tuple[str, callconfig.CallConfig]:
    """Create the call, declare one academic project per society, review, rank, award, fund.

    Application ids are CALL-Snnn. Returns (call id, config).
    """
    call = callconfig.load(call_file)
    cal = call.calendar
    cli("call", "create", call_file, now=_at(cal.declaration_opens, days=-1))
    rows = [{"id": f"{call.id}-{s}", "society_id": s, "category": "academic",
             "title": f"项目 {s}", "requested_amount": amount, "summary": "摘要"}
            for s in societies_]
    cli("application", "import", call.id, write_csv(tmp_path / f"{call.id}-apps.csv", rows),
        now=_at(cal.declaration_opens, days=1))
    cli("advance", call.id, "submit", now=_at(cal.declaration_opens, days=2))
    cli("advance", call.id, "close_declaration", now=_at(cal.declaration_closes, minutes=1))
    eligible = [a for a in json_of(cli("status", call.id, "--json"))["states"]
                if a["state"] == "eligible"]
    if not eligible:
        return call.id, call
    cli("review", "assign", call.id, "--per-application", "3",
        now=_at(cal.declaration_closes, days=1))
    cli("advance", call.id, "start_review", now=_at(cal.declaration_closes, days=1))
    e = make_engine(cli.db)
    with e.connect() as conn:
        pairs = conn.execute(select(Assignment.expert_id, Assignment.application_id)
                             .where(Assignment.call_id == call.id)
                             .order_by(Assignment.id)).all()
    e.dispose()
    sheet = write_csv(tmp_path / f"{call.id}-scores.csv", [
        {"expert_id": x, "application_id": a, **{c: m * 0.9 for c, m in CRITERIA.items()}}
        for x, a in pairs])
    cli("review", "import", call.id, sheet, now=_at(cal.review_due, days=-2))
    cli("advance", call.id, "close_review", now=_at(cal.review_due, minutes=1))
    cli("advance", call.id, "rank", now=_at(cal.review_due, days=1))
    cli("advance", call.id, "propose", now=_at(cal.review_due, days=2))
    cli("advance", call.id, "open_notice", now=_at(cal.review_due, days=2))
    cli("advance", call.id, "close_notice", now=_at(cal.review_due, days=12))
    cli("advance", call.id, "fund", now=_at(cal.review_due, days=13))
    return call.id, call


def grade_file(tmp_path: Path, name: str, grades: dict[str, float | str],
               grader: str | None = None) -> Path:
    rows = [{"application_id": a, "score": s, **({"grader": grader} if grader else {})}
            for a, s in grades.items()]
    return write_csv(tmp_path / name, rows)


def states_of(cli, call_id: str) -> dict[str, int]:
    return {s["state"]: s["count"] for s in json_of(cli("status", call_id, "--json"))["states"]}


def app_state(cli, app_id: str) -> dict[str, Any]:
    return json_of(cli("show", app_id, "--json"))


def audit_events(cli, **filters: str) -> list[dict[str, Any]]:
    args = []
    for k, v in filters.items():
        args += [f"--{k}", v]
    return json_of(cli("audit", "query", "--limit", "0", "--json", *args))


# --- star calls ----------------------------------------------------------------------

def star_sheet(call: callconfig.CallConfig, quality: float) -> dict[str, float]:
    """Scores at `quality` share of each indicator's maximum (rounded to 0.5)."""
    return {i: round(ind.max * quality * 2) / 2 for i, (_, ind) in call.star.indicators().items()}


def star_rows(call: callconfig.CallConfig, quality: dict[str, float],
              column: str = "self_score") -> list[dict[str, Any]]:
    return [{"society_id": s, "indicator": i, column: v}
            for s, q in quality.items() for i, v in star_sheet(call, q).items()]


def rated_star_call(cli, tmp_path: Path, call_file: Path, quality: dict[str, float],
                    experts: tuple[str, ...] = ("E001", "E002", "E003"),
                    finish: bool = True) -> callconfig.CallConfig:
    """A star call where society s scores quality[s] of every maximum at every step.

    With `finish`, it runs to the end: notice closed, stars awarded.
    """
    call = callconfig.load(call_file)
    cal = call.calendar
    cli("call", "create", call_file, now=_at(cal.declaration_opens, days=-1))
    cli("star", "declare", call.id,
        write_csv(tmp_path / f"{call.id}-self.csv", star_rows(call, quality)),
        now=_at(cal.declaration_opens, days=3))
    cli("advance", call.id, "submit", now=_at(cal.declaration_opens, days=4))
    cli("advance", call.id, "close_declaration", now=_at(cal.declaration_closes, minutes=1))
    status = states_of(cli, call.id)
    eligible = [s for s in quality if json_of(cli("show", f"{call.id}-{s}", "--json"))
                ["application"]["state"] == "eligible"]
    if not status.get("eligible"):
        return call
    cli("star", "check", call.id, write_csv(
        tmp_path / f"{call.id}-checked.csv",
        star_rows(call, {s: quality[s] for s in eligible}, "checked_score")),
        now=_at(cal.declaration_closes, days=5))
    cli("advance", call.id, "start_review", now=_at(cal.declaration_closes, days=6))
    rows = [{"expert_id": x, **r} for x in experts
            for r in star_rows(call, {s: quality[s] for s in eligible}, "score")]
    cli("star", "review", call.id, write_csv(tmp_path / f"{call.id}-experts.csv", rows),
        now=_at(cal.review_due, days=-3))
    if not finish:
        return call
    cli("advance", call.id, "close_review", now=_at(cal.review_due, minutes=1))
    if states_of(cli, call.id).get("rated"):
        cli("advance", call.id, "open_notice", now=_at(cal.review_due, days=1))
    cli("advance", call.id, "close_notice", now=_at(cal.review_due, days=10))
    return call
