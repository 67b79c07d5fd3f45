"""SMTP faults against a real aiosmtpd server on loopback: temporary refusals and a hung server.

- A 4xx answer is retried with backoff wherever it comes (greeting, MAIL, RCPT,
  DATA) and the message is delivered once when the server takes it; a 5xx is
  permanent. Each outbox row has one recipient, so every answer is about one
  recipient and one message.
- A server that stops answering costs one timeout per round: the message in
  hand is retried (or left in doubt when its text had been written), the rest
  of the round is deferred untouched.
"""
from __future__ import annotations

import json

import pytest
from smtp_server import Inbox, free_port, serve, smtp_args
from worlds import Cli, audit_rows, fingerprint, listing, submitted_world

from notifications.channels import message_id


@pytest.fixture
def ten(new_db) -> Cli:
    """The example call with 10 applications submitted: 10 messages queued."""
    return Cli(new_db("starfund", world=submitted_world(10)))


@pytest.fixture
def twenty(new_db) -> Cli:
    """The example call with 20 applications submitted: 20 messages queued."""
    return Cli(new_db("starfund", world=submitted_world(20)))


def send(cli, port: int, now: str, *extra: str) -> dict:
    return json.loads(cli("notify", "send", "--json", *smtp_args(port), *extra, now=now).output)


def outcome(report: dict) -> tuple[int, ...]:
    return tuple(report[k] for k in ("sent", "retrying", "failed", "in_doubt", "deferred"))


# --- 8. a temporary refusal is retried wherever it comes --------------------------------

@pytest.mark.parametrize("phase", ["connect refused", "greeting", "MAIL", "RCPT", "DATA"])
def test_a_temporary_refusal_is_retried_wherever_it_comes_and_delivered_once(ten, phase):
    cli = ten
    handler, port = Inbox(), free_port()
    server = None if phase == "connect refused" else serve(handler, port)
    handler.temp = phase
    try:
        first = send(cli, port, "2025-03-20T10:00")
        rows = listing(cli)
        assert handler.messages == [] and {n["status"] for n in rows} == {"pending"}
        if phase in ("connect refused", "greeting"):  # the server failed: the round ends
            assert outcome(first) == (0, 1, 0, 0, 9)
            assert sorted(n["attempts"] for n in rows) == [0] * 9 + [1]
        else:                                         # this message was refused: next one
            assert outcome(first) == (0, 10, 0, 0, 0)
            assert {n["attempts"] for n in rows} == {1}
            assert {n["last_error"][:9] for n in rows} == {
                {"MAIL": "SMTP 451 ", "RCPT": "SMTP refu", "DATA": "SMTP 451 "}[phase]}
        handler.temp = None                           # the server takes mail again
        server = server or serve(handler, port)
        assert outcome(send(cli, port, "2025-03-20T10:01")) == (10, 0, 0, 0, 0)
        assert send(cli, port, "2025-03-20T11:00")["sent"] == 0
    finally:
        if server:
            server.stop()
    assert len(handler.ids()) == len(set(handler.ids())) == 10        # each exactly once
    assert {n["status"] for n in listing(cli)} == {"sent"}
    assert len(audit_rows(cli.db, action="notification_sent")) == 10
    assert audit_rows(cli.db, action="notification_failed") == []


def test_mixed_answers_are_judged_per_recipient(twenty):
    """s1 greylisted (450), s3 unknown (550), s2 and s4 accepted, all in one round."""
    cli = twenty
    handler, port = Inbox(), free_port()
    handler.temp, handler.greylist, handler.refuse = "greylist", {"s1@example.org"}, \
        {"s3@example.org"}
    server = serve(handler, port)
    try:
        assert outcome(send(cli, port, "2025-03-20T10:00")) == (10, 5, 5, 0, 0)
        by_status = {}
        for n in listing(cli):
            by_status.setdefault(n["status"], set()).add(n["to"])
        assert by_status == {"sent": {"s2@example.org", "s4@example.org"},
                             "pending": {"s1@example.org"}, "failed": {"s3@example.org"}}
        assert all("550" in n["last_error"] for n in listing(cli, "--failed"))
        handler.temp = None                                             # greylisting passed
        assert outcome(send(cli, port, "2025-03-20T10:01")) == (5, 0, 0, 0, 0)
        assert send(cli, port, "2025-03-20T11:00")["sent"] == 0
    finally:
        server.stop()
    assert len(handler.ids()) == len(set(handler.ids())) == 15          # each exactly once
    assert {len(to) for to, _ in handler.messages} == {1}               # one recipient each
    assert {to[0] for to, _ in handler.messages} == {
        "s1@example.org", "s2@example.org", "s4@example.org"}


# --- 9. a hung server costs one timeout, not one per message ----------------------------

@pytest.mark.parametrize("phase", ["greeting", "MAIL", "RCPT", "DATA"])
def test_a_hung_server_costs_one_timeout_per_round(twenty, monkeypatch, phase):
    cli = twenty
    handler, port = Inbox(), free_port()
    server = serve(handler, port)
    handler.hang_at = phase
    if phase == "MAIL":                     # the timeout from the environment, the rest by option
        monkeypatch.setenv("STARFUND_SMTP_TIMEOUT", "0.5")
        timeout = ()
    else:
        timeout = ("--smtp-timeout", "0.5")
    try:
        report = send(cli, port, "2025-03-20T10:00", *timeout)
        assert len(handler.hung) == 1                      # the server was waited on once
        tried = [n for n in listing(cli) if n["attempts"]]
        untouched = [n for n in listing(cli) if not n["attempts"]]
        assert len(tried) == 1 and len(untouched) == 19
        assert {(n["status"], n["last_error"], n["next_attempt_at"]) for n in untouched} == {
            ("pending", "", "2025-03-20 00:00:00")}
        assert "stopped answering (0.5 s timeout)" in tried[0]["last_error"]
        doubt = listing(cli, "--in-doubt", now="2025-03-20T10:00")
        if phase == "DATA":                 # its text was written: the server may have it
            assert outcome(report) == (0, 0, 0, 1, 19)
            assert [n["id"] for n in doubt] == [tried[0]["id"]]
            assert tried[0]["status"] == "sending" and "in doubt" in tried[0]["last_error"]
            assert handler.hung == [message_id(tried[0]["dedupe_key"])]
        else:                               # nothing was sent: retried with backoff
            assert outcome(report) == (0, 1, 0, 0, 19)
            assert doubt == [] and tried[0]["status"] == "pending"

        monkeypatch.delenv("STARFUND_SMTP_TIMEOUT", raising=False)
        handler.hang_at = None                             # the server recovers
        handler.release.set()
        report = send(cli, port, "2025-03-20T10:01")
        if phase == "DATA":                 # never re-sent by itself: an administrator decides
            assert outcome(report) == (19, 0, 0, 0, 0)
            assert [n["id"] for n in listing(cli, "--in-doubt", now="2025-03-20T10:01")] == [
                tried[0]["id"]]
            cli("notify", "retry", "--in-doubt", now="2025-03-20T10:30")
            assert outcome(send(cli, port, "2025-03-20T10:30")) == (1, 0, 0, 0, 0)
        else:
            assert outcome(report) == (20, 0, 0, 0, 0)
        assert send(cli, port, "2025-03-20T11:00")["sent"] == 0
    finally:
        handler.release.set()
        server.stop()
    ids = handler.ids()
    assert len(ids) == len(set(ids)) == 20                 # each delivered exactly once
    assert message_id(tried[0]["dedupe_key"]) in ids       # the same Message-ID as before
    assert {n["status"] for n in listing(cli)} == {"sent"}


def test_the_summary_line_shows_in_doubt_and_deferred(twenty):
    """Issue 29, case 7: `notify send`'s own line, not only --json, says what is in doubt and
    what was deferred (a server that hangs after taking the first message's text)."""
    cli = twenty
    handler, port = Inbox(), free_port()
    server = serve(handler, port)
    handler.hang_at = "DATA"
    try:
        r = cli("notify", "send", *smtp_args(port), "--smtp-timeout", "0.5",
                now="2025-03-20T10:00")
        assert "0 sent, 0 to retry, 0 failed, 1 in doubt, 19 deferred" in r.output, r.output
        assert "notify list --in-doubt" in r.output
    finally:
        handler.release.set()
        server.stop()


def test_a_connection_lost_after_the_text_leaves_the_message_in_doubt_not_resent(twenty):
    """The server took the first message but the connection broke before its answer."""
    cli = twenty
    handler, port = Inbox(), free_port()
    handler.drop = 1
    server = serve(handler, port)
    try:
        assert outcome(send(cli, port, "2025-03-20T10:00")) == (19, 0, 0, 1, 0)  # round goes on
        doubt = listing(cli, "--in-doubt", now="2025-03-20T10:00")
        assert len(doubt) == 1 and "in doubt" in doubt[0]["last_error"]
        for now in ("2025-03-20T10:01", "2025-03-20T12:00"):       # not re-sent by itself
            assert send(cli, port, now)["sent"] == 0
        assert len(listing(cli, "--in-doubt", now="2025-03-20T12:00")) == 1
    finally:
        server.stop()
    ids = handler.ids()
    assert len(ids) == len(set(ids)) == 20 and message_id(doubt[0]["dedupe_key"]) in ids


def test_a_bad_timeout_is_refused_and_changes_nothing(ten):
    cli = ten
    before = fingerprint(cli.db)
    for bad in ("0", "-1", "soon"):
        r = cli("notify", "send", *smtp_args(free_port()), "--smtp-timeout", bad, ok=False)
        assert r.exit_code == 2 and "Invalid value for '--smtp-timeout'" in r.output
    assert fingerprint(cli.db) == before
