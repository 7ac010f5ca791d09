"""`ledger import git` records what `git archive` exports: gitattributes applied.

export-ignore (files and directories), export-subst ($Format:...$ expanded per commit),
text/eol/crlf line endings, core.autocrlf, ident, nested .gitattributes, attributes that
change midway, $GIT_DIR/info/attributes; the fast path when nothing can apply; and
``--raw-blobs`` (the committed bytes).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from click.testing import CliRunner

from ledger import Ledger
from cli import cli
from nervous_system.gitimport.gitattributes import CONVERT, IGNORED, RAW, SUBST, ConvertConfig, classify
from nervous_system.gitimport import import_git
from replay import resolve_moment
from replay import replay_local
from tests.git_fixtures import GitRepo, assert_same_tree, git_archive_tree, snapshot


def build_attributes_history(path: Path) -> tuple[GitRepo, dict[str, str]]:
    """A history whose archive differs from the committed bytes in every way git
    offers; returns the repository and {label: commit}."""
    r = GitRepo(path)
    marks: dict[str, str] = {}
    r.write(".gitattributes", "\n".join([
        "/build export-ignore",
        "secret.txt export-ignore",
        "VERSION.txt export-subst",
        ".git_archival.txt export-subst",
        "*.txt text eol=crlf",
        "*.bat eol=crlf",
        "id.c ident",
        "*.bin binary",
        "",
    ]))
    r.write("build/out.o", b"\x7fELF\x00object")
    r.write("build/sub/log.txt", "built\n")
    r.write("secret.txt", "password\n")
    r.write("VERSION.txt", "commit $Format:%H$\ndate $Format:%cd$\n")
    r.write(".git_archival.txt", "node: $Format:%H$\nnode-date: $Format:%cI$\nref-names: $Format:%D$\n")
    r.write("notes.txt", "one\ntwo\nthree\n")
    r.write("already_crlf.txt", b"dos\r\nfile\r\n")
    r.write("mixed.txt", b"lf\ncrlf\r\nlf\n")
    r.write("run.bat", "@echo off\necho hi\n")
    r.write("id.c", "/* $Id$ */\nint x;\n")
    r.write("crlf_data.dat", b"raw\r\nbytes\r\n")
    r.write("legacy.cfg", b"committed\r\nwith crlf\r\n")  # gets `*.cfg eol=crlf` later
    r.write("blob.bin", b"\x00\x01line\nline\n")
    r.write("tool.sh", "#!/bin/sh\necho tool\n", executable=True)
    r.write("long/" + "é" * 60 + " name.txt", "a name over 100 bytes: a pax header in the tar\n")
    r.write("plain.md", "# plain\n")
    r.symlink("link.txt", "notes.txt")  # a symlink named *.txt: never converted
    r.write("docs/guide.md", "guide\n")
    r.write("docs/deep/page.txt", "page\n")
    r.write("sub/.gitattributes", "*.md export-ignore\nlocal.cfg text eol=crlf\n")
    r.write("sub/a.md", "nested ignore\n")
    r.write("sub/local.cfg", "key=value\n")
    r.write("sub/keep.py", "print('keep')\n")
    marks["root"] = r.commit("root: attributes of every kind")

    r.write("notes.txt", "one\ntwo\nthree\nfour\n")
    r.write("new.txt", "fresh\n")
    r.write("id.c", "/* $Id$ */\nint x;\nint y;\n")
    r.write("build/more.txt", "more build output\n")
    r.write("secret.txt", "password2\n")
    marks["edits"] = r.commit("edit converted, ignored and ident files")

    r.git("mv", "notes.txt", "renamed.txt")
    r.git("mv", "plain.md", "plain.txt")  # raw -> converted by the rename
    r.git("mv", "run.bat", "build/run.bat")  # into an ignored directory
    r.git("mv", "build/out.o", "out.o")  # out of an ignored directory
    marks["renames"] = r.commit("renames across attribute boundaries")

    r.write(".gitattributes", (path / ".gitattributes").read_text() + "docs export-ignore\n*.cfg eol=crlf\n"
            "*.py text eol=crlf\n")
    marks["attrs-added"] = r.commit("ignore docs, CRLF for existing .cfg and .py files")

    r.write("docs/added-while-ignored.txt", "hidden\n")
    r.write("sub/keep.py", "print('keep')\nprint('more')\n")
    marks["while-ignored"] = r.commit("change things while docs is ignored")

    text = (path / ".gitattributes").read_text().replace("docs export-ignore\n", "")
    r.write(".gitattributes", text + ".gitattributes export-ignore\n")
    marks["attrs-removed"] = r.commit("docs exported again; .gitattributes itself ignored")

    r.remove("sub/.gitattributes")
    r.chmod("already_crlf.txt", True)
    marks["nested-removed"] = r.commit("nested attributes gone; a converted file becomes executable")

    r.write("sub/.gitattributes", "keep.py -text\n")
    r.write("secret.txt", "now a regular file name again\n")
    r.write(".gitattributes", (path / ".gitattributes").read_text().replace("secret.txt export-ignore\n", ""))
    marks["unignore-file"] = r.commit("secret.txt exported; keep.py not text")

    r.commit("nothing but a new commit hash for export-subst", allow_empty=True)
    r.remove("VERSION.txt")
    r.remove("build")
    # a CRLF blob under `*.txt text eol=crlf` (committed past the index's normalisation)
    r.write("raw_crlf.txt", b"blob\r\nhas crlf\r\nand lf\n")
    r.git("add", "-A")
    blob = r.git("hash-object", "-w", "--no-filters", "raw_crlf.txt")
    r.git("update-index", "--cacheinfo", f"100644,{blob},raw_crlf.txt")
    r.time += r.step
    r.git("commit", "-q", "-m", "drop the subst file and the ignored directory; a raw CRLF blob", at=r.time)
    marks["last"] = r.head()
    return r, marks


def replay_at(lg: Ledger, project: str, commit: str, out: Path) -> Path:
    moment = resolve_moment(lg, "default", project, commit)
    result = replay_local(lg, "default", project, moment, out, strict=True)
    assert not result.conflicts, result.conflicts
    return out


def assert_every_commit_matches_archive(lg: Ledger, project: str, repo: GitRepo, tmp: Path) -> int:
    commits = repo.first_parent_commits()
    for i, commit in enumerate(commits):
        out = replay_at(lg, project, commit, tmp / f"{project}-replay-{i}")
        assert_same_tree(out, git_archive_tree(repo, commit, tmp / f"{project}-archive-{i}"))
    return len(commits)


def committed_tree(repo: GitRepo, commit: str) -> dict[bytes, tuple]:
    """The committed blobs of ``commit`` in ``snapshot`` form (no attributes applied)."""
    listing = subprocess.run(["git", "-C", str(repo.path), "ls-tree", "-r", "-z", commit],
                             check=True, capture_output=True).stdout
    out: dict[bytes, tuple] = {}
    for item in listing.split(b"\x00"):
        if not item:
            continue
        meta, path = item.split(b"\t", 1)
        mode, _, sha = meta.split()
        data = subprocess.run(["git", "-C", str(repo.path), "cat-file", "blob", sha.decode()],
                              check=True, capture_output=True).stdout
        out[path] = ("link", data) if mode == b"120000" else ("file", data, mode == b"100755")
    return out


@pytest.fixture(scope="module")
def attributes_repo(tmp_path_factory):
    base = tmp_path_factory.mktemp("attrs")
    repo, marks = build_attributes_history(base / "repo")
    db = base / "ledger.db"
    with Ledger(db) as lg:
        summary = import_git(lg, repo.path, project_id="attrs")
    return repo, marks, db, summary


def test_replay_equals_git_archive_at_every_commit(attributes_repo, tmp_path):
    repo, marks, db, summary = attributes_repo
    assert summary.attributes == "applied"
    assert any(".gitattributes" in s for s in summary.attribute_sources)
    # at most one git archive per commit, and only for paths archive can rewrite
    assert 0 < summary.git_archive_runs <= summary.commits
    with Ledger(db) as lg:
        assert assert_every_commit_matches_archive(lg, "attrs", repo, tmp_path) == len(marks) + 1


def test_what_the_archive_view_looks_like(attributes_repo, tmp_path):
    """Spot checks, so a mistake shared with git archive's reading cannot hide."""
    _, marks, db, _ = attributes_repo
    with Ledger(db) as lg:
        root = snapshot(replay_at(lg, "attrs", marks["root"], tmp_path / "root"))
        added = snapshot(replay_at(lg, "attrs", marks["attrs-added"], tmp_path / "added"))
        removed = snapshot(replay_at(lg, "attrs", marks["attrs-removed"], tmp_path / "removed"))
        last = snapshot(replay_at(lg, "attrs", marks["last"], tmp_path / "last"))
    assert not any(p.startswith(b"build/") for p in root) and b"secret.txt" not in root
    assert root[b"notes.txt"][1] == b"one\r\ntwo\r\nthree\r\n"
    assert root[b"already_crlf.txt"][1] == b"dos\r\nfile\r\n"
    assert root[b"run.bat"][1] == b"@echo off\r\necho hi\r\n"
    assert root[b"crlf_data.dat"][1] == b"raw\r\nbytes\r\n" and root[b"blob.bin"][1] == b"\x00\x01line\nline\n"
    assert root[b"id.c"][1].startswith(b"/* $Id: ") and root[b"link.txt"] == ("link", b"notes.txt")
    assert root[b"VERSION.txt"][1].startswith(f"commit {marks['root']}\r\ndate ".encode())  # *.txt: CRLF too
    assert f"node: {marks['root']}".encode() in root[b".git_archival.txt"][1]
    assert b"sub/a.md" not in root and root[b"sub/local.cfg"][1] == b"key=value\r\n"
    assert root[b"tool.sh"][2] is True
    assert root[("long/" + "é" * 60 + " name.txt").encode()][1].endswith(b"tar\r\n")
    # .gitattributes changed midway: docs/ left out, existing .cfg/.py files converted
    assert not any(p.startswith(b"docs/") for p in added)
    assert added[b"sub/keep.py"][1] == b"print('keep')\r\n"
    # ... and back: docs/ again, including the file added while it was ignored
    assert removed[b"docs/added-while-ignored.txt"][1] == b"hidden\r\n"
    assert removed[b"docs/guide.md"][1] == b"guide\n" and b".gitattributes" not in removed
    assert b"VERSION.txt" not in last and not any(p.startswith(b"build/") for p in last)
    assert last[b"secret.txt"][1] == b"now a regular file name again\r\n"
    assert last[b"sub/keep.py"][1] == b"print('keep')\nprint('more')\n"  # -text in the nested file
    assert last[b"raw_crlf.txt"][1] == b"blob\r\nhas crlf\r\nand lf\r\n"
    assert added[b"legacy.cfg"][1] == root[b"legacy.cfg"][1] == b"committed\r\nwith crlf\r\n"


def test_events_of_attribute_changes(attributes_repo):
    """Renames are kept where both sides still apply; ignoring is a delete, un-ignoring
    a create; export-subst changes at every commit."""
    _, marks, db, _ = attributes_repo
    with Ledger(db) as lg:
        def changes(label):
            return {s.event.state_change.target_resource: s.event.state_change
                    for s in lg.events(commit=marks[label], kind="state_change")}

        renames = changes("renames")
        assert renames["renamed.txt"].operation.value == "rename"
        assert renames["renamed.txt"].previous_resource == "notes.txt"
        assert renames["plain.txt"].operation.value == "rename"  # converted on the way
        assert renames["run.bat"].operation.value == "delete"  # moved into build/
        assert renames["out.o"].operation.value == "create"  # moved out of build/
        assert "build/run.bat" not in renames and "build/out.o" not in renames
        added = changes("attrs-added")
        assert {p for p, c in added.items() if c.operation.value == "delete"} == {"docs/guide.md", "docs/deep/page.txt"}
        assert "sub/local.cfg" not in added  # already CRLF through the nested .gitattributes
        assert added["sub/keep.py"].operation.value == "modify"
        assert "VERSION.txt" in added and "VERSION.txt" in changes("while-ignored")
        assert "docs/added-while-ignored.txt" not in changes("while-ignored")
        removed = changes("attrs-removed")
        assert removed[".gitattributes"].operation.value == "delete"
        assert {p for p, c in removed.items() if c.operation.value == "create"} == {
            "docs/guide.md", "docs/deep/page.txt", "docs/added-while-ignored.txt"}


def test_reimport_adds_nothing_and_ids_are_deterministic(attributes_repo, tmp_path):
    repo, _, db, _ = attributes_repo
    with Ledger(db) as lg:
        before = {s.event_id: s.body for s in lg.events()}
        again = import_git(lg, repo.path, project_id="attrs")
        assert (again.events_added, again.commits_imported, again.new_content_bytes) == (0, 0, 0)
        assert again.events_present == len(before) and again.git_archive_runs == 0
        assert {s.event_id: s.body for s in lg.events()} == before
    with Ledger(tmp_path / "other.db") as lg:
        import_git(lg, repo.path, project_id="attrs")
        assert {s.event_id: s.body for s in lg.events()} == before


def test_incremental_import_continues_with_attributes(attributes_repo, tmp_path):
    """Import up to the middle of the history, then the rest: the ledger's tree seeds
    the comparison, and every commit still equals git archive."""
    repo, marks, _, _ = attributes_repo
    with Ledger(tmp_path / "inc.db") as lg:
        import_git(lg, repo.path, project_id="attrs", rev=marks["renames"])
        rest = import_git(lg, repo.path, project_id="attrs")
        assert rest.commits_present == 3 and rest.commits_imported == rest.commits - 3
        assert_every_commit_matches_archive(lg, "attrs", repo, tmp_path)


def test_raw_blobs_records_the_committed_bytes(attributes_repo, tmp_path):
    repo, marks, _, _ = attributes_repo
    with Ledger(tmp_path / "raw.db") as lg:
        summary = import_git(lg, repo.path, project_id="raw", raw_blobs=True)
        assert summary.attributes == "ignored (--raw-blobs)" and summary.git_archive_runs == 0
        for i, commit in enumerate(repo.first_parent_commits()):
            out = replay_at(lg, "raw", commit, tmp_path / f"raw-{i}")
            assert snapshot(out) == committed_tree(repo, commit)
    assert committed_tree(repo, marks["root"])[b"crlf_data.dat"][1] == b"raw\r\nbytes\r\n"
    assert committed_tree(repo, marks["last"])[b"raw_crlf.txt"][1] == b"blob\r\nhas crlf\r\nand lf\n"
    assert committed_tree(repo, marks["root"])[b"notes.txt"][1] == b"one\ntwo\nthree\n"


def test_attributes_import_after_a_raw_import_corrects_from_the_next_commit(attributes_repo, tmp_path):
    """Commits already stored stay as recorded; the first new commit compares every
    path archive rewrites with what the ledger holds and corrects it."""
    source, _, _, _ = attributes_repo
    subprocess.run(["git", "clone", "-q", str(source.path), str(tmp_path / "clone")], check=True)
    repo = GitRepo(tmp_path / "clone")  # same commits, own refs (export-subst %D sees them)
    with Ledger(tmp_path / "raw.db") as lg:
        import_git(lg, repo.path, project_id="raw", raw_blobs=True)
        repo.write("after.txt", "after\n")
        repo.commit("one more commit")
        more = import_git(lg, repo.path, project_id="raw")
        assert more.commits_imported == 1 and more.attributes == "applied"
        out = replay_at(lg, "raw", repo.head(), tmp_path / "raw-head")
        assert_same_tree(out, git_archive_tree(repo, repo.head(), tmp_path / "archive-head"))


def test_cli_raw_blobs_flag_and_summary(attributes_repo, tmp_path):
    repo, _, _, _ = attributes_repo
    db = tmp_path / "cli.db"
    runner = CliRunner()
    result = runner.invoke(cli, ["--db", str(db), "import", "git", str(repo.path), "--project", "a", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["attributes"] == "applied" and data["git_archive_runs"] > 0
    text = runner.invoke(cli, ["--db", str(db), "import", "git", str(repo.path), "--project", "b"])
    assert text.exit_code == 0 and "git attributes applied" in text.output
    raw = runner.invoke(cli, ["--db", str(db), "import", "git", str(repo.path), "--project", "c", "--raw-blobs"])
    assert raw.exit_code == 0 and "committed blob bytes" in raw.output
    help_text = runner.invoke(cli, ["import", "git", "--help"]).output
    assert "--raw-blobs" in help_text and "git archive" in help_text


# --------------------------------------------------------------- line endings
@pytest.mark.parametrize("autocrlf,eol", [("false", None), ("true", None), ("input", None),
                                          ("false", "crlf"), ("input", "crlf")])
def test_line_ending_rules_match_git(tmp_path, ledger_path, autocrlf, eol):
    """Every text/eol/crlf combination under each core.autocrlf/core.eol setting: what
    the importer predicts as unchanged really is unchanged, the rest comes from archive."""
    repo = GitRepo(tmp_path / "repo")
    repo.git("config", "core.autocrlf", autocrlf)
    if eol:
        repo.git("config", "core.eol", eol)
    specs = ["text", "-text", "text=auto", "text eol=lf", "text eol=crlf", "eol=lf", "eol=crlf",
             "crlf", "-crlf", "crlf=input", "binary", "text=auto eol=crlf", "text=auto eol=lf",
             "unspecified"]
    repo.write(".gitattributes", "".join(f"*.{i} {s}\n" for i, s in enumerate(specs) if s != "unspecified"))
    bodies = [b"lf\nonly\n", b"crlf\r\nonly\r\n", b"mixed\r\nends\n", b"bin\x00ary\n", b"no newline"]
    for i in range(len(specs)):
        for j, body in enumerate(bodies):
            # committed through the index, so git normalises as it would in real use
            repo.write(f"f{j}.{i}", body)
    repo.commit("every combination")
    for i in range(len(specs)):
        repo.write(f"f0.{i}", b"lf\nonly\nchanged\n")
    repo.commit("change the LF files")
    with Ledger(ledger_path) as lg:
        summary = import_git(lg, repo.path, project_id="p")
        assert summary.attributes == "applied"
        assert_every_commit_matches_archive(lg, "p", repo, tmp_path)


def test_attributes_added_to_an_existing_history(tmp_path, ledger_path):
    """No attributes for a while, then a .gitattributes arrives (ignoring a directory,
    substituting an existing file, converting existing files), then goes away."""
    repo = GitRepo(tmp_path / "repo")
    repo.write("tests/test_a.py", "def test(): pass\n")
    repo.write("_version.py", "version = '$Format:%h$'\n")
    repo.write("a.txt", "a\nb\n")
    repo.commit("no attributes yet")
    repo.write("a.txt", "a\nb\nc\n")
    repo.commit("still none")
    repo.write(".gitattributes", "tests export-ignore\n_version.py export-subst\n*.txt eol=crlf\n")
    repo.commit("attributes arrive")
    repo.write("tests/test_b.py", "def test(): pass\n")
    repo.commit("a test while ignored")
    repo.remove(".gitattributes")
    repo.commit("attributes gone")
    with Ledger(ledger_path) as lg:
        import_git(lg, repo.path, project_id="p")
        assert assert_every_commit_matches_archive(lg, "p", repo, tmp_path) == 5
        gone = {s.event.state_change.target_resource: s.event.state_change.operation.value
                for s in lg.events(commit=repo.head(), kind="state_change")}
    assert gone == {".gitattributes": "delete", "tests/test_a.py": "create", "tests/test_b.py": "create",
                    "_version.py": "modify", "a.txt": "modify"}


def test_attribute_values_change_within_the_converted_class(tmp_path, ledger_path):
    """A nested ``* text=auto`` over an inherited ``*.txt text eol=crlf``: still a
    converted path, but git no longer converts a file that already has CRLF (found by
    a randomized history check); also a subst file whose line endings change."""
    repo = GitRepo(tmp_path / "repo")
    repo.write("d/.gitattributes", "*.txt text eol=crlf\nv.txt export-subst\n")
    repo.git("add", "-A")
    for name, data in (("d/sub/mixed.txt", b"mixed\r\nx\n\n"), ("d/v.txt", b"$Format:%h$\r\nx\n")):
        (repo.path / name).parent.mkdir(parents=True, exist_ok=True)
        (repo.path / name).write_bytes(data)
        blob = repo.git("hash-object", "-w", "--no-filters", name)
        repo.git("update-index", "--add", "--cacheinfo", f"100644,{blob},{name}")
    repo.time += repo.step
    repo.git("commit", "-q", "-m", "CRLF blobs under eol=crlf", at=repo.time)
    repo.git("update-index", "--skip-worktree", "d/sub/mixed.txt", "d/v.txt")
    repo.write("d/sub/.gitattributes", "* text=auto\n")
    repo.write("d/.gitattributes", "*.txt text eol=crlf\nv.txt export-subst\nv.txt text=auto\n")
    repo.commit("text=auto below and on the subst file")
    with Ledger(ledger_path) as lg:
        import_git(lg, repo.path, project_id="p")
        assert assert_every_commit_matches_archive(lg, "p", repo, tmp_path) == 2
        head = snapshot(replay_at(lg, "p", repo.head(), tmp_path / "head"))
    assert head[b"d/sub/mixed.txt"][1] == b"mixed\r\nx\n\n"


def test_large_converted_files(tmp_path, ledger_path):
    """Archive output bigger than a pipe buffer streams through tarfile."""
    repo = GitRepo(tmp_path / "repo")
    repo.write(".gitattributes", "*.txt eol=crlf\n")
    for n in range(3):
        repo.write(f"big{n}.txt", "".join(f"line {i} of {n}\n" for i in range(20_000 + 3_000 * n)))
    repo.commit("big converted files")
    repo.write("big1.txt", "short now\n")
    repo.commit("one gets short")
    with Ledger(ledger_path) as lg:
        summary = import_git(lg, repo.path, project_id="p")
        assert summary.git_archive_runs == 2
        assert assert_every_commit_matches_archive(lg, "p", repo, tmp_path) == 2


def test_archive_output_is_read_to_the_end(tmp_path, ledger_path, monkeypatch):
    """tarfile stops at the end-of-archive marker, but git may still be writing the
    padding of its last record: the reader drains the pipe instead of closing it
    (which would kill git with SIGPIPE and fail the import). A wrapper writes a late
    record after git archive to make the race certain."""
    repo = GitRepo(tmp_path / "repo")
    repo.write(".gitattributes", "*.txt eol=crlf\n")
    repo.write("a.txt", "a\n")
    repo.commit("one")
    real_popen = subprocess.Popen

    def late_padding(cmd, *a, **kw):
        if "archive" in cmd:
            cmd = ["sh", "-c", '"$@" && sleep 0.3 && head -c 10240 /dev/zero', "sh", *cmd]
        return real_popen(cmd, *a, **kw)

    monkeypatch.setattr(subprocess, "Popen", late_padding)
    with Ledger(ledger_path) as lg:
        summary = import_git(lg, repo.path, project_id="p")
    monkeypatch.setattr(subprocess, "Popen", real_popen)
    assert summary.git_archive_runs == 1
    with Ledger(ledger_path) as lg:
        assert assert_every_commit_matches_archive(lg, "p", repo, tmp_path) == 1


def test_bare_repository(attributes_repo, tmp_path, ledger_path):
    repo, _, _, _ = attributes_repo
    bare = tmp_path / "bare.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(repo.path), str(bare)], check=True)
    with Ledger(ledger_path) as lg:
        summary = import_git(lg, bare, project_id="bare")
        assert summary.attributes == "applied"
        for i, commit in enumerate(repo.first_parent_commits()):
            out = replay_at(lg, "bare", commit, tmp_path / f"bare-{i}")
            assert_same_tree(out, git_archive_tree(repo, commit, tmp_path / f"bare-archive-{i}"))


def test_info_attributes_and_autocrlf_alone_take_the_slow_path(tmp_path, ledger_path):
    repo = GitRepo(tmp_path / "repo")
    repo.write("a.txt", "a\nb\n")
    repo.write("skip/me.txt", "x\n")
    repo.commit("one")
    repo.write("a.txt", "a\nb\nc\n")
    repo.commit("two")
    (repo.path / ".git" / "info" / "attributes").write_text("*.txt eol=crlf\nskip export-ignore\n")
    with Ledger(ledger_path) as lg:
        summary = import_git(lg, repo.path, project_id="info")
        assert summary.attribute_sources == [str(repo.path / ".git" / "info" / "attributes")]
        assert_every_commit_matches_archive(lg, "info", repo, tmp_path)
    os.remove(repo.path / ".git" / "info" / "attributes")
    repo.git("config", "core.autocrlf", "true")
    with Ledger(ledger_path) as lg:
        summary = import_git(lg, repo.path, project_id="autocrlf")
        assert summary.attribute_sources == ["core.autocrlf=true"]
        assert_every_commit_matches_archive(lg, "autocrlf", repo, tmp_path)
        head = snapshot(replay_at(lg, "autocrlf", repo.head(), tmp_path / "head"))
        assert head[b"a.txt"][1] == b"a\r\nb\r\nc\r\n"


# ------------------------------------------------------------------- fast path
def test_no_attributes_takes_the_fast_path(tmp_path, ledger_path, spawned):
    """Without any attribute source no attribute or archive process runs at all."""
    repo = GitRepo(tmp_path / "repo")
    repo.write("a.txt", "a\r\nwindows\r\n")
    repo.write("src/$Format:%H$.py", "x = '$Format:%H$'\n")
    repo.commit("one")
    repo.git("mv", "a.txt", "b.txt")
    repo.commit("two")
    before = len(spawned)  # building the repository started git processes too
    with Ledger(ledger_path) as lg:
        summary = import_git(lg, repo.path, project_id="p")
    started = spawned[before:]
    assert summary.attributes == "none found" and summary.attribute_sources == []
    git_commands = [next(a for a in c[1:] if a in ("rev-parse", "config", "log", "cat-file", "read-tree",
                                                   "check-attr", "archive", "diff-tree")) for c in started]
    assert sorted(git_commands) == ["cat-file", "config", "diff-tree", "log", "rev-parse", "rev-parse"]
    with Ledger(ledger_path) as lg:
        assert_every_commit_matches_archive(lg, "p", repo, tmp_path)


def test_slow_path_process_count(tmp_path, ledger_path, spawned):
    """Attribute lookups are batched: one read-tree + check-attr per .gitattributes
    change, at most one git archive per commit."""
    repo = GitRepo(tmp_path / "repo")
    repo.write(".gitattributes", "*.txt eol=crlf\n")
    for n in range(6):
        repo.write(f"f{n}.txt", f"v{n}\n")
        repo.write(f"g{n}.py", f"v{n}\n")
        repo.commit(f"commit {n}")
    repo.write(".gitattributes", "*.txt eol=crlf\n*.py eol=crlf\n")
    repo.commit("more attributes")
    repo.write("g0.py", "changed\n")
    repo.commit("last")
    before = len(spawned)  # building the repository started git processes too
    with Ledger(ledger_path) as lg:
        summary = import_git(lg, repo.path, project_id="p")
    started = spawned[before:]
    count = {name: sum(name in c for c in started) for name in ("read-tree", "check-attr", "archive")}
    # 8 commits, each with a converted path to read; 2 attribute epochs
    assert count == {"read-tree": 2, "check-attr": 2, "archive": 8}
    assert summary.git_archive_runs == count["archive"]
    with Ledger(ledger_path) as lg:
        assert_every_commit_matches_archive(lg, "p", repo, tmp_path)


# ---------------------------------------------------------------- classification
@pytest.mark.parametrize("values,config,expected", [
    ({}, ConvertConfig(), RAW),
    ({"text": "set"}, ConvertConfig(), RAW),
    ({"text": "set"}, ConvertConfig(eol="crlf"), CONVERT),
    ({"text": "auto"}, ConvertConfig(autocrlf="true"), CONVERT),
    ({"text": "auto", "eol": "lf"}, ConvertConfig(autocrlf="true"), RAW),
    ({"eol": "crlf"}, ConvertConfig(), CONVERT),
    ({"text": "unset", "eol": "crlf"}, ConvertConfig(), RAW),
    ({"crlf": "input"}, ConvertConfig(autocrlf="true"), RAW),
    ({}, ConvertConfig(autocrlf="true"), CONVERT),
    ({"ident": "set"}, ConvertConfig(), CONVERT),
    ({"filter": "lfs"}, ConvertConfig(), CONVERT),
    ({"working-tree-encoding": "UTF-16"}, ConvertConfig(), CONVERT),
    ({"export-subst": "set"}, ConvertConfig(), SUBST),
    ({"export-ignore": "set", "export-subst": "set"}, ConvertConfig(), IGNORED),
    ({"export-ignore": "unset"}, ConvertConfig(), RAW),
])
def test_classify(values, config, expected):
    assert classify(values, config) == expected


# ------------------------------------------------------------ randomized histories
_ATTR_LINES = ["*.txt text eol=crlf", "*.md eol=crlf", "d1 export-ignore", "d2/ export-ignore", "*.py text",
               "v*.txt export-subst", "*.c ident", "* text=auto", "*.bin binary", "d3/** export-ignore",
               "f1.* export-ignore", "*.txt -text", "*.cfg crlf", "x.* eol=lf"]
_NAMES = ["f1.txt", "f2.md", "f3.py", "v1.txt", "a.c", "b.bin", "x.cfg", "x.txt", "plain"]
_DIRS = ["", "d1/", "d2/", "d3/", "d1/sub/", "e/"]
_BODIES = [b"lf\nonly\n", b"crlf\r\nfile\r\n", b"$Format:%H$ $Id$\n", b"bin\x00\r\n", b"mixed\r\nx\n", b"",
           b"$Format:%s$\r\n"]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_randomized_histories(tmp_path, ledger_path, seed):
    """Random trees (raw CRLF blobs included, written past the index's normalisation),
    random nested .gitattributes edits, renames, mode flips; imported in three steps
    (incremental), with core.autocrlf=true for one seed. Every commit equals git archive."""
    import random

    rng = random.Random(seed)
    repo = GitRepo(tmp_path / "repo")
    if seed == 1:
        repo.git("config", "core.autocrlf", "true")
    index = {**os.environ, "GIT_INDEX_FILE": str(tmp_path / "index")}
    files: dict[str, tuple[bytes, bool]] = {}
    for n in range(30):
        for _ in range(rng.randint(1, 4)):
            roll, path = rng.random(), rng.choice(_DIRS) + rng.choice(_NAMES)
            if roll < 0.15 and files:
                del files[rng.choice(sorted(files))]
            elif roll < 0.3:
                lines = rng.sample(_ATTR_LINES, rng.randint(0, 4))
                files[rng.choice(_DIRS) + ".gitattributes"] = ("".join(f"{x}\n" for x in lines).encode(), False)
            elif roll < 0.4 and files:
                files[path] = files.pop(rng.choice(sorted(files)))
            else:
                files[path] = (rng.choice(_BODIES) + str(n).encode() * rng.randint(0, 1), rng.random() < 0.1)
        subprocess.run(["git", "-C", str(repo.path), "read-tree", "--empty"], env=index, check=True)
        infos = []
        for path, (data, executable) in sorted(files.items()):
            sha = subprocess.run(["git", "-C", str(repo.path), "hash-object", "-w", "--no-filters", "--stdin"],
                                 input=data, capture_output=True, check=True).stdout.decode().strip()
            infos.append(f"{'100755' if executable else '100644'} {sha}\t{path}\n")
        subprocess.run(["git", "-C", str(repo.path), "update-index", "--index-info"],
                       input="".join(infos).encode(), env=index, check=True)
        tree = subprocess.run(["git", "-C", str(repo.path), "write-tree"], env=index,
                              capture_output=True, check=True).stdout.decode().strip()
        repo.time += repo.step
        parents = ["-p", "HEAD"] if n else []
        commit = repo.git("commit-tree", tree, *parents, "-m", f"random {n}", at=repo.time)
        repo.git("update-ref", "HEAD", commit)
    commits = repo.first_parent_commits()
    with Ledger(ledger_path) as lg:
        for cut in (commits[9], commits[19]):
            import_git(lg, repo.path, project_id="r", rev=cut)
        summary = import_git(lg, repo.path, project_id="r")
        assert summary.commits_present == 20 and summary.commits_imported == 10
        assert assert_every_commit_matches_archive(lg, "r", repo, tmp_path) == 30
