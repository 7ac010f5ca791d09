"""A rich progress bar on stderr for long CLI work (import, replay)."""

from __future__ import annotations

import contextlib
import sys
from typing import Callable, Iterator



@contextlib.contextmanager
def progress_bar(
    description: str, *, unit: str = "", enabled: bool = True
) -> Iterator[Callable[..., None]]:
    """Yield ``update(done, total, label=None)``; shows a bar on stderr when it is a
    terminal and ``enabled``, else does nothing (so JSON output and pipes stay clean).
    ``total`` may be None (unknown). A ``label`` gets a bar of its own (e.g. one per
    ingested stream); without one, the bar is ``description``'s."""
    if not enabled or not sys.stderr.isatty():
        yield lambda done, total, label=None: None
        return
    from rich.console import Console
    from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                               TimeRemainingColumn)

    console = Console(stderr=True)
    if not enabled or not console.is_terminal or not sys.stderr.isatty():
        yield lambda done, total, label=None: None
        return
    columns = [TextColumn("[progress.description]{task.description}"), BarColumn(),
               MofNCompleteColumn(), TextColumn(unit), TimeElapsedColumn(), TimeRemainingColumn()]
    with Progress(*columns, console=console, transient=True) as progress:
        tasks: dict[str, int] = {}

        def update(done: int, total: int | None, label: str | None = None) -> None:
            name = label or description
            if name not in tasks:
                tasks[name] = progress.add_task(name, total=total)
            progress.update(tasks[name], completed=done, total=total)

        yield update
