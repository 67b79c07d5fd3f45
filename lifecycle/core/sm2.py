"""SM2 signatures (GB/T 32918, with SM3 and the default signer id) for the 国密 anchors.

The curve arithmetic is the `gmssl` package's; this module gives it what it leaves to its
caller, so that a signing key is safe to use: keys and per-signature nonces drawn from
`secrets` (gmssl's own helper draws them from `random`, which is predictable), the public
key set as given (its constructor strips leading "0"/"4" characters, not only a "04"
prefix), signatures whose r or s is out of range refused before its check (it reads a
zero s as G), public keys checked to lie on the curve, and the key file as the PKCS#8 PEM
that `openssl genpkey -algorithm SM2` writes (and `openssl pkey` reads).

Signatures are r || s, 64 bytes; public keys the uncompressed point 04 || x || y, 65 bytes.
"""
from __future__ import annotations

import base64
import secrets

from lifecycle.core.errors import BadValue

_P = int("FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF00000000FFFFFFFFFFFFFFFF", 16)
_A = _P - 3
_B = int("28E9FA9E9D9F5E344D5A9E4BCF6509A7F39789F515AB8F92DDBCBD414D940E93", 16)
_N = int("FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123", 16)
_G = ("32c4ae2c1f1981195f9904466a39c9948fe30bbff2660be1715a4589334c74c7"
      "bc3736a2f4f6779c59bdcee36b692153d0a9877cc62a474002df32e52139f0a0")
_PKCS8 = bytes.fromhex("308187020100301306072a8648ce3d020106082a811ccf5501822d046d306b0201"
                       "010420")
"""The DER before the private scalar: PKCS#8, id-ecPublicKey on the SM2 curve
(1.2.156.10197.1.301), an ECPrivateKey of version 1; then [1] the public point."""
_PUBLIC = bytes.fromhex("a144034200")
_PEM = "PRIVATE KEY"


class InvalidSignature(Exception):
    """The signature does not hold for this message under this public key."""


def _crypt(public_hex: str, private_hex: str = "") -> object:
    from gmssl.sm2 import CryptSM2

    c = CryptSM2(private_key=private_hex, public_key="00" * 64)
    c.public_key = public_hex   # as given (see the module's docstring)
    return c


def _on_curve(x: int, y: int) -> bool:
    return 0 <= x < _P and 0 <= y < _P and (y * y - x * x * x - _A * x - _B) % _P == 0


class PublicKey:
    """An SM2 public key: verifies anchors."""

    def __init__(self, raw: bytes) -> None:
        if len(raw) != 65 or raw[0] != 4:
            raise BadValue("not an SM2 public key (65 bytes, 04 || x || y)")
        x, y = int.from_bytes(raw[1:33], "big"), int.from_bytes(raw[33:], "big")
        if not _on_curve(x, y):
            raise BadValue("not an SM2 public key: the point is not on the SM2 curve")
        self.raw = raw

    def verify(self, signature: bytes, message: bytes) -> None:
        """Raise InvalidSignature unless `signature` is this key's SM2 signature of `message`."""
        if len(signature) != 64:
            raise InvalidSignature("an SM2 signature is 64 bytes (r || s)")
        r, s = int.from_bytes(signature[:32], "big"), int.from_bytes(signature[32:], "big")
        if not (0 < r < _N and 0 < s < _N):
            raise InvalidSignature("r or s out of range")
        if not _crypt(self.raw[1:].hex()).verify_with_sm3(signature.hex(), message):
            raise InvalidSignature("the SM2 signature does not hold")


class PrivateKey:
    """An SM2 private key: signs anchors."""

    def __init__(self, d: int, public: bytes | None = None) -> None:
        if not 0 < d < _N - 1:
            raise BadValue("not an SM2 private key (the scalar is out of range)")
        point = _crypt("")._kg(d, _G)  # d·G
        derived = b"\x04" + bytes.fromhex(point)
        if public is not None and public != derived:
            raise BadValue("the SM2 key file's public key is not its private key's")
        self._d = d
        self._public = PublicKey(derived)

    def public_key(self) -> PublicKey:
        return self._public

    def sign(self, message: bytes) -> bytes:
        """The SM2 signature (with SM3 and the default id) of `message`, r || s."""
        crypt = _crypt(self._public.raw[1:].hex(), f"{self._d:064x}")
        while True:
            k = secrets.randbelow(_N - 1) + 1
            signature = crypt.sign_with_sm3(message, f"{k:064x}")
            if signature:   # gmssl gives None for the rare k that makes r or s zero
                return bytes.fromhex(signature)

    def pem(self) -> bytes:
        """The key as PKCS#8 PEM (what `openssl genpkey -algorithm SM2` writes)."""
        der = _PKCS8 + self._d.to_bytes(32, "big") + _PUBLIC + self._public.raw
        body = base64.encodebytes(der).decode().replace("\n", "")
        lines = [body[i:i + 64] for i in range(0, len(body), 64)]
        return ("\n".join([f"-----BEGIN {_PEM}-----", *lines, f"-----END {_PEM}-----"])
                + "\n").encode()


def generate() -> PrivateKey:
    """A new SM2 private key, its scalar drawn from `secrets`."""
    return PrivateKey(secrets.randbelow(_N - 2) + 1)


def is_pem(data: bytes) -> bool:
    """Whether `data` is an SM2 private key in the PEM layout `load_pem` reads."""
    try:
        return _der(data)[:len(_PKCS8)] == _PKCS8
    except ValueError:
        return False


def _der(data: bytes) -> bytes:
    text = data.decode("ascii").strip()
    head, tail = f"-----BEGIN {_PEM}-----", f"-----END {_PEM}-----"
    if not (text.startswith(head) and text.endswith(tail)):
        raise ValueError("not a PEM private key")
    return base64.b64decode("".join(text[len(head):-len(tail)].split()), validate=True)


def load_pem(data: bytes) -> PrivateKey:
    """The SM2 private key of a PKCS#8 PEM (starfund's or `openssl genpkey -algorithm SM2`'s);
    BadValue for anything else."""
    try:
        der = _der(data)
    except (ValueError, UnicodeDecodeError):
        raise BadValue("not a PEM private key") from None
    cut = len(_PKCS8) + 32
    if der[:len(_PKCS8)] != _PKCS8 or len(der) != cut + len(_PUBLIC) + 65 \
            or der[cut:cut + len(_PUBLIC)] != _PUBLIC:
        raise BadValue("not an SM2 private key in the PKCS#8 layout starfund and "
                       "`openssl genpkey -algorithm SM2` write")
    return PrivateKey(int.from_bytes(der[len(_PKCS8):cut], "big"), der[cut + len(_PUBLIC):])
