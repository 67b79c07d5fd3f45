"""Delivery through a real SMTP server (aiosmtpd) on loopback, started by the test."""
from __future__ import annotations

import pytest
from smtp_server import Inbox, free_port, login_only, serve, smtp_args
from worlds import Cli, audit_rows, listing, submitted_world


@pytest.fixture
def bilingual_call(new_db):
    """The small call with society S002 writing in English: 10 applications submitted."""
    return Cli(new_db("starfund", world=submitted_world(10, {"S002": "en"})))


def test_messages_arrive_with_subject_recipient_language_and_body(bilingual_call):
    cli = bilingual_call
    inbox, port = Inbox(), free_port()
    server = serve(inbox, port)
    try:
        r = cli("notify", "send", *smtp_args(port), now="2025-03-20T10:00")
    finally:
        server.stop()
    assert "10 sent, 0 to retry, 0 failed" in r.output
    assert len(inbox.messages) == 10
    by_app = {m["X-Starfund-Key"].split(":")[1]: (to, m) for to, m in inbox.messages}
    to, zh = by_app["A0001"]                                     # S001 writes Chinese
    assert to == ["s1@example.org"] and zh["To"] == "s1@example.org"
    assert zh["Subject"] == "申报已受理：项目 1"
    assert "已受理" in zh.get_body(("plain",)).get_content()
    to, en = by_app["A0006"]                                     # S002 writes English
    assert to == ["s2@example.org"] and en["Subject"].startswith("Declaration received")
    assert "A0006" in en.get_body(("plain",)).get_content()
    assert en["Message-ID"] == "<declaration_received.A0006.v2.society@starfund>"
    assert len({m["Message-ID"] for _, m in inbox.messages}) == 10


def test_server_down_then_back_retries_and_delivers_once(bilingual_call):
    cli = bilingual_call
    inbox, port = Inbox(), free_port()
    r = cli("notify", "send", *smtp_args(port), now="2025-03-20T10:00")     # nobody listens
    assert "0 sent, 1 to retry, 0 failed" in r.output        # the round ends at the first try
    first, *rest = listing(cli)
    assert (first["status"], first["attempts"], first["next_attempt_at"]) == (
        "pending", 1, "2025-03-20 10:01:00")
    assert "ConnectionRefusedError" in first["last_error"]
    assert {(n["status"], n["attempts"], n["last_error"]) for n in rest} == {("pending", 0, "")}
    server = serve(inbox, port)
    try:
        r = cli("notify", "send", *smtp_args(port), now="2025-03-20T10:00:30")
        assert "9 sent" in r.output and len(inbox.messages) == 9  # the first is backing off
        r = cli("notify", "send", *smtp_args(port), now="2025-03-20T10:01")
        assert "1 sent" in r.output
        r = cli("notify", "send", *smtp_args(port), now="2025-03-20T11:00")
        assert "0 sent" in r.output
    finally:
        server.stop()
    ids = [m["Message-ID"] for _, m in inbox.messages]
    assert len(ids) == len(set(ids)) == 10
    assert sorted((n["status"], n["attempts"]) for n in listing(cli)) == [
        ("sent", 1)] * 9 + [("sent", 2)]
    assert len(audit_rows(cli.db, action="notification_sent")) == 10


def test_retries_stop_at_the_limit_then_failed_and_listed(bilingual_call):
    cli = bilingual_call
    inbox, port = Inbox(), free_port()
    inbox.temp = "MAIL"                                        # 451 to every MAIL
    server = serve(inbox, port)
    try:
        times = ["2025-03-20T10:00", "2025-03-20T10:01", "2025-03-20T10:03"]
        for now in times:
            r = cli("notify", "send", *smtp_args(port), "--max-attempts", "3", now=now)
            assert "0 sent" in r.output and inbox.messages == []
        assert "0 sent, 0 to retry, 10 failed" in r.output
        failed = listing(cli, "--failed")
        assert len(failed) == 10 and {n["attempts"] for n in failed} == {3}
        assert "451" in failed[0]["last_error"]
        out = cli("notify", "list", "--failed").output
        assert "failed" in out and "totals: 10 failed" in out
        inbox.temp = None
        cli("notify", "retry", now="2025-03-20T12:00")
        r = cli("notify", "send", *smtp_args(port), now="2025-03-20T12:00")
    finally:
        server.stop()
    assert "10 sent" in r.output and len(inbox.messages) == 10


def test_a_rejected_address_fails_at_once(bilingual_call):
    cli = bilingual_call
    inbox, port = Inbox(refuse=("s1@example.org",)), free_port()
    server = serve(inbox, port)
    try:
        r = cli("notify", "send", *smtp_args(port), now="2025-03-20T10:00")
    finally:
        server.stop()
    assert "5 sent, 0 to retry, 5 failed" in r.output
    failed = listing(cli, "--failed")
    assert {n["to"] for n in failed} == {"s1@example.org"} and {n["attempts"] for n in failed} == {1}


def test_login_password_only_from_the_environment(bilingual_call, monkeypatch):
    cli = bilingual_call
    inbox, port = Inbox(), free_port()
    server = serve(inbox, port, authenticator=login_only("kexie", "s3cret"),
                   auth_require_tls=False)
    try:
        monkeypatch.delenv("STARFUND_SMTP_PASSWORD", raising=False)
        r = cli("notify", "send", *smtp_args(port), "--smtp-user", "kexie", ok=False)
        assert r.exit_code == 1 and "STARFUND_SMTP_PASSWORD is not set" in r.output
        assert listing(cli, "--status", "pending") and inbox.messages == []
        monkeypatch.setenv("STARFUND_SMTP_PASSWORD", "s3cret")
        r = cli("notify", "send", *smtp_args(port), "--smtp-user", "kexie", now="2025-03-20T10:05")
    finally:
        server.stop()
    assert "10 sent" in r.output and len(inbox.messages) == 10


def test_starttls_verifies_the_server_and_then_logs_in(bilingual_call, tmp_path, monkeypatch):
    import shutil
    import ssl
    import subprocess

    if not shutil.which("openssl"):
        pytest.skip("the openssl command is needed to make the test server's certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    tls.load_cert_chain(cert, key)

    cli = bilingual_call
    inbox, port = Inbox(), free_port()
    server = serve(inbox, port, tls_context=tls, require_starttls=True,
                   authenticator=login_only("kexie", "s3cret"))
    args = [*smtp_args(port), "--smtp-starttls", "--smtp-user", "kexie"]
    monkeypatch.setenv("STARFUND_SMTP_PASSWORD", "s3cret")
    try:
        monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "nothing.pem"))  # trusts no one
        r = cli("notify", "send", *args, now="2025-03-20T10:00")
        assert "0 sent, 1 to retry" in r.output and inbox.messages == []  # the round ends
        assert "CERTIFICATE_VERIFY_FAILED" in listing(cli)[0]["last_error"]
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))                     # trusts our server
        r = cli("notify", "send", *args, now="2025-03-20T10:05")
    finally:
        server.stop()
    assert "10 sent" in r.output and len(inbox.messages) == 10
