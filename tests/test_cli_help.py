"""Every command and subcommand's --help has examples (issue: a CLI that works the way git
users expect)."""

from __future__ import annotations

import click
import pytest
from click.testing import CliRunner

from cli import COMMANDS, cli


def walk(group: click.Group, ctx: click.Context, prefix: list[str]):
    for name in group.list_commands(ctx):
        cmd = group.get_command(ctx, name)
        if cmd is None:
            continue
        yield [*prefix, name], cmd
        if isinstance(cmd, click.Group):
            yield from walk(cmd, click.Context(cmd, parent=ctx, info_name=name), [*prefix, name])


def all_commands():
    ctx = click.Context(cli, info_name="ledger")
    return list(walk(cli, ctx, []))


@pytest.mark.parametrize("path", [" ".join(p) for p, _ in all_commands()])
def test_help_has_examples(path):
    res = CliRunner().invoke(cli, [*path.split(), "--help"])
    assert res.exit_code == 0, res.output
    assert "Examples:" in res.output, f"`ledger {path} --help` has no examples"
    assert "ledger " in res.output.split("Examples:", 1)[1]


def test_every_registered_command_is_walked():
    names = {p[0] for p, _ in all_commands()}
    assert set(COMMANDS) <= names
