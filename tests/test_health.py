"""The portal's /healthz (JSON, 503 when a part is wrong), /metrics (Prometheus text, only to a
scraper with the token), its access log (route, status, account; never a query string) and
JSON logs."""
from __future__ import annotations

import json
import logging
import os
import shutil
import time
from pathlib import Path

import pytest
from databases import backend
from portal import PORTAL, client, login
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text
from worlds import execute

from lifecycle.core import clock, health, logs
from lifecycle.core.db import make_engine
from web.app import create_app, operations_from

TOKEN = "scrape-me-please"


@pytest.fixture
def portal_db(new_db) -> str:
    return new_db("portal", world=PORTAL)


def _client(db: str, **operations):
    from starlette.testclient import TestClient

    conf = {**operations_from(), **operations}
    return TestClient(create_app(make_engine(db), conf), base_url="http://testserver",
                      follow_redirects=False)


def _beat(db: str) -> None:
    e = make_engine(db)
    health.beat(e, health.heartbeat_name(), passed=True)
    e.dispose()


def test_healthz_is_200_with_every_part_and_503_naming_what_is_wrong(portal_db):
    c = _client(portal_db)
    r = c.get("/healthz")               # no scheduler has ever run: wrong, and said so
    assert r.status_code == 503
    body = r.json()
    assert body["status"] == "wrong" and body["scheduler"]["ok"] is False
    assert "no scheduler is running" in body["scheduler"]["error"]
    _beat(portal_db)
    took = []
    for _ in range(20):
        r = c.get("/healthz")
        took.append(r.json()["took_ms"]["value"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "ok"
    assert {"database", "schema", "chain_key", "scheduler", "messages"} <= set(body)
    assert body["schema"]["revision"] == body["schema"]["needs"]
    assert body["scheduler"]["heartbeat_age_s"] is not None
    assert body["messages"] == {"ok": True, "failed": 0, "held": 0, "oldest_held_hours": 0.0}
    print(f"healthz: median {sorted(took)[len(took) // 2]} ms on {backend()}")
    assert "set-cookie" not in r.headers          # no session made for it

    execute(portal_db, "INSERT INTO notifications (dedupe_key, recipient_kind, recipient_id, "
            "recipient, kind, language, context, status, attempts, last_error, created_at, "
            "next_attempt_at) VALUES ('x', 'society', 'S001', 'a@b', 'awarded', 'zh', '{}', "
            "'failed', 5, '550 no such user', '2025-01-01', '2025-01-01')")
    r = c.get("/healthz")
    assert r.status_code == 503 and r.json()["messages"]["failed"] == 1
    assert "1 message(s) failed" in r.json()["messages"]["error"]
    assert _client(portal_db, limits=health.Limits(failed=1)).get("/healthz").status_code == 200


def test_healthz_says_when_the_scheduler_went_quiet_or_the_chain_key_is_gone(portal_db,
                                                                             monkeypatch):
    _beat(portal_db)
    later = clock.wall()
    with monkeypatch.context() as m:
        m.setattr(clock, "wall", lambda: later.replace(year=later.year + 1))
        r = _client(portal_db).get("/healthz")
    assert r.status_code == 503 and "no heartbeat for" in r.json()["scheduler"]["error"]
    unwatched = _client(portal_db, limits=health.Limits(scheduler_age=0))
    assert unwatched.get("/healthz").status_code == 200
    keys = Path(os.environ["STARFUND_CONFIG_DIR"]) / "keys"
    shutil.move(keys, keys.with_name("keys-away"))
    r = unwatched.get("/healthz")
    assert r.status_code == 503 and r.json()["chain_key"]["ok"] is False
    assert "no audit chain key at" in r.json()["chain_key"]["error"]


def test_healthz_turns_503_when_the_database_goes_away_and_200_when_it_returns(portal_db):
    c = _client(portal_db, limits=health.Limits(scheduler_age=0))
    assert c.get("/healthz").status_code == 200
    if backend() == "sqlite":
        away = Path(portal_db + ".away")
        os.rename(portal_db, away)
        try:
            r = c.get("/healthz")
            assert not Path(portal_db).exists()   # asking made no empty file
        finally:
            os.rename(away, portal_db)
    else:
        name = portal_db.rsplit("/", 1)[1]
        admin = make_engine(portal_db.rsplit("/", 1)[0] + "/postgres").execution_options(
            isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false'))
            conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                              "WHERE datname = :d AND pid <> pg_backend_pid()"), {"d": name})
        try:
            r = c.get("/healthz")
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true'))
            admin.dispose()
    assert r.status_code == 503, r.text
    assert r.json()["database"]["ok"] is False and r.json()["database"]["error"]
    assert c.get("/healthz").status_code == 200      # back: the pool reconnects


def _families(body: str) -> dict[str, list]:
    return {f.name: f.samples for f in text_string_to_metric_families(body)}


def test_metrics_parse_as_prometheus_text_and_need_the_token(portal_db):
    c = _client(portal_db, metrics_token=TOKEN)
    assert c.get("/metrics").status_code == 404                   # no token: not there
    assert c.get("/metrics", headers={"authorization": "Bearer wrong"}).status_code == 404
    c.get("/login")
    c.get("/notice/2025-project")
    _beat(portal_db)
    r = c.get("/metrics", headers={"authorization": f"Bearer {TOKEN}"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    got = _families(r.text)
    requests = {(s.labels["method"], s.labels["route"], s.labels["status"]): s.value
                for s in got["starfund_http_requests"] if s.name.endswith("_total")}
    assert requests[("GET", "/login", "200")] == 1
    assert ("GET", "/notice/{call}", "200") in requests or \
        ("GET", "/notice/{call}", "404") in requests          # the pattern, not the path
    assert any(s.name == "starfund_http_request_duration_seconds_count"
               for s in got["starfund_http_request_duration_seconds"])
    outbox = {s.labels["status"]: s.value for s in got["starfund_outbox_messages"]}
    assert set(outbox) == {"pending", "sending", "held", "failed"}
    standing = {s.labels["standing"] for s in got["starfund_deadlines"]}
    assert standing == {"overdue", "due_1d"}
    assert got["starfund_database_up"][0].value == 1
    assert got["starfund_schema_at_head"][0].value == 1
    beat = got["starfund_scheduler_heartbeat_timestamp_seconds"][0].value
    assert abs(beat - time.time()) < 3600
    assert "starfund_last_advance_timestamp_seconds" in got
    # a separate address: the portal's own /metrics is off
    off = _client(portal_db, metrics_token=TOKEN, metrics_listen="127.0.0.1:9108")
    assert off.get("/metrics", headers={"authorization": f"Bearer {TOKEN}"}).status_code == 404


def test_the_access_log_names_route_status_and_account_never_the_query(portal_db, caplog):
    c = client(portal_db)
    with caplog.at_level(logging.INFO, logger="starfund.access"):
        c.get("/login?next=/staff&token=s3cret")
        login(c, "officer-li")
        c.get("/staff?name=%E5%BC%A0%E4%BC%9F")
    lines = [r for r in caplog.records if r.name == "starfund.access"]
    fields = [r.fields for r in lines]
    assert fields[0]["route"] == "/login" and fields[0]["status"] == 200
    assert fields[0]["account"] is None
    staff = next(f for f in fields if f["path"] == "/staff")
    assert staff["account"] == "officer-li" and staff["method"] == "GET"
    assert isinstance(staff["ms"], float)
    text_ = "\n".join(r.getMessage() + json.dumps(r.fields) for r in lines)
    assert "s3cret" not in text_ and "next=" not in text_ and "%E5" not in text_
    assert "password" not in text_ and "correct horse" not in text_


def test_json_logs_are_one_object_per_line_with_the_fields():
    record = logging.LogRecord("starfund.access", logging.INFO, __file__, 1, "GET %s", ("/x",),
                               None)
    record.fields = {"route": "/x", "status": 200, "account": "li-na"}
    line = logs.formatter("json").format(record)
    assert "\n" not in line
    data = json.loads(line)
    assert data["message"] == "GET /x" and data["route"] == "/x" and data["level"] == "info"
    assert data["time"][:4].isdigit() and data["logger"] == "starfund.access"
    assert logs.formatter("text").format(record).endswith("starfund.access INFO GET /x")
