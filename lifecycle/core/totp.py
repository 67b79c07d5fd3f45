"""Two-factor sign-in: a TOTP secret per account (RFC 6238, any authenticator app), and
single-use recovery codes.

The secret is the second factor's whole worth, so it is kept sealed (AES-GCM) under a key
derived from the chain key, which lives outside the database (`lifecycle.core.keys`): a copy
of the database alone yields no code. A code is accepted once (the last time step used is
kept) within one step either side of now. Recovery codes are kept as SHA-256 only, each
struck off when used.
"""
from __future__ import annotations

import hashlib
import hmac
import io
import os
import secrets
from typing import Any

from sqlalchemy import Connection, select, update

from lifecycle.core import clock, keys
from lifecycle.core.errors import BadValue
from lifecycle.core.models import Account

ISSUER = "starfund"
RECOVERY_CODES = 10
LIVE_DEFAULT = ("approver", "finance", "auditor", "officer")
"""The roles a live database asks a second factor of unless STARFUND_TWO_FACTOR_ROLES says."""


def required(roles: frozenset[str] | set[str], live: bool, setting: str | None) -> bool:
    """Whether an account with `roles` must sign in with a second factor."""
    wanted = set(setting.split()) if setting is not None else \
        (set(LIVE_DEFAULT) if live else set())
    return bool(wanted & set(roles))


def _aead(chain: keys.ChainKey) -> Any:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    return AESGCM(hmac.digest(chain.secret, b"starfund totp/1", "sha256"))


def _seal(chain: keys.ChainKey, name: str, secret: str) -> bytes:
    nonce = os.urandom(12)
    return nonce + _aead(chain).encrypt(nonce, secret.encode(), name.encode())


def _open(chain: keys.ChainKey, name: str, sealed: bytes) -> str:
    return _aead(chain).decrypt(sealed[:12], sealed[12:], name.encode()).decode()


def new_secret() -> str:
    import pyotp

    return pyotp.random_base32()


def uri(name: str, secret: str) -> str:
    """The otpauth:// address an authenticator app reads (from the QR code)."""
    import pyotp

    return pyotp.TOTP(secret).provisioning_uri(name=name, issuer_name=ISSUER)


def qr_svg(text: str) -> str:
    """`text` as an inline SVG QR code (no image library needed)."""
    import qrcode
    import qrcode.image.svg

    out = io.BytesIO()
    qrcode.make(text, image_factory=qrcode.image.svg.SvgPathImage, box_size=8).save(out)
    svg = out.getvalue().decode()
    return svg[svg.index("<svg"):]


def _step_ok(secret: str, code: str, last: int | None) -> int | None:
    """The time step `code` is valid for (one step either side of now), unless used before."""
    import pyotp

    code = code.strip().replace(" ", "")
    if not code.isdigit() or len(code) != 6:
        return None
    totp, now = pyotp.TOTP(secret), clock.epoch()
    for drift in (0, -1, 1):
        at = now + drift * totp.interval
        step = int(at // totp.interval)
        if hmac.compare_digest(totp.at(at), code) and (last is None or step > last):
            return step
    return None


def enrol(conn: Connection, chain: keys.ChainKey, name: str, secret: str,
          code: str) -> list[str]:
    """Turn on the second factor with `secret` once `code` proves the app has it; returns the
    recovery codes (shown once)."""
    step = _step_ok(secret, code, None)
    if step is None:
        raise BadValue("验证码不对 / the code does not match: check the phone's time and try "
                       "the current code")
    codes = [f"{secrets.randbelow(10**10):010d}" for _ in range(RECOVERY_CODES)]
    conn.execute(update(Account).where(Account.name == name).values(
        totp=_seal(chain, name, secret), totp_step=step,
        recovery_codes=[hashlib.sha256(c.encode()).hexdigest() for c in codes]))
    return codes


def enrolled(conn: Connection, name: str) -> bool:
    return conn.execute(select(Account.totp).where(Account.name == name)).scalar() is not None


def check(conn: Connection, chain: keys.ChainKey, name: str, code: str) -> bool:
    """Whether `code` is the account's current code (each used once) or one of its unused
    recovery codes (struck off)."""
    row = conn.execute(select(Account.totp, Account.totp_step, Account.recovery_codes)
                       .where(Account.name == name)).first()
    if row is None or row.totp is None:
        return False
    step = _step_ok(_open(chain, name, row.totp), code, row.totp_step)
    if step is not None:
        done = conn.execute(update(Account).where(
            Account.name == name, (Account.totp_step.is_(None)) | (Account.totp_step < step))
            .values(totp_step=step)).rowcount
        return bool(done)
    digest = hashlib.sha256(code.strip().encode()).hexdigest()
    left = list(row.recovery_codes or [])
    if digest in left:
        left.remove(digest)
        conn.execute(update(Account).where(Account.name == name).values(recovery_codes=left))
        return True
    return False


def reset(conn: Connection, name: str) -> None:
    """Turn the second factor off (an approver's act for someone who lost their phone)."""
    conn.execute(update(Account).where(Account.name == name).values(
        totp=None, totp_step=None, recovery_codes=None))
