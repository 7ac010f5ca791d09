"""Sealed file content (crypto-shredding of content, docs/trust.md "Erasure").

With ``Ledger.set_sealing(True, content=True)`` (``ledger erase --seal content``) the
``SealText`` policy also seals the content of each file change with its session key:
the event keeps the SHA-256 of the plaintext (``new_state_hash``: path state, replay
and blame work by it) and says ``content_withheld = "sealed:v1:<key id>:<address>"``,
where ``address`` is the SHA-256 of the stored ciphertext blob (``nonce + AES-256-GCM``
of the content, the plaintext hash as associated data, the nonce an HMAC of key and
plaintext hash). The blob store is content-addressed by the CIPHERTEXT, so the same
file in two sessions is two blobs under two keys: dedup cannot link sessions, and
erasing one session's key leaves the other's copy readable. The syncer, bundles and hub
carry the ciphertext blob like any other (``ledger.changes.content_hash`` names it).

Readers (``Ledger.get_blob``, hub replay) open it while the key lives; afterwards the
content is unrecoverable and replay/restore list the file in ``unrestored`` with the
reason ``erased`` (``[sealed]``-like ``sealed`` where the key is not reachable).
"""

from __future__ import annotations

import hashlib
import hmac

from ledger.changes import SEALED_CONTENT, sealed_content

#: ``unrestored`` reasons of sealed content that cannot be opened.
ERASED_REASON = "erased"
SEALED_REASON = "sealed"


def seal(key: bytes, key_id: str, digest: str, data: bytes) -> tuple[str, bytes]:
    """``(content_withheld value, ciphertext blob)`` of ``data`` (SHA-256 hex ``digest``)."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    nonce = hmac.new(key, b"content\0" + digest.encode(), hashlib.sha256).digest()[:12]
    blob = nonce + AESGCM(key).encrypt(nonce, data, digest.encode())
    return f"{SEALED_CONTENT}{key_id}:{hashlib.sha256(blob).hexdigest()}", blob


def open_blob(key: bytes, digest: str, blob: bytes) -> bytes | None:
    """The plaintext of a sealed ``blob`` whose plaintext hash is ``digest``, or None
    when it does not open (wrong key, altered bytes) or does not hash to ``digest``."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    try:
        data = AESGCM(key).decrypt(blob[:12], blob[12:], digest.encode())
    except (InvalidTag, ValueError):
        return None
    return data if hashlib.sha256(data).hexdigest() == digest else None


def reason(withheld: str) -> str:
    """The ``unrestored`` reason for a ``content_withheld`` value: ``erased`` (key
    destroyed), ``sealed`` (key not reachable here) or the value itself (not sealed)."""
    sealed = sealed_content(withheld)
    if sealed is None:
        return withheld
    from ledger.erasure import key_erased

    return ERASED_REASON if key_erased(sealed[0]) else SEALED_REASON


def opened(withheld_values, digest: str, read_blob) -> bytes | None:
    """Plaintext of content ``digest`` from the first sealed copy among
    ``withheld_values`` that opens, reading ciphertext with ``read_blob(address)``
    (exceptions: skipped); None when none opens."""
    from ledger.erasure import lookup_key

    for value in withheld_values:
        sealed = sealed_content(value or "")
        if sealed is None:
            continue
        key = lookup_key(sealed[0])
        if key is None:
            continue
        try:
            blob = read_blob(sealed[1])
        except Exception:  # noqa: BLE001 - another copy may open
            continue
        data = open_blob(key, digest, blob)
        if data is not None:
            return data
    return None
