"""Dependencies point one way: ``schemas`` <- ``ledger`` <- capture/read side/syncer/ingest
<- ``cli``. Checked on the source (every import statement, also inside functions), so a
lazy import cannot hide a wrong-way dependency."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PROJECT = {"schemas", "ledger", "nervous_system", "replay", "syncer", "hub", "ingest", "cli", "ui"}

#: package -> the project modules it may import (a name allows the package and its
#: submodules; "hub.protocol" allows only that module).
ALLOWED = {
    "schemas": {"schemas"},
    "ledger": {"schemas", "ledger"},
    "nervous_system": {"schemas", "ledger", "nervous_system"},
    "replay": {"schemas", "ledger", "replay", "hub.protocol", "hub.errors"},
    # the syncer is written against the hub client protocol; hub.client (no fdb import)
    # is the daemon process's factory for a client
    "syncer": {"schemas", "ledger", "syncer", "hub.protocol", "hub.errors", "hub.client"},
    "ingest": {"schemas", "ledger", "ingest", "hub.protocol", "hub.errors"},
    "ui": {"schemas", "ledger", "replay", "ingest", "ui"},
}


def imports_of(path: Path) -> set[str]:
    """Every absolute module name imported anywhere in ``path``."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def allowed(name: str, rules: set[str]) -> bool:
    return any(name == r or name.startswith(r + ".") for r in rules)


@pytest.mark.parametrize("package", sorted(ALLOWED))
def test_package_imports_point_one_way(package):
    wrong = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for name in imports_of(path):
            if name.split(".")[0] in PROJECT and not allowed(name, ALLOWED[package]):
                wrong.append(f"{path.relative_to(ROOT)} imports {name}")
    assert not wrong, "\n".join(wrong)


def test_the_check_sees_lazy_imports(tmp_path):
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from cli.common import AppContext\n    import hub.hub\n")
    assert imports_of(module) == {"cli.common", "hub.hub"}
    assert not allowed("cli.common", ALLOWED["ledger"]) and allowed("ledger.store", ALLOWED["ledger"])
