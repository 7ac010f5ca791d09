"""Carry the active trace across threads, asyncio tasks and child processes.

* **asyncio tasks** need nothing: a task runs in a copy of the context that created
  it, so spans and ledger events inside ``asyncio.create_task``/``gather`` belong to the
  span that was current when the task was created.
* **threads** (Python 3.11-3.13) start with an *empty* context: wrap the target with
  ``propagating(fn)``, use ``ContextThread`` instead of ``threading.Thread``, or
  ``submit(executor, fn, ...)`` with a ``ThreadPoolExecutor``.
* **child processes** get the W3C trace context in their environment: ``child_env()``
  returns ``os.environ`` plus ``TRACEPARENT`` (and ``TRACESTATE``/``BAGGAGE`` when set),
  following OpenTelemetry's "environment variables as context propagation carriers"
  (the propagator's field names, upper-cased). In the child, ``nervous_system.configure()``
  (or ``attach_from_env()``) makes that the parent of its spans, so a swarm of agent
  processes — in any language whose OpenTelemetry SDK reads ``TRACEPARENT`` — shares
  one trace.
"""

from __future__ import annotations

import contextvars
import functools
import os
import subprocess
import threading
from concurrent.futures import Executor, Future
from typing import Any, Callable, Mapping, Sequence, TypeVar

from opentelemetry import context as otel_context
from opentelemetry import propagate

T = TypeVar("T")

#: Environment variable carrying the W3C ``traceparent`` header.
TRACEPARENT_ENV = "TRACEPARENT"
#: Environment variable carrying the W3C ``tracestate`` header.
TRACESTATE_ENV = "TRACESTATE"


def _field_names() -> set[str]:
    fields = set(propagate.get_global_textmap().fields or ())
    return {f.upper() for f in fields} | {TRACEPARENT_ENV, TRACESTATE_ENV}


def child_env(
    env: Mapping[str, str] | None = None, *, context: otel_context.Context | None = None
) -> dict[str, str]:
    """A copy of ``env`` (default ``os.environ``) carrying the current trace context.

    With an active span, ``TRACEPARENT`` (and ``TRACESTATE``, ``BAGGAGE`` if any) are
    set from it, replacing inherited values. With no active span, inherited values
    are passed through unchanged (the child joins the same trace as this process).
    """
    out = dict(os.environ if env is None else env)
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=context)
    if carrier.get("traceparent"):
        for name in _field_names():
            out.pop(name, None)
        for key, value in carrier.items():
            out[key.upper()] = value
    return out


def context_from_env(env: Mapping[str, str] | None = None) -> otel_context.Context | None:
    """The trace context named by ``TRACEPARENT``/``TRACESTATE`` in ``env`` (default
    ``os.environ``), or None when there is none or it is malformed (W3C rules)."""
    env = os.environ if env is None else env
    carrier = {name.lower(): env[name] for name in _field_names() if env.get(name)}
    if "traceparent" not in carrier:
        return None
    ctx = propagate.extract(carrier)
    from opentelemetry import trace

    if not trace.get_current_span(ctx).get_span_context().is_valid:
        return None
    return ctx


def attach_from_env(env: Mapping[str, str] | None = None) -> object | None:
    """Make the environment's trace context current (the parent of new spans) in the
    calling thread's context. Returns the token for ``opentelemetry.context.detach``,
    or None when the environment names no valid trace."""
    ctx = context_from_env(env)
    return otel_context.attach(ctx) if ctx is not None else None


def propagating(fn: Callable[..., T]) -> Callable[..., T]:
    """Wrap ``fn`` so it runs in a copy of the context current *now* (the active span,
    baggage and any other contextvars), wherever and whenever it is called."""
    ctx = contextvars.copy_context()

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> T:
        return ctx.copy().run(fn, *args, **kwargs)

    return run


class ContextThread(threading.Thread):
    """A ``threading.Thread`` whose target runs in the context of the thread that
    created it (so its spans and ledger events join the creator's trace)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._parent_context = contextvars.copy_context()

    def run(self) -> None:
        self._parent_context.run(super().run)


def submit(executor: Executor, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future:
    """``executor.submit(fn, ...)`` with the caller's context propagated to the worker."""
    return executor.submit(propagating(fn), *args, **kwargs)


def run_child(argv: Sequence[str], **kwargs: Any) -> subprocess.CompletedProcess:
    """``subprocess.run(argv, ...)`` with ``env=child_env(kwargs.get("env"))``."""
    kwargs["env"] = child_env(kwargs.get("env"))
    return subprocess.run(list(argv), **kwargs)
