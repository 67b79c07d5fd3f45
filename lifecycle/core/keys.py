"""The audit trail's keys, kept outside the database they protect.

Two keys per database, both made by `starfund init`, each a file readable by its owner
only, in the user's config directory unless a path is given:

- the chain key (`<database id>.key`): the HMAC secret every event's hash is keyed
  with, so whoever can write to the database but does not hold this file cannot rewrite an
  event and recompute the chain. The file also names its database, the first event it
  keys (a database upgraded from an unkeyed chain keeps its older events as they were) and
  the database's crypto (`CRYPTOS`: HMAC-SHA256, or HMAC-SM3 for `init --crypto sm`; a
  file without it is a standard one, as every file before the choice was);
- the anchor key (`<database id>.anchor.pem`): an Ed25519 (or, crypto sm, SM2) private key
  that signs anchors (`lifecycle.core.anchors`), which anyone holding only the public key
  can check.

Where a key is comes only from whoever runs the command: the path given (--key-file,
--anchor-key), else the environment (STARFUND_AUDIT_KEY, STARFUND_ANCHOR_KEY), else the
config folder. Never from the database: whoever can write to it could otherwise point the
check at a key of their own, or at none. A key `init` wrote elsewhere is linked from the
config folder, so the operator's own folder still says where it is. A key that is named
but missing is an error, never a reason to check less.

A file that others may read is refused: a secret that leaked is no secret.
"""
from __future__ import annotations

import base64
import functools
import hashlib
import json
import os
import secrets
import stat
from dataclasses import dataclass
from pathlib import Path

from lifecycle.core.errors import BadValue, NotFound
from lifecycle.core.settings import KeyPaths


@functools.lru_cache(maxsize=8)
def _key_paths(_environment: tuple[str | None, ...]) -> KeyPaths:
    return KeyPaths()


def key_paths() -> KeyPaths:
    """The key-path settings, read once per set of their environment variables (the portal
    asks on every write; a test or a command that changes them gets a fresh reading)."""
    return _key_paths(tuple(os.environ.get(f"STARFUND_{name.upper()}")
                            for name in KeyPaths.model_fields))


def config_dir() -> Path:
    """The user's starfund folder: STARFUND_CONFIG_DIR, else $XDG_CONFIG_HOME/starfund, else
    ~/.config/starfund."""
    folder = key_paths().config_dir
    if folder:
        return Path(folder)
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "starfund"


def _default(database_id: str, suffix: str) -> Path:
    return config_dir() / "keys" / f"{database_id}{suffix}"


CHAIN, ANCHOR = ".key", ".anchor.pem"
"""The suffixes of a database's two key files in the config folder."""


_WHERE = {CHAIN: ("audit_key", "--key-file"), ANCHOR: ("anchor_key", "--anchor-key")}


def _located(database_id: str, path: str | os.PathLike | None,
             suffix: str) -> tuple[Path, str]:
    """(where a key is, the option or variable that named it, "" for the config folder): the
    path given > the environment > the config folder."""
    variable, option = _WHERE[suffix]
    if path:
        return Path(path), option
    named = getattr(key_paths(), variable)
    if named:
        return Path(named), f"STARFUND_{variable.upper()}"
    return _default(database_id, suffix), ""


def chain_key_path(database_id: str, path: str | os.PathLike | None = None) -> Path:
    """Where the chain key is: the path given > STARFUND_AUDIT_KEY > the config folder's
    `keys/<database id>.key` (never a path the database names)."""
    return _located(database_id, path, CHAIN)[0]


def anchor_key_path(database_id: str, path: str | os.PathLike | None = None) -> Path:
    """Where the anchor signing key is, in the same order as `chain_key_path`."""
    return _located(database_id, path, ANCHOR)[0]


def link_default(database_id: str, suffix: str, target: Path) -> Path | None:
    """Link `keys/<database id><suffix>` in the config folder to a key `init` wrote elsewhere
    (the operator's own folder then says where it is); the link made, or None."""
    default = _default(database_id, suffix)
    if default.absolute() == target.absolute():
        return None
    default.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        default.symlink_to(target.resolve())
    except FileExistsError:
        raise BadValue(f"{default} already exists; starfund never overwrites a key") from None
    return default


def write_private(path: Path, data: bytes) -> None:
    """Write a new file only its owner can read (its folder made owner-only too); never
    overwrite one: replacing a key is what a tamperer would do."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def read_private(path: Path, what: str, named_by: str = "") -> bytes:
    """A key file's bytes, refused when group or others may read or write it."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        raise NotFound(f"no {what} at {path}" + (f" (named by {named_by})" if named_by else "")
                       ) from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise BadValue(f"the {what} {path} may be read by others (mode {stat.filemode(mode)}); "
                       f"only its owner may: chmod 600 {path}")
    return path.read_bytes()


@dataclass(frozen=True)
class Crypto:
    """A database's algorithms, chosen once by `starfund init --crypto`."""

    name: str
    hash: str
    """The hashlib name of the hash the chain's HMACs use."""
    signature: str
    """The anchors' signature algorithm."""
    label: str


STANDARD, SM = "standard", "sm"
CRYPTOS = {STANDARD: Crypto(STANDARD, "sha256", "ed25519", "HMAC-SHA256 + Ed25519"),
           SM: Crypto(SM, "sm3", "sm2", "国密 HMAC-SM3 + SM2")}
"""The cryptos a database can be made with; one that does not say is STANDARD."""


def crypto(name: str | None) -> Crypto:
    """The crypto called `name` (None: STANDARD, as every database made before the choice)."""
    try:
        found = CRYPTOS[name or STANDARD]
    except (KeyError, TypeError):
        raise BadValue(f"unknown crypto {name!r}: one of {', '.join(CRYPTOS)}") from None
    if found.hash not in hashlib.algorithms_available:
        raise BadValue(f"crypto {found.name} needs {found.hash.upper()}, which this Python's "
                       "OpenSSL does not offer (hashlib.algorithms_available)")
    return found


@dataclass(frozen=True)
class ChainKey:
    """The HMAC secret of one database's audit chain."""

    database: str
    secret: bytes
    first_seq: int
    """Events from this one on are keyed; earlier ones (an upgraded database) are plain SHA-256."""
    path: Path
    crypto: str = STANDARD
    """Which of CRYPTOS the file says its database uses (its HMAC's hash)."""

    @property
    def hash(self) -> str:
        """The hashlib name of this key's HMAC: sha256, or sm3 for crypto sm."""
        return CRYPTOS[self.crypto].hash

    @property
    def id(self) -> str:
        """A fingerprint that names the key without revealing it (anchors carry it)."""
        return hashlib.new(self.hash, b"starfund chain key\x00" + self.secret).hexdigest()[:16]


def create_chain_key(database_id: str, first_seq: int,
                     path: str | os.PathLike | None = None,
                     crypto_: str = STANDARD) -> ChainKey:
    """A new random chain key for the database, written to its (new) file with its crypto."""
    crypto(crypto_)
    target = Path(path) if path else chain_key_path(database_id)
    secret = secrets.token_bytes(32)
    body = {"database": database_id, "first_seq": first_seq, "crypto": crypto_,
            "key": base64.b64encode(secret).decode()}
    try:
        write_private(target, json.dumps(body, indent=1).encode())
    except FileExistsError:
        raise BadValue(f"a chain key already exists at {target}; starfund never overwrites a "
                       "key (move it away if you really mean to start a new trail)") from None
    return ChainKey(database_id, secret, first_seq, target, crypto_)


def load_chain_key(database_id: str, path: str | os.PathLike | None = None) -> ChainKey:
    """The database's chain key; NotFound when the file is missing, BadValue when it is not
    this database's, not a key, or readable by others."""
    target, named_by = _located(database_id, path, CHAIN)
    raw = read_private(target, "audit chain key", named_by)
    try:
        body = json.loads(raw)
        key = ChainKey(str(body["database"]), base64.b64decode(body["key"], validate=True),
                       int(body["first_seq"]), target, body.get("crypto") or STANDARD)
    except (ValueError, KeyError, TypeError, AttributeError):
        raise BadValue(f"{target} is not a starfund chain key file") from None
    if key.crypto not in CRYPTOS:
        raise BadValue(f"{target}: unknown crypto {key.crypto!r} (starfund knows "
                       f"{', '.join(CRYPTOS)})")
    if key.database != database_id:
        raise BadValue(f"{target} is the chain key of database {key.database}, not of this "
                       f"database ({database_id})")
    if len(key.secret) < 16:
        raise BadValue(f"{target}: the key is too short to be one starfund made")
    return key


def create_anchor_key(database_id: str, path: str | os.PathLike | None = None,
                      crypto_: str = STANDARD) -> Path:
    """A new private key for signing this database's anchors (PEM, owner-only): Ed25519, or
    SM2 for crypto sm."""
    target = Path(path) if path else anchor_key_path(database_id)
    if crypto(crypto_).signature == "sm2":
        from lifecycle.core import sm2

        pem = sm2.generate().pem()
    else:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        pem = Ed25519PrivateKey.generate().private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption())
    try:
        write_private(target, pem)
    except FileExistsError:
        raise BadValue(f"an anchor key already exists at {target}; starfund never overwrites "
                       "a key") from None
    return target


def load_anchor_key(database_id: str, path: str | os.PathLike | None = None):
    """The private key that signs this database's anchors: an Ed25519 key
    (`cryptography`'s), or an SM2 one (`lifecycle.core.sm2.PrivateKey`)."""
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from lifecycle.core import sm2

    target, named_by = _located(database_id, path, ANCHOR)
    raw = read_private(target, "anchor signing key", named_by)
    if sm2.is_pem(raw):
        try:
            return sm2.load_pem(raw)
        except BadValue as e:
            raise BadValue(f"{target}: {e}") from None
    try:
        key = serialization.load_pem_private_key(raw, password=None)
    except (ValueError, UnsupportedAlgorithm):
        raise BadValue(f"{target} is not a PEM private key") from None
    if not isinstance(key, Ed25519PrivateKey):
        raise BadValue(f"{target} is not an Ed25519 or SM2 key")
    return key
