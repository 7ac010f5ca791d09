"""A Python stand-in for ``libfdb_c``: the ``_capi`` object the real ``fdb.impl`` calls.

``fdb.impl`` loads the C library with ``ctypes.CDLL`` and then calls ``fdb_*`` functions
with ctypes arguments: opaque handles (ints / ``c_void_p``), bytes + lengths, and
``ctypes.byref(...)`` out-parameters.  ``init_c_api()`` assigns ``argtypes``, ``restype``
and ``errcheck`` to each function; ``CFunction`` accepts those assignments and honours
``errcheck`` exactly like ctypes (``check_error_code`` turns a non-zero ``fdb_error_t``
into ``fdb.FDBError``).  Return values are what ctypes would hand back after ``restype``
conversion (ints, ``bytes`` for ``c_char_p``, handle ints for ``c_void_p``).

Out-parameters are written through the objects behind ``byref``: integers by ``.value``,
pointers by storing an address into the pointer object; the memory (one buffer per
future) lives as long as the future handle, as with the real client.
"""

from __future__ import annotations

import ctypes
import itertools
import threading
from typing import Any, Callable, Optional

from . import errors
from .errors import FDBErr
from .futures import DFuture, TICK_SECONDS, poll_all, ready, run_op

MAX_API_VERSION = 800  # what libfdb_c 8.0 reports (fdb_get_max_api_version)



class NotEmulated(RuntimeError):
    """A libfdb_c function the double deliberately does not emulate was called."""

class _FDBKeyValue(ctypes.Structure):
    """``FDBKeyValue`` from fdb_c.h (``#pragma pack(4)``)."""
    _pack_ = 4
    _fields_ = [("key", ctypes.c_void_p), ("key_length", ctypes.c_int),
                ("value", ctypes.c_void_p), ("value_length", ctypes.c_int)]


class _FDBKey(ctypes.Structure):
    _pack_ = 4
    _fields_ = [("key", ctypes.c_void_p), ("key_length", ctypes.c_int)]


def _h(handle) -> int:
    """Handle value from an int or a ``c_void_p``."""
    return handle.value if isinstance(handle, ctypes.c_void_p) else handle


def _target(byref_arg):
    """The ctypes object behind ``ctypes.byref(obj)`` (or the object itself)."""
    return getattr(byref_arg, "_obj", byref_arg)


def _store_pointer(byref_arg, address: Optional[int]) -> None:
    obj = _target(byref_arg)
    ctypes.c_void_p.from_address(ctypes.addressof(obj)).value = address


class CFunction:
    """One emulated C function; supports ctypes' argtypes/restype/errcheck attributes."""

    def __init__(self, name: str, impl: Callable):
        self.__name__ = name
        self._impl = impl
        self.argtypes = None
        self.restype = None
        self.errcheck = None

    def __call__(self, *args):
        result = self._impl(*args)
        if self.errcheck is not None:
            return self.errcheck(result, self, args)
        return result

    def __repr__(self):
        return f"<fdb_double CFunction {self.__name__}>"


class _FutureBox:
    """What an ``FDBFuture*`` handle owns: the future and memory handed out by getters."""

    __slots__ = ("future", "buffers", "released")

    def __init__(self, future: DFuture):
        self.future = future
        self.buffers: list = []
        self.released = False


class FakeCAPI:
    """The emulated C library.  One instance per process (``CAPI``)."""

    def __init__(self):
        self._objects: dict = {}
        self._ids = itertools.count(0x10000, 16)
        self._lock = threading.Lock()
        self._api_version = None
        self._network_setup = False
        self._network_ran = False
        self._stop = threading.Event()
        self._opened: dict = {}
        for name in dir(self):
            if name.startswith("_c_"):
                setattr(self, "fdb_" + name[3:], CFunction("fdb_" + name[3:], getattr(self, name)))

    def __getattr__(self, name: str):
        if name.startswith("fdb_"):  # functions the double does not emulate (tenants, CDC...)
            def missing(*_args):
                raise NotEmulated(
                    f"fdb double: the C function {name} is not emulated (tenants, change "
                    "feeds); run this test against a real cluster "
                    "(FDB_CLUSTER_FILE) or extend tests/fdb_double/capi.py")
            fn = CFunction(name, missing)
            setattr(self, name, fn)
            return fn
        raise AttributeError(name)

    # -- handle table -------------------------------------------------------------------
    def _new(self, obj) -> int:
        h = next(self._ids)
        with self._lock:
            self._objects[h] = obj
        return h

    def _get(self, handle):
        return self._objects[_h(handle)]

    def _drop(self, handle):
        with self._lock:
            return self._objects.pop(_h(handle), None)

    def _future(self, f: DFuture) -> int:
        return self._new(_FutureBox(f))

    def _op(self, tr, thunk) -> int:
        return self._future(run_op(tr, thunk))

    # ==================================================================================
    # API version, errors, network
    # ==================================================================================
    def _c_select_api_version_impl(self, runtime_version, header_version):
        if runtime_version > MAX_API_VERSION or runtime_version < 13:
            return errors.API_VERSION_NOT_SUPPORTED
        if self._api_version not in (None, runtime_version):
            return 2201  # api_version_already_set
        self._api_version = runtime_version
        return 0

    def _c_get_max_api_version(self):
        return MAX_API_VERSION

    def _c_get_error(self, code):
        return errors.message(code)

    def _c_error_predicate(self, predicate, code):
        return int(errors.error_predicate(predicate, code))

    def _c_network_set_option(self, option, value, length):
        return 0

    def _c_setup_network(self):
        if self._network_setup:
            return errors.NETWORK_ALREADY_SETUP
        self._network_setup = True
        return 0

    def _c_run_network(self):
        if not self._network_setup:
            return errors.NETWORK_NOT_SETUP
        if self._network_ran:
            return errors.NETWORK_CANNOT_BE_RESTARTED
        self._network_ran = True
        while not self._stop.is_set():
            poll_all()
            self._stop.wait(TICK_SECONDS)
        return 0

    def _c_stop_network(self):
        if not self._network_setup:
            return errors.NETWORK_NOT_SETUP
        self._stop.set()
        return 0

    # ==================================================================================
    # futures
    # ==================================================================================
    def _c_future_destroy(self, fh):
        box = self._drop(fh)
        if box is not None and not box.future.ready and box.future.retry is not None:
            box.future.resolve(error=errors.OPERATION_CANCELLED)  # a blocked op is abandoned

    def _c_future_release_memory(self, fh):
        box = self._get(fh)
        box.released = True
        box.buffers = []

    def _c_future_cancel(self, fh):
        self._get(fh).future.resolve(error=errors.OPERATION_CANCELLED)

    def _c_future_block_until_ready(self, fh):
        self._get(fh).future.wait()
        return 0

    def _c_future_is_ready(self, fh):
        return int(self._get(fh).future.ready)

    def _c_future_set_callback(self, fh, callback, userdata):
        self._get(fh).future.add_callback(lambda: callback(_h(fh)))
        return 0

    def _c_future_get_error(self, fh):
        f = self._get(fh).future
        return f.error if f.ready else 2015  # future_not_set

    def _result(self, fh) -> tuple:
        """``(box, value)`` of a ready, successful, unreleased future; else raise FDBErr(code)."""
        box = self._get(fh)
        f = box.future
        if not f.ready:
            raise FDBErr(2015)
        if f.error:
            raise FDBErr(f.error)
        if box.released:
            raise FDBErr(errors.FUTURE_RELEASED)
        return box, f.value

    def _getter(fn):  # decorator: FDBErr -> returned error code
        def wrapper(self, fh, *outs):
            try:
                return fn(self, fh, *outs) or 0
            except FDBErr as e:
                return e.code
        wrapper.__name__ = fn.__name__
        return wrapper

    @_getter
    def _c_future_get_int64(self, fh, out):
        _box, value = self._result(fh)
        _target(out).value = int(value)

    @_getter
    def _c_future_get_uint64(self, fh, out):
        _box, value = self._result(fh)
        _target(out).value = int(value)

    def _buffer(self, box: _FutureBox, data: bytes) -> int:
        buf = ctypes.create_string_buffer(data, max(len(data), 1))
        box.buffers.append(buf)
        return ctypes.addressof(buf)

    @_getter
    def _c_future_get_key(self, fh, out_key, out_length):
        box, value = self._result(fh)
        _store_pointer(out_key, self._buffer(box, value))
        _target(out_length).value = len(value)

    @_getter
    def _c_future_get_value(self, fh, out_present, out_value, out_length):
        box, value = self._result(fh)
        _target(out_present).value = int(value is not None)
        if value is not None:
            _store_pointer(out_value, self._buffer(box, value))
            _target(out_length).value = len(value)

    @_getter
    def _c_future_get_keyvalue_array(self, fh, out_kvs, out_count, out_more):
        box, (kvs, more) = self._result(fh)
        blob = b"".join(k + v for k, v in kvs)
        base = self._buffer(box, blob)
        array = (_FDBKeyValue * max(len(kvs), 1))()
        off = 0
        for i, (k, v) in enumerate(kvs):
            array[i].key, array[i].key_length = base + off, len(k)
            off += len(k)
            array[i].value, array[i].value_length = base + off, len(v)
            off += len(v)
        box.buffers.append(array)
        _store_pointer(out_kvs, ctypes.addressof(array))
        _target(out_count).value = len(kvs)
        _target(out_more).value = int(bool(more))

    @_getter
    def _c_future_get_key_array(self, fh, out_keys, out_count):
        box, keys = self._result(fh)
        array = (_FDBKey * max(len(keys), 1))()
        for i, k in enumerate(keys):
            array[i].key, array[i].key_length = self._buffer(box, k), len(k)
        box.buffers.append(array)
        _store_pointer(out_keys, ctypes.addressof(array))
        _target(out_count).value = len(keys)

    @_getter
    def _c_future_get_string_array(self, fh, out_strings, out_count):
        box, strings = self._result(fh)
        array = (ctypes.c_char_p * max(len(strings), 1))(*strings)
        box.buffers.append(array)
        _store_pointer(out_strings, ctypes.addressof(array))
        _target(out_count).value = len(strings)

    del _getter

    # ==================================================================================
    # database
    # ==================================================================================
    def _c_create_database(self, cluster_file, out_db):
        from .cluster import open_database
        try:
            db = open_database(cluster_file.decode() if cluster_file is not None else None)
        except FDBErr as e:
            return e.code
        _store_pointer(out_db, self._new(db))
        return 0

    def _c_database_destroy(self, dh):
        self._drop(dh)

    def _c_database_set_option(self, dh, option, value, length):
        try:
            self._get(dh).set_option(option, value)
        except FDBErr as e:
            return e.code
        return 0

    def _c_database_create_transaction(self, dh, out_tr):
        tr = self._get(dh).create_transaction()
        _store_pointer(out_tr, self._new(tr))
        return 0

    # ==================================================================================
    # transactions
    # ==================================================================================
    def _c_transaction_destroy(self, th):
        tr = self._drop(th)
        if tr is not None:
            tr.destroy()

    def _c_transaction_cancel(self, th):
        self._get(th).cancel()

    def _c_transaction_reset(self, th):
        self._get(th).reset()

    def _c_transaction_set_option(self, th, option, value, length):
        try:
            self._get(th).set_option(option, value)
        except FDBErr as e:
            return e.code
        return 0

    def _c_transaction_set_read_version(self, th, version):
        self._get(th).set_read_version(version)

    def _c_transaction_get_read_version(self, th):
        tr = self._get(th)
        return self._op(tr, tr.get_read_version)

    def _c_transaction_get(self, th, key, key_length, snapshot):
        tr = self._get(th)
        return self._op(tr, lambda: tr.get(bytes(key[:key_length]), bool(snapshot)))

    def _c_transaction_get_key(self, th, key, key_length, or_equal, offset, snapshot):
        tr = self._get(th)
        return self._op(tr, lambda: tr.get_key(bytes(key[:key_length]), bool(or_equal), offset, bool(snapshot)))

    def _c_transaction_get_range(self, th, begin_key, begin_key_length, begin_or_equal, begin_offset,
                                 end_key, end_key_length, end_or_equal, end_offset, limit, target_bytes,
                                 mode, iteration, snapshot, reverse):
        tr = self._get(th)
        begin = (bytes(begin_key[:begin_key_length]), bool(begin_or_equal), begin_offset)
        end = (bytes(end_key[:end_key_length]), bool(end_or_equal), end_offset)
        return self._op(tr, lambda: tr.get_range(begin, end, limit, target_bytes, mode, iteration,
                                                 bool(snapshot), bool(reverse)))

    def _c_transaction_get_estimated_range_size_bytes(self, th, begin, begin_length, end, end_length):
        tr = self._get(th)
        return self._op(tr, lambda: tr.get_estimated_range_size_bytes(bytes(begin[:begin_length]),
                                                                      bytes(end[:end_length])))

    def _c_transaction_add_conflict_range(self, th, begin, begin_length, end, end_length, kind):
        self._get(th).add_conflict_range(bytes(begin[:begin_length]), bytes(end[:end_length]), kind)
        return 0

    def _c_transaction_set(self, th, key, key_length, value, value_length):
        self._get(th).set(bytes(key[:key_length]), bytes(value[:value_length]))

    def _c_transaction_clear(self, th, key, key_length):
        self._get(th).clear(bytes(key[:key_length]))

    def _c_transaction_clear_range(self, th, begin, begin_length, end, end_length):
        self._get(th).clear_range(bytes(begin[:begin_length]), bytes(end[:end_length]))

    def _c_transaction_atomic_op(self, th, key, key_length, param, param_length, opcode):
        self._get(th).atomic_op(bytes(key[:key_length]), bytes(param[:param_length]), opcode)

    def _c_transaction_watch(self, th, key, key_length):
        return self._future(ready(error=errors.UNSUPPORTED_OPERATION))

    def _c_transaction_commit(self, th):
        return self._future(self._get(th).commit())

    def _c_transaction_get_committed_version(self, th, out_version):
        _target(out_version).value = self._get(th).get_committed_version()
        return 0

    def _c_transaction_get_approximate_size(self, th):
        return self._future(ready(self._get(th).get_approximate_size()))

    def _c_transaction_get_versionstamp(self, th):
        return self._future(self._get(th).get_versionstamp())

    def _c_transaction_on_error(self, th, code):
        return self._future(self._get(th).on_error(code))


CAPI = FakeCAPI()
