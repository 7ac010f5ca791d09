"""``ledger blame`` and its diff engine.

* ``replay.xdiff`` finds exactly the hunks ``git diff --no-index -U0`` finds (random
  texts built to exercise every heuristic: repeated lines, blank lines, indentation,
  missing final newlines, long common tails).
* On this repository's own history (cloned, imported), each line's commit equals
  ``git blame --first-parent --porcelain``'s, for every file at HEAD and at older
  commits, renamed files included.
* Blame follows renames and changes made by shell commands (``ledger exec``), links each
  line to its decision, and ``ledger blame --json`` prints the documented fields.
"""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from ledger import Ledger
from replay import LocalHistory
from replay.blame import PathNotInTree, attribute, blame, lineage
from replay.xdiff import diff_hunks

REPO_ROOT = Path(__file__).resolve().parent.parent
_HUNK = re.compile(rb"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@", re.M)


def git_hunks(tmp_path: Path, a: bytes, b: bytes) -> list[tuple[int, int, int, int]]:
    """The hunks of ``git diff --no-index -U0`` as 0-based (start_a, count_a, start_b, count_b)."""
    (tmp_path / "a").write_bytes(a)
    (tmp_path / "b").write_bytes(b)
    out = subprocess.run(["git", "diff", "--no-index", "-U0", "--no-color", "a", "b"],
                         cwd=tmp_path, capture_output=True).stdout
    hunks = []
    for m in _HUNK.finditer(out):
        c1 = int(m[2]) if m[2] is not None else 1
        c2 = int(m[4]) if m[4] is not None else 1
        hunks.append((int(m[1]) - (1 if c1 else 0), c1, int(m[3]) - (1 if c2 else 0), c2))
    return hunks


def _edited(rng: random.Random, lines: list[bytes], vocab: list[bytes], edits: int, run: int) -> list[bytes]:
    out = list(lines)
    for _ in range(edits):
        at = rng.randint(0, len(out))
        roll = rng.random()
        if roll < 0.4:
            out[at:at] = [rng.choice(vocab) for _ in range(rng.randint(1, run))]
        elif roll < 0.7 and out:
            del out[at:at + rng.randint(1, run)]
        elif out:
            out[min(at, len(out) - 1)] = rng.choice(vocab)
    return out


def test_xdiff_agrees_with_git_diff_on_small_texts(tmp_path):
    rng = random.Random(11)
    alphabet = [b"a\n", b"b\n", b"c\n", b"\n", b"  x\n", b"\tif y:\n", b"    z\n", b"}\n", b"{\n"]
    for case in range(250):
        vocab = alphabet[:rng.randint(2, len(alphabet))]
        a = [rng.choice(vocab) for _ in range(rng.randint(0, 50))]
        b = _edited(rng, a, vocab, rng.randint(0, 8), 5)
        a_bytes = b"".join(a) + (b"no newline" if rng.random() < 0.2 else b"")
        b_bytes = b"".join(b) + (b"no newline" if rng.random() < 0.2 else b"")
        assert diff_hunks(a_bytes, b_bytes) == git_hunks(tmp_path, a_bytes, b_bytes), (case, a_bytes, b_bytes)


def test_xdiff_agrees_with_git_diff_on_large_texts(tmp_path):
    """Thousands of lines, many equal ones, heavy edits and 1 KiB common tails: the
    cleanup, cost-limit and snake heuristics and the tail trimming all take part."""
    rng = random.Random(5)
    for case in range(12):
        spread = rng.choice([5, 50, 500, 5000])
        vocab = [f"line {rng.randint(0, spread)}\n".encode() for _ in range(200)]
        vocab += [b"\n", b"    }\n", b"  return x;\n"]
        a = [rng.choice(vocab) for _ in range(rng.randint(200, 2500))]
        b = _edited(rng, a, vocab, rng.randint(1, 150), 30)
        tail = b"".join(rng.choice(vocab) for _ in range(rng.randint(0, 400)))
        a_bytes, b_bytes = b"".join(a) + tail, b"".join(b) + tail
        assert diff_hunks(a_bytes, b_bytes) == git_hunks(tmp_path, a_bytes, b_bytes), case


# ------------------------------------------------------------------ this repository's history
@pytest.fixture(scope="module")
def own_history(tmp_path_factory):
    """This repository cloned and imported: (clone path, ledger path, first-parent commits)."""
    if not (REPO_ROOT / ".git").exists():
        pytest.fail(f"{REPO_ROOT} is not a git checkout: test_blame compares with git blame on "
                    "the project's own history; run the tests from a clone")
    if subprocess.run(["git", "-C", str(REPO_ROOT), "rev-parse", "--is-shallow-repository"],
                      capture_output=True, text=True).stdout.strip() == "true":
        pytest.fail("the checkout is shallow: `git fetch --unshallow` first (test_blame needs its history)")
    base = tmp_path_factory.mktemp("own-history")
    clone = base / "repo"
    subprocess.run(["git", "clone", "-q", "--no-local", str(REPO_ROOT), str(clone)], check=True)
    db = base / "ledger.db"
    from nervous_system.gitimport import import_git

    with Ledger(db) as lg:
        import_git(lg, clone, tenant_id="default", project_id="self")
    commits = subprocess.check_output(["git", "-C", str(clone), "rev-list", "--first-parent", "HEAD"],
                                      text=True).split()
    return clone, db, commits


def git_blame_commits(repo: Path, commit: str, path: str) -> list[str]:
    """The commit of each line, from ``git blame --first-parent --porcelain``."""
    out = subprocess.run(["git", "-C", str(repo), "blame", "--first-parent", "--porcelain", commit, "--", path],
                         capture_output=True, check=True).stdout.decode("utf-8", "replace")
    commits = []
    for line in out.split("\n"):
        parts = line.split(" ")
        if len(parts) >= 3 and re.fullmatch(r"[0-9a-f]{40}", parts[0]) and parts[1].isdigit():
            commits.append(parts[0])
    return commits


def _files_at(repo: Path, commit: str) -> list[str]:
    return [f for f in subprocess.check_output(
        ["git", "-C", str(repo), "ls-tree", "-r", "--name-only", commit], text=True).split("\n") if f]


def test_blame_agrees_with_git_blame_on_the_projects_own_history(own_history):
    clone, db, commits = own_history
    assert len(commits) >= 10, "the project's history is too short to be a test"
    checked = renamed = multi_version = 0
    with Ledger(db) as lg:
        history = LocalHistory(lg, "default", "self")
        # every file at HEAD, and at a spread of older commits
        for commit in commits[::max(1, len(commits) // 6)]:
            rows = list(history.changes(history.resolve(commit)))
            for path in _files_at(clone, commit):
                versions = lineage(rows, path)
                mine = [row.commit_hash for row in attribute(versions, history.read_blob)[1]]
                assert mine == git_blame_commits(clone, commit, path), f"{path} at {commit[:10]}"
                checked += 1
                renamed += any(v.operation == "rename" for v in versions)
                multi_version += len({v.commit_hash for v in versions}) >= 3
    assert checked > 100 and renamed >= 1 and multi_version >= 10, (checked, renamed, multi_version)


def test_blame_cli_on_imported_history(own_history, monkeypatch):
    clone, db, commits = own_history
    from cli import cli

    result = CliRunner().invoke(cli, ["--db", str(db), "blame", "README.md", "--at", commits[0], "--json"])
    assert result.exit_code == 0, result.output
    lines = json.loads(result.output)
    assert [line["commit"] for line in lines] == git_blame_commits(clone, commits[0], "README.md")
    first = lines[0]
    assert {"line", "event_id", "agent_id", "session_id", "time", "commit", "rationale"} <= set(first)
    assert first["line"] == 1 and first["session_id"] == first["commit"]  # imports: session = commit
    message = subprocess.check_output(["git", "-C", str(clone), "log", "-1", "--format=%B", first["commit"]],
                                      text=True).strip().splitlines()[0]
    assert first["rationale"] == message[:120]


# ------------------------------------------------------------------ agents, renames, shell commands
def test_blame_follows_renames_and_shell_commands(tmp_path, ledger_path):
    from nervous_system import Recorder
    from nervous_system.exec import run_and_record
    from opentelemetry.trace import NoOpTracer

    work = tmp_path / "work"
    work.mkdir()
    with Ledger(ledger_path) as lg:
        alice = Recorder(lg, project_id="web", agent_id="alice", agent_role="architect")
        why_a = alice.decision("write the parser", confidence=0.9)
        first = alice.file_change("src/parse.py", b"def parse(text):\n    return text.split()\n")
        bob = Recorder(lg, project_id="web", agent_id="bob", agent_role="coder")
        why_b = bob.decision("handle empty input\nsecond line of the rationale", confidence=0.6)
        second = bob.file_change("src/parse.py", b"def parse(text):\n    if not text:\n        return []\n"
                                                 b"    return text.split()\n")
        # the work tree mirrors the ledger, then a shell command renames and edits the file
        (work / "src").mkdir()
        (work / "src" / "parse.py").write_bytes(b"def parse(text):\n    if not text:\n        return []\n"
                                                b"    return text.split()\n")
        shell = Recorder(lg, project_id="web", agent_id="shell", agent_role="operator")
        # (`ledger exec` sees a rename when the content moved unchanged: one command each)
        for command in ("mv src/parse.py src/parser.py", "sed -i 's/def parse(/def parse_words(/' src/parser.py"):
            result = run_and_record(["sh", "-c", command], recorder=shell, tracer=NoOpTracer(), root=work)
            assert result.exit_code == 0 and len(result.changes) == 1
        assert result.changes[0][0].op == "modify"
        history = LocalHistory(lg, "default", "web")
        found = blame(history, "src/parser.py", history.resolve("now"))
        by_line = {line.line: line for line in found.lines}
        assert [line.content for line in found.lines] == [
            "def parse_words(text):", "    if not text:", "        return []", "    return text.split()"]
        assert by_line[1].agent_id == "shell" and by_line[1].rationale.startswith("run `sh -c 'sed")
        assert by_line[2].event_id == by_line[3].event_id == second
        assert by_line[2].rationale == "handle empty input" and by_line[2].decision_id == why_b
        assert by_line[4].event_id == first and by_line[4].agent_id == "alice"
        assert by_line[4].decision_id == why_a and by_line[4].path == "src/parse.py"
        # before the shell command, under the old name
        before = blame(history, "src/parse.py", history.resolve(second))
        assert [line.event_id for line in before.lines] == [first, second, second, first]
        renames = [v for v in lineage(list(history.changes(history.resolve("now"))), "src/parser.py")
                   if v.operation == "rename"]
        assert len(renames) == 1 and renames[0].previous_path == "src/parse.py"
        with pytest.raises(PathNotInTree):
            blame(history, "src/parse.py", history.resolve("now"))
