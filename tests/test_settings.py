"""One settings model (lifecycle/core/settings.py): `starfund config show`, its sources and
masked secrets, bad environment values named by the commands that use them, and the
generated table of settings."""
from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from cli import main
from lifecycle.core import clock, settings

ROOT = Path(__file__).resolve().parent.parent
CLEAN = {settings.env_name(n): None for m in settings.MODELS for n in m.model_fields}


def run(*args, env: dict | None = None):
    result = CliRunner().invoke(main, [str(a) for a in args], env={**CLEAN, **(env or {})})
    clock.set_now(None)
    return result


def shown(result) -> dict[str, dict]:
    return {r["setting"]: r for r in json.loads(result.output)}


def test_config_show_gives_every_setting_its_value_and_source_with_secrets_masked():
    r = run("--as", "bob", "config", "show", "--smtp-host", "mail.example.org", "--json",
            env={"STARFUND_SMTP_PORT": "2525", "STARFUND_SMTP_PASSWORD": "s3cret-pw",
                 "STARFUND_DB": "postgresql://kexie:db-pw@127.0.0.1/starfund"})
    assert r.exit_code == 0, r.output
    rows = shown(r)
    assert set(rows) == {n for m in settings.MODELS for n in m.model_fields}
    assert (rows["actor"]["value"], rows["actor"]["source"]) == ("bob", "option")
    assert (rows["smtp_host"]["value"], rows["smtp_host"]["source"]) == \
        ("mail.example.org", "option")
    assert (rows["smtp_port"]["value"], rows["smtp_port"]["source"]) == (2525, "environment")
    assert (rows["channel"]["value"], rows["channel"]["source"]) == ("file", "default")
    assert rows["smtp_password"] == {"setting": "smtp_password", "option": None,
                                     "variable": "STARFUND_SMTP_PASSWORD", "value": "********",
                                     "source": "environment"}
    assert rows["db"]["value"] == "postgresql://kexie:***@127.0.0.1/starfund"
    assert "s3cret-pw" not in r.output and "db-pw" not in r.output


def test_a_bad_environment_value_is_shown_and_refused_by_the_command_that_uses_it(tmp_path):
    env = {"STARFUND_SMTP_PORT": "twenty-five"}
    r = run("config", "show", env=env)
    assert r.exit_code == 1 and "not a valid setting" in r.output and "bad" in r.output
    db = tmp_path / "s.db"
    assert run("--db", db, "init", env=env).exit_code == 0  # init does not use it
    r = run("--db", db, "notify", "send", env=env)
    assert r.exit_code == 2
    assert "STARFUND_SMTP_PORT='twenty-five' is not a valid setting" in r.output


def test_the_settings_table_in_the_reference_is_generated_from_the_model():
    written = (ROOT / "docs" / "reference.md").read_text(encoding="utf-8")
    assert settings.table_markdown() in written, (
        "the settings table in docs/reference.md is stale: run "
        "`.venv/bin/python docs/make_reference.py`")
    for model in settings.MODELS:
        for name in model.model_fields:
            assert f"`{settings.env_name(name)}`" in written
