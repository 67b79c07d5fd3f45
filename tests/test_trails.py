"""Reason codes are data with both languages; deadlines say what is overdue, what is
upcoming, and which reminders fired or were skipped (issue 13)."""
from __future__ import annotations

import string

from worlds import CALL, json_of, run_due

from notifications.reasons import Reason, codes, localise


def test_every_reason_code_says_the_same_in_both_languages():
    fields = {code: [{f for _, f, _, _ in string.Formatter().parse(texts[lang]) if f}
                     for lang in ("en", "zh")] for code, texts in codes().items()}
    assert {c for c, (en, zh) in fields.items() if en != zh} == {"literal"}  # {en} and {zh}
    barred = Reason("barred", reason=Reason("barred_failed", app="A1", call="2024-project",
                                            checkpoint=Reason.literal("final acceptance", "结题验收"),
                                            grade="不合格", calls=2))
    assert str(barred) == ("society barred: project A1 of call 2024-project failed its final "
                           "acceptance assessment (fail; bars the next 2 call(s))")
    assert localise({"why": [barred.data()]}, "zh") == {"why": [
        "学会暂停申报资格：批次 2024-project 的项目 A1 结题验收考核为不合格（此后 2 个批次不得申报）"]}


def test_deadlines_overdue_upcoming_and_skipped_reminders(small_call):
    cli = small_call
    fired = {f["kind"]: f["outcome"] for f in run_due(cli, "2025-04-05T09:00")}
    assert fired == {"declaration_closes:remind:7d": "skipped",
                     "declaration_closes:remind:3d": "fired"}
    out = cli("deadlines", "list", CALL, now="2025-04-08T09:00").output
    assert "now 2025-04-08 09:00, times in Asia/Shanghai (UTC+08:00)" in out
    overdue, rest = out.split("upcoming (", 1)
    assert "overdue: due, not fired (2)" in overdue and "declaration_closes:remind:1d" in overdue
    upcoming, done = rest.split("done (", 1)
    assert upcoming.startswith("0)") and done.startswith("2: 1 skipped)")
    status = json_of(cli("status", CALL, "--json", now="2025-04-08T09:00"))
    standing = {d["kind"]: d["standing"] for d in status["deadlines"]}
    assert standing == {"declaration_closes:remind:7d": "skipped",
                        "declaration_closes:remind:3d": "fired",
                        "declaration_closes:remind:1d": "overdue",
                        "declaration_closes": "overdue"}
    table = cli("status", CALL, now="2025-03-01").output
    assert "skipped 2025-04-05 09:00: superseded" in table and "times Asia/Shanghai" in table
    assert "upcoming" in table
