"""cli/output.py: formats, values (None/NaN, datetimes, bytes), auto layout."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import math

import pytest

from cli import output
from cli.output import json_value, render, text_value

COLUMNS = ["name", "when", "score", "blob", "tags", "missing"]
ROWS = [("a", dt.datetime(2026, 1, 2, 3, 4, 5, 600000, tzinfo=dt.timezone.utc), math.nan, b"\x01\xff",
         ["x", "y"], None),
        ("b\nc", dt.datetime(2026, 1, 2), 0.5, b"", [], None)]


def test_values():
    assert json_value(math.nan) is None and json_value(math.inf) is None
    assert json_value(ROWS[0][1]) == "2026-01-02T03:04:05.600000Z"
    assert json_value(ROWS[1][1]) == "2026-01-02T00:00:00Z"
    assert json_value(b"\x01\xff") == "01ff" and json_value(("a", 1)) == ["a", 1]
    assert text_value(None) == output.EMPTY and text_value(math.nan) == output.EMPTY
    assert text_value(None, "") == "" and text_value("b\nc") == "b\\nc"


def test_json_and_jsonl(capsys):
    assert render(COLUMNS, iter(ROWS), "json") == 2
    data = json.loads(capsys.readouterr().out)
    assert data[0] == {"name": "a", "when": "2026-01-02T03:04:05.600000Z", "score": None, "blob": "01ff",
                       "tags": ["x", "y"], "missing": None}
    render(COLUMNS, ROWS, "jsonl")
    lines = capsys.readouterr().out.splitlines()
    assert [json.loads(x)["name"] for x in lines] == ["a", "b\nc"]
    render(COLUMNS, [], "json")
    assert json.loads(capsys.readouterr().out) == []


def test_csv(capsys):
    render(COLUMNS, ROWS, "csv")
    rows = list(csv.reader(io.StringIO(capsys.readouterr().out)))
    assert rows[0] == COLUMNS and rows[1][2] == "" and rows[1][5] == "" and "nan" not in str(rows)


def test_table_vertical_and_auto(capsys, monkeypatch):
    render(COLUMNS, ROWS, "table")
    out = capsys.readouterr()
    assert out.out.splitlines()[0].split() == COLUMNS and "nan" not in out.out and output.EMPTY in out.out
    assert "(2 rows)" in out.err
    render(COLUMNS, ROWS, "vertical", title="report")
    text = capsys.readouterr().out
    assert text.startswith("report\n-[ RECORD 1 ]") and "score   | —" in text
    # auto: vertical when the table is wider than the terminal (a terminal only)
    monkeypatch.setattr(output, "_terminal", lambda: (True, 20, 1000))
    render(COLUMNS, ROWS, "auto")
    assert "-[ RECORD 2 ]" in capsys.readouterr().out
    monkeypatch.setattr(output, "_terminal", lambda: (True, 500, 1000))
    render(COLUMNS, ROWS, "auto")
    assert "RECORD" not in capsys.readouterr().out


def test_long_output_on_a_terminal_goes_through_the_pager(monkeypatch):
    seen = {}
    monkeypatch.setattr(output, "_terminal", lambda: (True, 500, 10))
    monkeypatch.delenv("LESS", raising=False)
    monkeypatch.setattr(output.click, "echo_via_pager",
                        lambda gen, color=None: seen.update(text="".join(gen), less=output.os.environ.get("LESS")))
    render(["n"], [(i,) for i in range(50)], "table")
    assert seen["less"] == "FRX" and seen["text"].count("\n") == 52


def test_unknown_format():
    with pytest.raises(Exception, match="use one of"):
        render(["a"], [], "xml")
