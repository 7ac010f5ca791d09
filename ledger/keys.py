"""The ledger's Ed25519 key: one per ledger file, ``<ledger file>.bundle-key`` (PKCS#8 PEM,
mode 0600), created on first use. It signs offline bundles (``syncer.bundles``) and the
hash chain's checkpoints (``ledger.checkpoints``); its public half is what the hub
registers and what a third party needs to check a proof (``ledger verify --export``).

``cryptography`` is imported inside the functions (the ledger's hot path never needs it:
a checkpoint is signed once every ``ledger.checkpoints.INTERVAL`` events).
"""

from __future__ import annotations

import base64
import hashlib
import os
import threading
from pathlib import Path

_cache: dict[str, object] = {}
_lock = threading.Lock()


def key_path(ledger_path: str | os.PathLike) -> Path:
    """Where the key of the ledger file ``ledger_path`` lives: next to it, named
    ``<file name>.bundle-key`` (the name bundles have used since their first release)."""
    path = Path(ledger_path).resolve()
    return path.with_name(path.name + ".bundle-key")


def signing_key(ledger_path: str | os.PathLike):
    """The ledger's ``Ed25519PrivateKey``, created (mode 0600, exclusive create: two
    processes racing get the same key) when there is none. Cached per process.
    Raises ``OSError`` when the key file cannot be read or written."""
    path = key_path(ledger_path)
    with _lock:
        key = _cache.get(str(path))
        if key is not None:
            return key
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

        if not path.exists():
            new = Ed25519PrivateKey.generate()
            pem = new.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                pass  # another process made it first: use theirs
            else:
                with os.fdopen(fd, "wb") as f:
                    f.write(pem)
                    f.flush()
                    os.fsync(f.fileno())
        key = serialization.load_pem_private_key(path.read_bytes(), password=None)
        _cache[str(path)] = key
        return key


def forget_cached(ledger_path: str | os.PathLike) -> None:
    """Drop the cached key of ``ledger_path`` (tests that replace the key file)."""
    with _lock:
        _cache.pop(str(key_path(ledger_path)), None)


def public_raw(private_key) -> bytes:
    """The 32 raw bytes of the public half of an ``Ed25519PrivateKey``."""
    from cryptography.hazmat.primitives import serialization

    return private_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def fingerprint(public: bytes) -> str:
    """First 16 hex digits of the SHA-256 of a raw public key (how keys are named)."""
    return hashlib.sha256(public).hexdigest()[:16]


def public_pem(public: bytes) -> bytes:
    """A raw Ed25519 public key as SubjectPublicKeyInfo PEM (the ``--public-key`` file)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    return Ed25519PublicKey.from_public_bytes(public).public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def load_public(data: bytes) -> bytes:
    """Raw public key bytes from a ``--public-key`` file's content: PEM
    (SubjectPublicKeyInfo), base64 of the 32 raw bytes, or the 32 raw bytes.
    Raises ``ValueError`` when it is none of these or not an Ed25519 key."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    text = data.strip()
    if text.startswith(b"-----BEGIN"):
        key = serialization.load_pem_public_key(text)
        if not isinstance(key, Ed25519PublicKey):
            raise ValueError("the public key is not an Ed25519 key")
        return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    if len(data) == 32:
        return bytes(data)
    raw = base64.b64decode(text, validate=True)
    if len(raw) != 32:
        raise ValueError(f"an Ed25519 public key is 32 bytes, this one is {len(raw)}")
    return raw


def verify_signature(public: bytes, signature: bytes, message: bytes) -> bool:
    """True when ``signature`` is ``public``'s Ed25519 signature of ``message``."""
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        Ed25519PublicKey.from_public_bytes(public).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True
