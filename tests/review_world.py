"""A small programme brought to review through the CLI, for the review, ranking and notice tests."""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from conftest import EXAMPLE_CALL, societies, write_csv

CALL = "2025-project"
CRITERIA = {"content": 30, "method": 25, "team": 15, "outputs": 20, "budget": 10}


def _toml(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return json.dumps(v, ensure_ascii=False)
    if isinstance(v, list):
        return "[" + ", ".join(_toml(x) if not hasattr(x, "isoformat") else x.isoformat()
                               for x in v) + "]"
    return str(v)


def call_file(tmp_path: Path, name: str = "call.toml", **sections: dict[str, Any]) -> Path:
    """examples/call.toml with keys of `[section]` tables replaced or added (top level: "top")."""
    text = EXAMPLE_CALL.read_text(encoding="utf-8")
    for section, values in sections.items():
        for key, value in values.items():
            line = f"{key} = {_toml(value)}"
            if section == "top":
                pattern = rf"(?m)^{key} = .*$"
                text = re.sub(pattern, line, text, count=1) if re.search(pattern, text) \
                    else line + "\n" + text
                continue
            start = re.search(rf"(?m)^\[{section}\].*\n", text).end()
            end = text.find("\n[", start)
            end = len(text) if end < 0 else end
            body = text[start:end]
            pattern = rf"(?m)^{key} = .*$"
            body = re.sub(pattern, line, body, count=1) if re.search(pattern, body) \
                else line + "\n" + body
            text = text[:start] + body + text[end:]
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def expert_rows(n: int, **extra: dict[str, dict[str, str]]) -> list[dict[str, Any]]:
    rows = [{"id": f"E{i:03d}", "name": f"专家{i}", "email": f"e{i}@example.org",
             "institution": f"Uni{i % 5}", "disciplines": "", "societies": "",
             "conflict_societies": "", "conflict_institutions": ""} for i in range(1, n + 1)]
    for r in rows:
        r.update(extra.get(r["id"], {}))
    return rows


def app_rows(n: int, categories: tuple[str, ...] = ("academic",), amount: int = 20000,
             **extra: dict[str, Any]) -> list[dict[str, Any]]:
    rows = [{"id": f"A{i:04d}", "society_id": f"S{i:03d}", "category": categories[(i - 1) %
                                                                                 len(categories)],
             "title": f"项目 {i}", "discipline": "", "requested_amount": amount,
             "summary": "摘要", "excluded_experts": ""} for i in range(1, n + 1)]
    for r in rows:
        r.update(extra.get(r["id"], {}))
    return rows


def world(cli, tmp_path: Path, experts: list[dict], apps: list[dict],
          call: Path | None = None, n_societies: int | None = None) -> None:
    """Call, societies, experts and applications, declared and through the formal check."""
    cli("call", "create", call or EXAMPLE_CALL, now="2025-02-01")
    cli("society", "import", write_csv(tmp_path / "soc.csv",
                                       societies(n_societies or len(apps))), now="2025-02-01")
    cli("expert", "import", write_csv(tmp_path / "exp.csv", experts), now="2025-02-01")
    cli("application", "import", CALL, write_csv(tmp_path / "apps.csv", apps), now="2025-03-10")
    cli("advance", CALL, "submit", now="2025-03-20")
    cli("advance", CALL, "close_declaration", now="2025-04-08")


def assignments(cli) -> dict[str, list[str]]:
    """Live assignments per application, read through the public engine API."""
    from sqlalchemy import select

    from lifecycle.core.db import make_engine
    from lifecycle.core.models import Assignment

    e = make_engine(cli.db)
    try:
        with e.connect() as conn:
            rows = conn.execute(select(Assignment.application_id, Assignment.expert_id)
                                .where(Assignment.status.in_(("assigned", "submitted")))
                                .order_by(Assignment.application_id,
                                          Assignment.expert_id)).all()
    finally:
        e.dispose()
    out: dict[str, list[str]] = {}
    for a, x in rows:
        out.setdefault(a, []).append(x)
    return out


def sheet_row(expert: str, app: str, total: float) -> dict[str, Any]:
    """A wide sheet row whose weighted total is `total` (criteria max = weight)."""
    return {"expert_id": expert, "application_id": app,
            **{c: round(m * total / 100, 4) for c, m in CRITERIA.items()}}


def score(cli, tmp_path: Path, totals: dict[tuple[str, str], float], name: str = "sheet.csv",
          now: str = "2025-04-20", ok: bool = True):
    path = write_csv(tmp_path / name, [sheet_row(e, a, t) for (e, a), t in totals.items()])
    return cli("review", "import", CALL, path, now=now, ok=ok)


def json_of(result) -> Any:
    return json.loads(result.output)
