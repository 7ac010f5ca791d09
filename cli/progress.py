"""A progress bar on stderr for long CLI work (import, replay, ingest, first snapshots),
drawn by click's own progress bar (no extra dependency), only on a terminal."""

from __future__ import annotations

import contextlib
import sys
from typing import Callable, Iterator

import click


@contextlib.contextmanager
def progress_bar(
    description: str, *, unit: str = "", enabled: bool = True
) -> Iterator[Callable[..., None]]:
    """Yield ``update(done, total, label=None)``; shows a bar on stderr when it is a
    terminal and ``enabled``, else does nothing (so JSON output and pipes stay clean).
    ``total`` may be None (unknown: the count is shown). A ``label`` gets a bar of its
    own (e.g. one per ingested stream); without one, the bar is ``description``'s."""
    if not enabled or not sys.stderr.isatty():
        yield lambda done, total, label=None: None
        return
    bars: dict[str, object] = {}
    stack = contextlib.ExitStack()

    def update(done: int, total: int | None, label: str | None = None) -> None:
        name = label or description
        bar = bars.get(name)
        if bar is None or (total is not None and bar.length != total):
            if bar is not None:
                bar.render_finish()
            bar = stack.enter_context(click.progressbar(
                length=total if total is not None else max(done, 1), label=name, file=sys.stderr,
                show_pos=True, show_eta=total is not None, item_show_func=lambda _=None: unit or None))
            bars[name] = bar
        if total is None and done > bar.length:
            bar.length = done
        if done > bar.pos:
            bar.update(done - bar.pos)

    with stack:
        yield update
