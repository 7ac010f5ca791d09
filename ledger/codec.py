"""zstd for the ledger: the standard library's ``compression.zstd`` API (Python 3.14+),
from the ``backports.zstd`` package before 3.14 (a 0.5 MB wheel; chosen over
``zstandard``, 23 MB installed, to keep the base install small — see docs/replay.md).

Imported on first use, so ``import ledger`` stays light. Frames are standard zstd
frames (RFC 8878): any zstd tool decodes a full blob; a delta needs its base as the
*prefix* (``ZstdDict(base, is_raw=True).as_prefix``).
"""

from __future__ import annotations

from types import ModuleType

__all__ = ["zstd", "LEVEL", "compress", "decompress"]

#: zstd level of blobs and snapshots: 3 is zstd's default balance of speed and ratio.
LEVEL = 3

_module: ModuleType | None = None


def zstd() -> ModuleType:
    """The zstd module (``compression.zstd`` or ``backports.zstd``)."""
    global _module
    if _module is None:
        try:
            from compression import zstd as module  # Python 3.14+
        except ImportError:
            from backports import zstd as module
        _module = module
    return _module


def compress(data: bytes, prefix: bytes | None = None) -> bytes:
    """One zstd frame of ``data`` at ``LEVEL``; with ``prefix``, compressed against it
    (matches may point into ``prefix``; decoding needs the same ``prefix``)."""
    z = zstd()
    if prefix is None:
        return z.compress(data, level=LEVEL)
    return z.compress(data, level=LEVEL, zstd_dict=z.ZstdDict(prefix, is_raw=True).as_prefix)


def decompress(frame: bytes, prefix: bytes | None = None) -> bytes:
    """Inverse of ``compress`` (the same ``prefix``). Raises the module's ``ZstdError``
    for a damaged frame."""
    z = zstd()
    if prefix is None:
        return z.decompress(frame)
    return z.decompress(frame, zstd_dict=z.ZstdDict(prefix, is_raw=True).as_prefix)
