"""Render query results for people and scripts: one function, ``render``.

::

    from cli.output import render, FORMATS
    render(["agent_id", "events"], rows, "auto", title="activity per agent")

Formats (``FORMATS``):

* ``table``   — aligned columns, header underlined (bold on a terminal);
* ``vertical``— one ``name | value`` block per row, like psql's ``\\x``;
* ``auto``    — ``table``, or ``vertical`` when the table is wider than the terminal;
* ``csv``     — RFC 4180 with a header row (values as text, None/NaN empty);
* ``json``    — one array of objects; ``jsonl`` — one object per line.

Values: None and NaN show as ``—`` in table/vertical, empty in CSV, ``null`` in JSON (as
do ±inf); datetimes are RFC 3339 in JSON/CSV (``...Z`` for UTC); bytes are hex; arrays
are JSON arrays (table cells: ``a, b``); other objects (Decimal, UUID, IP) as text.

Rows may be any iterable (a streamed result): csv/json/jsonl are written as they come;
table/vertical read them all to size the columns. On a terminal, colour is used and
table/vertical output longer than the screen goes through the pager (``$PAGER``, else
``less``, with ``LESS=FRX`` unless ``LESS`` is set: git's behaviour); piped output has
neither. The row count goes to stderr for table/vertical.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
import os
import shutil
import sys
from typing import Any, Iterable, Iterator, Sequence

import click

FORMATS = ("auto", "table", "vertical", "csv", "json", "jsonl")
#: Shown for None/NaN in table and vertical output.
EMPTY = "—"

format_option = click.option(
    "--format", "fmt", type=click.Choice(FORMATS), default="auto", show_default=True,
    help="auto: a table, vertical when wider than the terminal; csv, json, jsonl for scripts.")
json_flag = click.option("--json", "as_json", is_flag=True, help="Same as --format json.")


def _is_nan(value: Any) -> bool:
    return isinstance(value, float) and (math.isnan(value) or math.isinf(value))


def _rfc3339(value: dt.datetime | dt.date) -> str:
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.timezone.utc)
        return value.isoformat().replace("+00:00", "Z")
    return value.isoformat()


def json_value(value: Any) -> Any:
    """``value`` as a JSON-able value (see the module doc)."""
    if value is None or isinstance(value, (bool, int, str)):
        return value
    if isinstance(value, float):
        return None if _is_nan(value) else value
    if isinstance(value, (dt.datetime, dt.date)):
        return _rfc3339(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [json_value(v) for v in value]
    return str(value)


def text_value(value: Any, empty: str = EMPTY) -> str:
    """``value`` as one line of text (``empty`` for None/NaN)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return empty
    if isinstance(value, (dt.datetime, dt.date)):
        return _rfc3339(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, (list, tuple)):
        return ", ".join(text_value(v, "") for v in value)
    if isinstance(value, dict):
        return json.dumps(json_value(value), ensure_ascii=False)
    text = str(value)
    return text.replace("\r", "\\r").replace("\n", "\\n").replace("\t", " ") if any(
        c in text for c in "\r\n\t") else text


def _terminal() -> tuple[bool, int, int]:
    tty = sys.stdout.isatty()
    size = shutil.get_terminal_size((100, 24))
    return tty, size.columns, size.lines


def _table_lines(columns: Sequence[str], cells: list[list[str]], color: bool) -> list[str]:
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    header = "  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip()
    rule = "  ".join("-" * w for w in widths)
    lines = [click.style(header, bold=True) if color else header, rule]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in cells]
    return lines


def _vertical_lines(columns: Sequence[str], cells: list[list[str]], color: bool) -> list[str]:
    width = max((len(c) for c in columns), default=0)
    lines = []
    for n, row in enumerate(cells, 1):
        head = f"-[ RECORD {n} ]" + "-" * max(4, width - 8)
        lines.append(click.style(head, bold=True) if color else head)
        lines += [f"{c.ljust(width)} | {v}" for c, v in zip(columns, row)]
    return lines


def _write_lines(lines: list[str], tty: bool, height: int, color: bool) -> None:
    if tty and len(lines) >= height - 1:
        os.environ.setdefault("LESS", "FRX")
        click.echo_via_pager((line + "\n" for line in lines), color=color)
    else:
        for line in lines:
            click.echo(line, color=color)


def page(lines: list[str]) -> None:
    """Print text ``lines``: through the pager when stdout is a terminal and they do not
    fit on the screen (git's behaviour), colour only on a terminal."""
    tty, _, height = _terminal()
    _write_lines(lines, tty, height, tty)


def render(columns: Sequence[str], rows: Iterable[Sequence[Any]], fmt: str = "auto", *,
           title: str | None = None) -> int:
    """Write ``rows`` (each a sequence in ``columns`` order) to stdout in ``fmt`` (one of
    ``FORMATS``); ``title`` is printed above table/vertical output (stderr otherwise).
    Returns the number of rows written. Errors raised while iterating ``rows`` (a
    streamed result hitting a limit) propagate after what was already written."""
    columns = list(columns)
    if fmt not in FORMATS:
        raise click.BadParameter(f"{fmt!r}: use one of {', '.join(FORMATS)}", param_hint="--format")
    if fmt == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(columns)
        count = 0
        for row in rows:
            writer.writerow([text_value(v, "") for v in row])
            count += 1
        return count
    if fmt in ("json", "jsonl"):
        return _write_json(columns, rows, fmt == "jsonl")
    tty, width, height = _terminal()
    color = tty and "NO_COLOR" not in os.environ
    cells = [[text_value(v) for v in row] for row in rows]
    if fmt == "auto":
        needed = sum(max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)) + 2 * (len(columns) - 1)
        fmt = "vertical" if tty and needed > width else "table"
    lines = _table_lines(columns, cells, color) if fmt == "table" else _vertical_lines(columns, cells, color)
    if title:
        lines.insert(0, click.style(title, bold=True) if color else title)
    _write_lines(lines, tty, height, color)
    click.echo(f"({len(cells)} row{'s' if len(cells) != 1 else ''})", err=True)
    return len(cells)


def _write_json(columns: list[str], rows: Iterable[Sequence[Any]], lines: bool) -> int:
    out = sys.stdout
    count = 0
    documents: Iterator[str] = (
        json.dumps({c: json_value(v) for c, v in zip(columns, row)}, ensure_ascii=False) for row in rows)
    if lines:
        for doc in documents:
            out.write(doc + "\n")
            count += 1
        return count
    out.write("[")
    for doc in documents:
        out.write(("\n  " if count == 0 else ",\n  ") + doc)
        count += 1
    out.write("\n]\n" if count else "]\n")
    return count
