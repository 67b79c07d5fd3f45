"""The 国密 option (issue 24): `starfund init --crypto sm` keys the trail with HMAC-SM3 and signs
its anchors with SM2.

Such a trail verifies with its anchors; an edited row is caught and named, and a consistent
rewrite by whoever stole the chain key is caught by the SM2 anchor. The choice is written in
the chain key file, the meta row and the `database_init` event: a chain or anchor key of the
other crypto is refused on either kind of database, a relabelled meta row is found, a bad
--crypto changes nothing, and a database keeps the crypto it was made with. OpenSSL checks
the SM2 signatures independently of the code that makes them.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import inspect, select, update
from system import need
from test_tamper import (
    EVENTS,
    build_trail,
    hmac_with,
    keyed_text,
    problems,
    rechain,
    restore,
    seq_of,
    snapshot,
    tamper,
    verify,
)
from worlds import AUDITOR, Cli, audit_rows, db_rows, fingerprint, shared_world

from lifecycle.core import anchors, keys, meta, sm2
from lifecycle.core.db import make_engine
from lifecycle.core.models import Meta

SIGNED_BY_OPENSSL_ID = "1234567812345678"
"""The default SM2 signer id (GM/T 0009) that starfund's SM2 signatures use."""


@pytest.fixture(scope="module")
def _sm_trail(tmp_path_factory):
    """test_tamper's trail on a database made with --crypto sm, built once for the module."""
    folder = tmp_path_factory.mktemp("sm")
    with shared_world(folder, "--crypto", "sm") as cli:
        build_trail(cli, folder)
        key = chain_key(cli)
        yield cli, fingerprint(cli.db), snapshot(cli.db), key.path, key.path.read_bytes()


@pytest.fixture
def sm(_sm_trail) -> Cli:
    """The module's crypto-sm trail, put back after the test and checked whole."""
    cli, whole, saved, key_path, key_bytes = _sm_trail
    yield cli
    restore(cli.db, saved)
    if key_path.read_bytes() != key_bytes:
        key_path.unlink()
        keys.write_private(key_path, key_bytes)
    assert fingerprint(cli.db) == whole, "a test changed a table restore() does not put back"


def chain_key(cli: Cli) -> keys.ChainKey:
    """The database's chain key, from the folder its commands use (the world's, or the
    test's own)."""
    return keys.load_chain_key(meta_rows(cli.db)[meta.DATABASE_ID], config(cli) / "keys" /
                               f"{meta_rows(cli.db)[meta.DATABASE_ID]}{keys.CHAIN}")


def config(cli: Cli) -> Path:
    return cli.config or Path(os.environ["STARFUND_CONFIG_DIR"])


def anchor(cli: Cli, folder: Path) -> dict[str, Any]:
    r = cli("audit", "anchor", "--dir", folder, "--no-mail", "--json", actor=AUDITOR)
    return json.loads(r.output)


def meta_rows(db: str) -> dict[str, str]:
    return dict(db_rows(db, select(Meta.key, Meta.value)))


def anchor_key_file(cli: Cli) -> Path:
    return config(cli) / "keys" / f"{chain_key(cli).database}{keys.ANCHOR}"


def public_key(cli: Cli) -> str:
    return cli("audit", "public-key", actor=AUDITOR).output.strip()


def signed_text(body: dict[str, Any]) -> bytes:
    """What an SM2 anchor's signature covers, spelled out here (not taken from starfund)."""
    fields = ("format", "database", "seq", "hash", "written_at", "chain_key", "mode", "alg")
    return json.dumps({k: body[k] for k in fields}, sort_keys=True, ensure_ascii=False,
                      separators=(",", ":")).encode()


def flip_crypto(path: Path, crypto: str | None) -> None:
    """Rewrite a chain key file with its crypto field changed (None: dropped, as in a file
    written before the choice)."""
    body = json.loads(path.read_bytes())
    body.pop("crypto", None)
    if crypto:
        body["crypto"] = crypto
    path.unlink()
    keys.write_private(path, json.dumps(body).encode())


# --- the trail ------------------------------------------------------------------------------

def test_an_sm_trail_is_keyed_with_sm3_and_its_sm2_anchors_hold(sm, tmp_path):
    key = chain_key(sm)
    assert json.loads(key.path.read_bytes())["crypto"] == "sm" and key.crypto == "sm"
    assert meta_rows(sm.db)[meta.CRYPTO] == "sm"
    (init,) = audit_rows(sm.db, action="database_init")
    assert json.loads(init.payload)["crypto"] == "sm"
    for path in (key.path, anchor_key_file(sm)):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
    rows = audit_rows(sm.db)
    for r in rows:  # every event's hash is the HMAC-SM3 of its text, none the HMAC-SHA256
        text = keyed_text(r, r.prev_hash).encode()
        assert r.hash == hmac.digest(key.secret, text, "sm3").hex(), r.seq
        assert r.hash != hmac.digest(key.secret, text, "sha256").hex()

    body = anchor(sm, tmp_path / "anchors")
    assert body["format"] == "starfund-anchor/2" and body["alg"] == "sm2"
    public = public_key(sm)
    raw = base64.b64decode(public)
    assert len(raw) == 65 and raw[0] == 4 and body["public_key"] == public
    for extra in ((), ("--public-key", public)):
        code, out, report = verify(sm, "--anchors", tmp_path / "anchors", *extra)
        assert code == 0 and report["ok"] and report["keyed"], out
        assert report["crypto"] == "sm" and "crypto sm (国密 HMAC-SM3 + SM2)" in out
        assert "anchors: 1 of 1 held" in out
    code, out, report = verify(sm, "--unkeyed", "--anchors", tmp_path / "anchors")
    assert code == 3 and report["crypto"] == "sm" and report["ok"], out


def test_an_edited_row_is_caught_and_named(sm):
    edited = seq_of(sm.db, action="submit", application_id="A0002")
    tamper(sm.db, lambda conn: conn.execute(
        update(EVENTS).where(EVENTS.c.seq == edited).values(payload='{"version":7}')))
    code, out, report = verify(sm)
    assert code == 1
    found = problems(report)
    assert set(found) == {"chain"}, report["problems"]
    assert found["chain"]["count"] == 1 and found["chain"]["first"] == [str(edited)]
    assert f"audit chain BROKEN at event {edited}: contents do not match the event's keyed " \
           "hash" in out


def test_a_rewrite_with_the_stolen_sm3_key_is_caught_by_the_sm2_anchor(sm, tmp_path):
    """Every HMAC-SM3 and the head's MAC recomputed with the real key: the chain holds, the
    anchored hash is gone."""
    folder = tmp_path / "anchors"
    seq = anchor(sm, folder)["seq"]
    secret = chain_key(sm).secret
    edited = seq_of(sm.db, action="submit", application_id="A0001")

    def rewrite(conn):
        conn.execute(update(EVENTS).where(EVENTS.c.seq == edited).values(actor="someone-else"))
        rechain(conn, hmac_with(secret, "sm3"), secret, start=edited, hash_name="sm3")

    tamper(sm.db, rewrite)
    code, out, report = verify(sm, "--anchors", folder)
    assert code == 1 and report["problems"] == [], out
    (finding,) = report["anchors"]
    assert f"event {seq} no longer has the anchored hash" in finding["problem"]


def test_sm2_anchors_hold_under_their_own_public_key_only(sm, tmp_path):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    folder = tmp_path / "anchors"
    seq = anchor(sm, folder)["seq"]
    public = public_key(sm)
    (path,) = folder.glob("anchor-*.json")
    good = json.loads(path.read_text())

    def finding(body: dict[str, Any], *extra: str) -> str:
        path.write_text(json.dumps(body))
        code, out, report = verify(sm, "--anchors", folder, *extra)
        assert code == 1 and report["problems"] == [] and "anchors: 0 of 1 held" in out, out
        return report["anchors"][0]["problem"]

    edited = {**good, "seq": seq - 1, "hash": audit_rows(sm.db, seq=seq - 1)[0].hash}
    assert "the signature does not hold" in finding(edited)
    thief = sm2.generate()
    resigned = {**edited, "public_key": base64.b64encode(thief.public_key().raw).decode()}
    resigned["signature"] = base64.b64encode(thief.sign(signed_text(resigned))).decode()
    assert "the signature does not hold" in finding(resigned, "--public-key", public)
    other = Ed25519PrivateKey.generate()
    downgraded = {k: v for k, v in edited.items() if k != "alg"} | {"format": anchors.FORMAT}
    downgraded["signature"] = base64.b64encode(other.sign(json.dumps(
        {k: downgraded[k] for k in anchors.SIGNED}, sort_keys=True, ensure_ascii=False,
        separators=(",", ":")).encode())).decode()
    assert "signed with 'ed25519', not with the SM2 key to trust" in finding(downgraded)

    path.write_text(json.dumps(good))
    ed25519 = base64.b64encode(other.public_key().public_bytes_raw()).decode()
    r = sm("audit", "verify", "--anchors", folder, "--public-key", ed25519, ok=False,
           actor=AUDITOR)
    assert r.exit_code == 1 and "held" not in r.output, r.output
    assert "the anchor public key to trust is Ed25519, but this database is crypto sm: its " \
           "anchors are signed with SM2" in r.output


def test_openssl_verifies_the_sm2_anchors(sm, tmp_path, monkeypatch):
    """An anchor starfund signed checks under `openssl pkeyutl` (SM2 with SM3 and the
    default id), and an SM2 key OpenSSL made signs anchors that starfund verifies."""
    need("openssl")
    body = anchor(sm, tmp_path / "anchors")
    raw = base64.b64decode(public_key(sm))
    spki = bytes.fromhex("3059301306072a8648ce3d020106082a811ccf5501822d034200") + raw
    (tmp_path / "public.pem").write_text(
        "-----BEGIN PUBLIC KEY-----\n" + base64.encodebytes(spki).decode()
        + "-----END PUBLIC KEY-----\n")
    (tmp_path / "message").write_bytes(signed_text(body))
    signature = base64.b64decode(body["signature"])
    (tmp_path / "signature").write_bytes(_der_signature(signature))
    ran = _openssl(tmp_path, "pkeyutl", "-verify", "-pubin", "-inkey", "public.pem", "-rawin",
                   "-in", "message", "-sigfile", "signature", "-digest", "sm3",
                   "-pkeyopt", f"distid:{SIGNED_BY_OPENSSL_ID}")
    assert ran.returncode == 0 and "Signature Verified Successfully" in ran.stdout, ran
    (tmp_path / "message").write_bytes(signed_text({**body, "seq": body["seq"] + 1}))
    ran = _openssl(tmp_path, "pkeyutl", "-verify", "-pubin", "-inkey", "public.pem", "-rawin",
                   "-in", "message", "-sigfile", "signature", "-digest", "sm3",
                   "-pkeyopt", f"distid:{SIGNED_BY_OPENSSL_ID}")
    assert ran.returncode != 0, "OpenSSL accepted a signature over other fields"

    ran = _openssl(tmp_path, "genpkey", "-algorithm", "SM2", "-out", "openssl.pem")
    assert ran.returncode == 0, ran
    (tmp_path / "openssl.pem").chmod(0o600)
    monkeypatch.setenv("STARFUND_ANCHOR_KEY", str(tmp_path / "openssl.pem"))
    theirs = public_key(sm)
    assert theirs != base64.b64encode(raw).decode()
    anchor(sm, tmp_path / "theirs")
    code, out, report = verify(sm, "--anchors", tmp_path / "theirs", "--public-key", theirs)
    assert code == 0 and "anchors: 1 of 1 held" in out, out


def _openssl(folder: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["openssl", *args], cwd=folder, capture_output=True, text=True)


def _der_signature(signature: bytes) -> bytes:
    """r || s as the DER SEQUENCE of two INTEGERs OpenSSL reads."""
    def integer(value: bytes) -> bytes:
        n = int.from_bytes(value, "big")
        body = n.to_bytes(n.bit_length() // 8 + 1, "big")
        return b"\x02" + bytes([len(body)]) + body
    inner = integer(signature[:32]) + integer(signature[32:])
    return b"\x30" + bytes([len(inner)]) + inner


# --- the choice is kept: keys of the other crypto, a relabelled database -------------------

@pytest.fixture(params=["sm", "standard"])
def either(request, tmp_path) -> tuple[Cli, str]:
    """A crypto-sm trail or a standard one (as `worlds.founded` leaves it), and its crypto."""
    if request.param == "sm":
        return request.getfixturevalue("sm"), "sm"
    return request.getfixturevalue("cli"), "standard"


def test_a_chain_key_of_the_other_crypto_is_refused(either):
    """The key file made to say the other crypto (an SM key against a standard trail, or an SM
    key file stripped of its field, which reads as standard): no act writes with it, and
    verify names the mismatch and still checks every event (with the key file's hash)."""
    cli, crypto = either
    other = "standard" if crypto == "sm" else "sm"
    key = chain_key(cli)
    flip_crypto(key.path, None if other == "standard" else other)
    before = fingerprint(cli.db)
    r = cli("user", "add", "clerk-9", "--role", "officer", ok=False)
    assert r.exit_code == 1 and "Traceback" not in r.output, r.output
    assert f"is a crypto {other} key" in r.output and f"this database is crypto {crypto}" \
        in r.output and "nothing was written" in r.output
    assert fingerprint(cli.db) == before
    code, out, report = verify(cli)
    assert code == 1 and report["keyed"], out
    found = problems(report)
    assert {"crypto", "chain", "head"} <= set(found), report["problems"]
    assert report["problems"][0]["check"] == "crypto"
    assert f"says crypto {other}" in out and f"records crypto {crypto}" in out
    assert found["chain"]["count"] == report["checked"]


def test_an_anchor_key_of_the_other_crypto_is_refused(either, tmp_path, monkeypatch):
    cli, crypto = either
    other = "standard" if crypto == "sm" else "sm"
    wrong = keys.create_anchor_key(chain_key(cli).database, tmp_path / "other.pem", other)
    monkeypatch.setenv("STARFUND_ANCHOR_KEY", str(wrong))
    before = fingerprint(cli.db)
    r = cli("audit", "anchor", "--dir", tmp_path / "anchors", "--no-mail", ok=False,
            actor=AUDITOR)
    names = {"sm": "SM2", "standard": "Ed25519"}
    assert r.exit_code == 1 and "Traceback" not in r.output, r.output
    assert f"this database is crypto {crypto}: its anchors are signed with {names[crypto]}" \
        in r.output and f"the anchor key is {names[other]}" in r.output
    assert fingerprint(cli.db) == before
    assert not list((tmp_path / "anchors").glob("anchor-*.json"))


def test_a_relabelled_crypto_row_is_found(sm):
    tamper(sm.db, lambda conn: conn.execute(
        update(Meta).where(Meta.key == meta.CRYPTO).values(value="standard")))
    code, out, report = verify(sm)
    assert code == 1
    assert set(problems(report)) == {"mode"}, report["problems"]
    assert "crypto is 'standard' but event 1 recorded 'sm'" in out
    r = sm("user", "add", "clerk-9", "--role", "officer", ok=False)
    assert r.exit_code == 1 and "this database is crypto standard" in r.output, r.output


def test_a_database_keeps_its_crypto(either):
    cli, crypto = either
    other = "standard" if crypto == "sm" else "sm"
    before, key_bytes = fingerprint(cli.db), chain_key(cli).path.read_bytes()
    folder = chain_key(cli).path.parent
    files = sorted(folder.iterdir())
    r = cli("init", "--crypto", other, ok=False)
    assert r.exit_code == 1 and f"this database's trail is crypto {crypto}" in r.output
    assert "chosen once" in r.output
    assert fingerprint(cli.db) == before and sorted(folder.iterdir()) == files
    cli("init")
    cli("init", "--crypto", crypto)
    assert chain_key(cli).path.read_bytes() == key_bytes and chain_key(cli).crypto == crypto
    code, out, report = verify(cli)
    assert code == 0 and report["crypto"] == crypto, out


def test_a_default_database_is_standard_and_writes_the_first_anchor_format(cli, tmp_path):
    key = chain_key(cli)
    assert json.loads(key.path.read_bytes())["crypto"] == "standard"
    assert meta_rows(cli.db)[meta.CRYPTO] == "standard"
    (init,) = audit_rows(cli.db, action="database_init")
    assert json.loads(init.payload)["crypto"] == "standard"
    r = audit_rows(cli.db)[-1]
    assert r.hash == hmac.digest(key.secret, keyed_text(r, r.prev_hash).encode(),
                                 "sha256").hex()
    body = anchor(cli, tmp_path / "anchors")
    assert body["format"] == "starfund-anchor/1" and "alg" not in body
    assert len(base64.b64decode(body["public_key"])) == 32
    code, out, report = verify(cli, "--anchors", tmp_path / "anchors")
    assert code == 0 and report["crypto"] == "standard", out


def test_a_bad_crypto_is_refused_and_nothing_is_made(db_url, tmp_path):
    r = Cli(db_url)("init", "--crypto", "rsa", ok=False)
    assert r.exit_code == 2 and "Invalid value for '--crypto': 'rsa' is not one of " \
        "'standard', 'sm'" in r.output, r.output
    if db_url.startswith("postgresql"):
        e = make_engine(db_url)
        try:
            assert inspect(e).get_table_names() == []
        finally:
            e.dispose()
    else:
        assert not Path(db_url).exists()
    assert not (tmp_path / "config" / "keys").exists()


def test_the_sm3_the_trail_uses_is_the_standard_one():
    """GB/T 32905's own example: SM3("abc") (the hash hmac takes from OpenSSL)."""
    assert hashlib.new("sm3", b"abc").hexdigest() == \
        "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0"
