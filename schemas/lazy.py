"""Lazy package exports (PEP 562), so ``import ledger`` or ``from schemas.errors import X``
costs only what is used: a package lists ``{name: module}`` and the module is imported
on the first access of one of its names. Start-up matters: agent hooks start a process
per tool call, and `ledger --help` should not load pydantic, SQLite helpers or
OpenTelemetry."""

from __future__ import annotations

import importlib
from typing import Any, Callable, Mapping


def lazy_exports(package: str, exports: Mapping[str, str]) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for a package whose public ``exports`` map each name
    to the module defining it. Raises ``AttributeError`` for any other name."""

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        globals_ = importlib.import_module(package).__dict__
        globals_[name] = value  # later accesses skip __getattr__
        return value

    def __dir__() -> list[str]:
        return sorted(exports)

    return __getattr__, __dir__
