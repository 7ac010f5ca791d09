"""Putting the double under the official ``fdb`` bindings.

``fdb/impl.py`` binds its C library at import time::

    _capi = ctypes.CDLL(...libfdb_c...)

``install()`` imports ``fdb.impl`` while ``ctypes.CDLL`` answers requests for
``libfdb_c``/``fdb_c`` with the emulated library (``capi.CAPI``), then restores
``ctypes.CDLL``.  Everything else -- ``fdb/__init__.py`` (``api_version``), ``impl.py``
(``Database``, ``Transaction``, futures, ``@transactional``, options, predicates),
``tuple``, ``subspace_impl``, ``directory_impl`` -- runs unmodified.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
import threading

from .capi import CAPI

_lock = threading.Lock()


def is_installed() -> bool:
    impl = sys.modules.get("fdb.impl")
    return impl is not None and getattr(impl, "_capi", None) is CAPI


def install() -> None:
    """Make ``import fdb`` use the double.  Idempotent; call before ``fdb.api_version``.

    Raises RuntimeError if ``fdb.impl`` was already imported with the real C library.
    """
    with _lock:
        if is_installed():
            return
        if "fdb.impl" in sys.modules:
            raise RuntimeError("fdb.impl is already loaded with the real libfdb_c; "
                               "call tests.fdb_double.install() before fdb.api_version()")
        real_cdll = ctypes.CDLL

        def cdll(name, *args, **kwargs):
            if name and "fdb_c" in os.path.basename(str(name)):
                return CAPI
            return real_cdll(name, *args, **kwargs)

        ctypes.CDLL = cdll
        try:
            import fdb.impl  # noqa: F401  (binds _capi = CAPI)
        finally:
            ctypes.CDLL = real_cdll


def real_client_available() -> bool:
    """True if the real libfdb_c can be loaded on this machine."""
    import fdb
    candidates = [os.path.join(os.path.dirname(fdb.__file__), "libfdb_c.so"), "libfdb_c.so",
                  ctypes.util.find_library("fdb_c")]
    for name in candidates:
        if not name:
            continue
        try:
            ctypes.CDLL(name)
            return True
        except OSError:
            continue
    return False


def should_use_real_cluster() -> bool:
    """True when $FDB_CLUSTER_FILE names a real (non-double) cluster file and libfdb_c loads."""
    from .cluster import is_double_cluster_file
    path = os.environ.get("FDB_CLUSTER_FILE")
    if not path or not os.path.exists(path) or is_double_cluster_file(path):
        return False
    return real_client_available()
