"""Templates: checked for syntax and placeholders, previewed against real data, overridable."""
from __future__ import annotations

import json
from email import message_from_bytes, policy
from pathlib import Path

from worlds import advance, run_due


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_the_built_in_templates_pass_the_check(cli):
    r = cli("templates", "check", "--json")
    data = json.loads(r.output)
    assert data["ok"] and data["checked"] >= 36
    assert [p for p in data["problems"] if p["severity"] == "error"] == []


def test_check_names_file_line_and_problem(cli, tmp_path):
    folder = tmp_path / "tpl"
    write(folder, "zh/awarded.txt", "{% block subject %}立项{% endblock %}\n"
                                    "{% block body %}\n{{ application.title }\n{% endblock %}")
    write(folder, "en/awarded.txt", "{% block subject %}Award{% endblock %}\n{% block body %}\n"
                                    "{{ society.name }} gets {{ application.grant }}\n"
                                    "{{ signature }}\n{% endblock %}")
    write(folder, "en/withdrawn.txt", "{% block body %}gone{% endblock %}")
    write(folder, "zh/remind_review.txt",
          "{% block subject %}{{ missing }}{% endblock %}{% block body %}"
          "{% for a in applications %}{{ a.title }} {{ a.deadline }}{% endfor %}{% endblock %}")
    r = cli("templates", "check", "--templates", folder, ok=False)
    assert r.exit_code == 1
    out = r.output
    assert f"{folder / 'zh/awarded.txt'}:3: syntax error" in out
    assert f"{folder / 'en/awarded.txt'}:3: unknown placeholder 'application.grant'" in out
    assert f"{folder / 'en/awarded.txt'}:4: unknown placeholder 'signature'" in out
    assert f"{folder / 'en/withdrawn.txt'}: no {{% block subject %}}" in out
    assert "unknown placeholder 'a.deadline'" in out
    assert "a.title" not in out


def test_an_unused_template_is_a_warning_and_a_missing_one_an_error(cli, tmp_path):
    folder = tmp_path / "tpl"
    write(folder, "zh/welcome.txt", "{% block subject %}hi{% endblock %}{% block body %}x"
                                    "{% endblock %}")
    r = cli("templates", "check", "--templates", folder)
    assert "warning" in r.output and "'welcome'" in r.output and "0 error(s)" in r.output
    r = cli("templates", "check", "--templates", tmp_path / "nope", ok=False)
    assert r.exit_code == 1 and "template folder does not exist" in r.output


def test_preview_renders_real_data_in_the_recipients_language(small_call):
    cli = small_call
    r = cli("templates", "preview", "declaration_received", "--application", "A0003")
    assert "To: s1@example.org" in r.output and "Subject: 申报已受理：项目 3" in r.output
    assert "20,000" in r.output                                   # the real requested amount
    r = cli("templates", "preview", "remind_declaration", "--application", "A0003",
            "--language", "en", "--html", now="2025-04-04T17:00")
    assert "Subject: Reminder: \"项目 3\" is not submitted yet (closes 2025-04-07 17:00)" in r.output
    assert "3 day(s) left" in r.output and "<strong>" in r.output
    r = cli("templates", "preview", "review_assigned", "--application", "A0003", ok=False)
    assert r.exit_code == 1 and "no expert is assigned to A0003" in r.output
    r = cli("templates", "preview", "nonsense", "--application", "A0003", ok=False)
    assert "no message kind 'nonsense'" in r.output


def test_an_override_changes_what_is_delivered(small_call, tmp_path):
    cli = small_call
    folder = tmp_path / "tpl"
    write(folder, "zh/declaration_received.txt",
          "{% block subject %}【科协】收到申报 {{ application.id }}{% endblock %}"
          "{% block body %}{{ society.name }}，已收到。{% endblock %}"
          "{% block html %}<p>{{ society.name|e }}</p>{% endblock %}")
    assert "0 error(s)" in cli("templates", "check", "--templates", folder).output
    advance(cli, "submit", "2025-03-20", "--only", "A0001")
    out = tmp_path / "mail"
    cli("notify", "send", "--outbox", out, "--templates", folder, now="2025-03-20T10:00")
    (eml,) = out.glob("*.eml")
    mail = message_from_bytes(eml.read_bytes(), policy=policy.default)
    assert mail["Subject"] == "【科协】收到申报 A0001"
    assert mail.get_body(("plain",)).get_content().strip() == "市测试1学会，已收到。"
    assert mail.get_body(("html",)).get_content().strip() == "<p>市测试1学会</p>"


def test_reminder_mail_lists_what_is_left_to_do(small_call, tmp_path):
    cli = small_call
    run_due(cli, "2025-04-06T18:00")                                # all 20 are still drafts
    out = tmp_path / "mail"
    cli("notify", "send", "--outbox", out, now="2025-04-06T18:00")
    mails = sorted(out.glob("remind_declaration_*.eml"))
    assert len(mails) == 20
    mail = message_from_bytes(mails[0].read_bytes(), policy=policy.default)
    assert mail["Subject"] == "申报提醒：“项目 1”尚未提交（2025-04-07 17:00 截止）"
    assert "还剩 23 小时" in mail.get_body(("plain",)).get_content()
