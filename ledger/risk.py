"""Risk tags of file changes: which recorded changes deserve a second pair of eyes, and why.

A file state change gets zero or more ``RiskTag`` s, each with a reason a person can read:

=====================  ==================================================================
tag                    when
=====================  ==================================================================
``protected-path``     its path (or a rename's source) matches ``risk_protected_paths``
``delete``             it deletes a file (``risk_tag_deletes``, on by default)
``executable``         it sets or clears the executable bit, or creates an executable file
``ci``                 its path is a CI pipeline file (``risk_ci_paths``: .github/workflows,
                       .gitlab-ci.yml, Jenkinsfile, ...)
``infrastructure``     its path is an infrastructure file (``risk_infra_paths``: Dockerfile,
                       compose, terraform, helm, k8s/ ...) or its new content is a
                       Kubernetes manifest (a YAML file with top-level ``apiVersion:`` and
                       ``kind:``)
``dangerous-code``     a code file (``risk_code_paths``) gains a line matching one of
                       ``risk_code_patterns`` (``eval(``, ``exec(``, ``shell=True``,
                       ``os.system(``, ``child_process``, ``new Function(`` ...)
=====================  ==================================================================

Path patterns are gitignore patterns (``pathspec``'s ``GitIgnoreSpec``): ``Dockerfile``
matches at any depth, ``.github/workflows/`` a directory at the root, ``*.tf`` any
terraform file, ``!pattern`` excludes. Code patterns are Python regular expressions
matched against each *added* line (a line of the new content that the old content does
not have, counted as a multiset: moved lines are not added), comment lines (``#``,
``//``, ``/*``, ``*``) skipped. Content comes from the blob store when the reader has it
(exact), else from the event's ``diff_patch`` ``+`` lines; with neither (content erased
or on another machine) the ``dangerous-code`` check is skipped, never guessed. Binary
content and content over ``MAX_SCAN_BYTES`` are not scanned.

Tags are computed when read (``RiskRules.tags``), never stored in events: they are a
deterministic function of the event, its content and the configuration in effect, so a
stricter configuration applies to the whole history at once (``ledger audit unapproved``
audits the past with today's rules) and nothing already recorded or synced changes.

Settings (``ledger.toml`` / ``LEDGER_RISK_*``, see ``ledger.config``) replace these
defaults; ``RiskRules.from_settings`` reads them. No I/O here beyond ``read_blob``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterable, Mapping

from ledger.errors import ConfigError
from schemas.enums import FileMode, Operation, TargetType

if TYPE_CHECKING:
    from schemas import SwarmEvent

__all__ = [
    "RiskTag", "RiskRules", "DEFAULT_PROTECTED_PATHS", "DEFAULT_CI_PATHS", "DEFAULT_INFRA_PATHS",
    "DEFAULT_CODE_PATHS", "DEFAULT_CODE_PATTERNS", "TAGS", "MAX_SCAN_BYTES",
]

#: Every tag this module gives, in the order they are reported.
TAGS = ("protected-path", "delete", "executable", "ci", "infrastructure", "dangerous-code")

#: Largest content (bytes) scanned for dangerous code (the same bound as text diffs).
MAX_SCAN_BYTES = 1 << 20

#: Files whose change changes who may do what, or that hold credentials.
DEFAULT_PROTECTED_PATHS: tuple[str, ...] = (
    "CODEOWNERS", ".github/CODEOWNERS", ".gitlab/CODEOWNERS",
    ".env", ".env.*", "*.pem", "*.key", "id_rsa*", "id_ed25519*", "secrets/",
    ".gitattributes", ".gitmodules", "ledger.toml",
)
#: CI pipeline definitions (what runs with the repository's secrets on every push).
DEFAULT_CI_PATHS: tuple[str, ...] = (
    ".github/workflows/", ".github/actions/", ".gitlab-ci.yml", ".gitlab/ci/", ".circleci/",
    "Jenkinsfile", "azure-pipelines.yml", ".travis.yml", "bitbucket-pipelines.yml",
    ".buildkite/", ".drone.yml", ".woodpecker.yml", ".woodpecker/", "cloudbuild.yaml",
    ".pre-commit-config.yaml",
)
#: Infrastructure: images, deployments, cloud resources.
DEFAULT_INFRA_PATHS: tuple[str, ...] = (
    "Dockerfile", "Dockerfile.*", "*.dockerfile", "Containerfile", "docker-compose*.yml",
    "docker-compose*.yaml", "compose.yml", "compose.yaml", "*.tf", "*.tfvars", "*.tf.json",
    "terragrunt.hcl", "k8s/", "kubernetes/", "helm/", "charts/", "Chart.yaml",
    "kustomization.yaml", "kustomization.yml", "ansible/", "playbook*.yml", "Pulumi.yaml",
    "Pulumi.*.yaml", "serverless.yml", "*.nomad", "Vagrantfile",
    "!*.md", "!*.rst", "!*.txt",  # documentation about infrastructure is not infrastructure
)
#: Code files scanned for dangerous calls.
DEFAULT_CODE_PATHS: tuple[str, ...] = (
    "*.py", "*.pyw", "*.js", "*.mjs", "*.cjs", "*.jsx", "*.ts", "*.tsx", "*.rb", "*.php",
    "*.sh", "*.bash", "*.zsh", "*.pl", "*.lua", "*.go", "*.java", "*.kt", "*.c", "*.cc", "*.cpp",
)
#: Name -> regular expression matched against the added lines of a code file. Each
#: starts with a literal and checks what precedes it with a lookbehind *after* it: the
#: regex engine then scans for the literal (30-50x faster than a leading lookbehind).
DEFAULT_CODE_PATTERNS: dict[str, str] = {
    "eval": r"eval(?<![\w.$]eval)\s*\(",                  # eval(...): not model.eval(), not literal_eval(
    "exec": r"exec(?<![\w.$]exec)\s*\(",                  # Python/PHP exec(...): not regex.exec(
    "shell=True": r"shell(?<!\wshell)\s*=\s*True\b",       # subprocess.run(cmd, shell=True)
    "os.system": r"os(?<!\wos)\.(?:system|popen|exec[lv]p?e?|spawn\w*)\s*\(",
    "system": r"system(?<![\w.$]system)(?<!def system)\s*\(",  # C, PHP, Ruby system(...) calls
    "shell_exec": r"(?:shell_exec|passthru|proc_open)(?<![\w.$]shell_exec)(?<![\w.$]passthru)"
                  r"(?<![\w.$]proc_open)(?<!def shell_exec)(?<!def passthru)(?<!def proc_open)\s*\(",  # PHP
    "child_process": r"child_process\b|execSync\s*\(",
    "new Function": r"new\s+Function\s*\(",
    "__import__": r"__import__(?<![\w.]__import__)\s*\(",
    "pickle.loads": r"pickle\.loads?\s*\(",
    "shell eval": r"eval(?<![\w.$-]eval)\s+[\"'$]",          # shell: eval "$cmd"
}

_COMMENT_PREFIXES = ("#", "//", "/*", "*")
_K8S_API = re.compile(rb"^apiVersion:\s*\S", re.M)
_K8S_KIND = re.compile(rb"^kind:\s*\S", re.M)


@dataclass(frozen=True)
class RiskTag:
    """One reason a change is risky: ``tag`` (one of ``TAGS``) and ``reason`` (one line)."""

    tag: str
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"tag": self.tag, "reason": self.reason}


def _spec(patterns: Iterable[str]):
    from pathspec import GitIgnoreSpec  # imported when rules are first used

    lines = [p for p in patterns if p and p.strip()]
    return lines, GitIgnoreSpec.from_lines(lines)


@dataclass
class RiskRules:
    """The configured risk rules (defaults: this module's ``DEFAULT_*``).

    ``protected_paths``, ``ci_paths``, ``infra_paths``, ``code_paths``: gitignore
    patterns; ``code_patterns``: name -> regex; ``tag_deletes``: tag every delete.
    Raises ``ConfigError`` naming a bad regular expression.
    """

    protected_paths: tuple[str, ...] = DEFAULT_PROTECTED_PATHS
    ci_paths: tuple[str, ...] = DEFAULT_CI_PATHS
    infra_paths: tuple[str, ...] = DEFAULT_INFRA_PATHS
    code_paths: tuple[str, ...] = DEFAULT_CODE_PATHS
    code_patterns: Mapping[str, str] = field(default_factory=lambda: dict(DEFAULT_CODE_PATTERNS))
    tag_deletes: bool = True

    def __post_init__(self) -> None:
        self._specs = {name: _spec(getattr(self, name))
                       for name in ("protected_paths", "ci_paths", "infra_paths", "code_paths")}
        compiled = {}
        for name, pattern in self.code_patterns.items():
            try:
                compiled[name] = re.compile(pattern, re.M)
            except re.error as exc:
                raise ConfigError(f"risk_code_patterns[{name!r}] is not a valid regular expression ({exc}): "
                                  "fix it in ledger.toml or LEDGER_RISK_CODE_PATTERNS") from exc
        self._code = compiled

    @classmethod
    def from_settings(cls, settings: Any) -> "RiskRules":
        """The rules of a ``ledger.config.Settings`` (its ``risk_*`` fields)."""
        return cls(
            protected_paths=tuple(settings.risk_protected_paths),
            ci_paths=tuple(settings.risk_ci_paths),
            infra_paths=tuple(settings.risk_infra_paths),
            code_paths=tuple(settings.risk_code_paths),
            code_patterns=dict(settings.risk_code_patterns),
            tag_deletes=settings.risk_tag_deletes,
        )

    def _match(self, which: str, path: str) -> str | None:
        """The pattern of ``which`` that decides ``path`` is in, or None."""
        lines, spec = self._specs[which]
        result = spec.check_file(path)
        if result.include:
            return lines[result.index] if result.index is not None else "?"
        return None

    def tags(self, event: "SwarmEvent", read_blob: Callable[[str], bytes] | None = None) -> list[RiskTag]:
        """The risk tags of ``event`` (``[]`` for anything but a file state change).

        ``read_blob(sha256_hex) -> bytes`` reads content for the ``dangerous-code`` and
        Kubernetes checks; when it is None or raises, the event's ``diff_patch`` is used
        instead, and with neither those content checks are skipped. Deterministic: the
        same event, content and rules give the same tags in the same order.
        """
        sc = event.state_change
        if sc is None or sc.target_type != TargetType.FILE:
            return []
        out: list[RiskTag] = []
        paths = [sc.target_resource] + ([sc.previous_resource] if sc.previous_resource else [])
        for path in paths:
            pattern = self._match("protected_paths", path)
            if pattern is not None:
                out.append(RiskTag("protected-path", f"{path} matches protected path pattern {pattern!r}"))
                break
        if sc.operation == Operation.DELETE and self.tag_deletes:
            out.append(RiskTag("delete", f"deletes {sc.target_resource}"))
        exec_reason = _executable_change(sc)
        if exec_reason:
            out.append(RiskTag("executable", exec_reason))
        for path in paths:
            pattern = self._match("ci_paths", path)
            if pattern is not None:
                out.append(RiskTag("ci", f"{path} is a CI pipeline file (pattern {pattern!r})"))
                break
        infra = None
        for path in paths:
            pattern = self._match("infra_paths", path)
            if pattern is not None:
                infra = f"{path} is an infrastructure file (pattern {pattern!r})"
                break
        new = old = None
        wants_code = (sc.operation != Operation.DELETE and sc.file_mode != FileMode.SYMLINK
                      and self._code and self._match("code_paths", sc.target_resource) is not None)
        is_yaml = sc.target_resource.endswith((".yaml", ".yml")) and sc.operation != Operation.DELETE
        if wants_code or (is_yaml and infra is None):
            new = _read(read_blob, sc.new_state_hash)
            if wants_code and sc.previous_state_hash:
                old = _read(read_blob, sc.previous_state_hash)
        if infra is None and is_yaml and new is not None and _K8S_API.search(new) and _K8S_KIND.search(new):
            infra = f"{sc.target_resource} is a Kubernetes manifest (top-level apiVersion and kind)"
        if infra:
            out.append(RiskTag("infrastructure", infra))
        if wants_code:
            if new is not None and (old is not None or not sc.previous_state_hash):
                added = _added_lines(new, old)
            else:  # content not here: the producer's diff is the best evidence left
                added = _patch_lines(sc.diff_patch)
            hit = self._dangerous(added)
            if hit:
                out.append(RiskTag("dangerous-code", f"{sc.target_resource} line {hit[1]} adds {hit[0]}: {hit[2]}"))
        return out

    def _dangerous(self, lines: Iterable[tuple[int, str]]) -> tuple[str, int, str] | None:
        """The first added line matching a code pattern: ``(pattern name, line number,
        line)``; on one line, the leftmost match (ties: the first pattern). Each pattern
        searches the added lines joined by newlines once (``re.M``: ``^``/``$`` work per
        line)."""
        kept = [(n, line) for n, line in lines
                if line.strip() and not line.lstrip().startswith(_COMMENT_PREFIXES)]
        if not kept:
            return None
        text = "\n".join(line for _, line in kept)
        best: tuple[int, int, str] | None = None
        for order, (name, rx) in enumerate(self._code.items()):
            m = rx.search(text, 0, len(text) if best is None else best[0] + 1)
            if m is not None and (best is None or (m.start(), order) < best[:2]):
                best = (m.start(), order, name)
        if best is None:
            return None
        number, line = kept[text.count("\n", 0, best[0])]
        stripped = line.strip()
        shown = stripped if len(stripped) <= 80 else stripped[:77] + "..."
        return best[2], number, "".join(c if c.isprintable() else "?" for c in shown)


def _executable_change(sc) -> str:
    """Why the change touches the executable bit ('' when it does not)."""
    before, after = sc.previous_file_mode, sc.file_mode
    if sc.operation == Operation.DELETE:
        return ""
    if sc.operation == Operation.CREATE or (not sc.previous_state_hash and before == FileMode.UNSPECIFIED):
        return f"creates {sc.target_resource} as an executable file" if after == FileMode.EXECUTABLE else ""
    if before == after or FileMode.UNSPECIFIED in (before, after):
        return ""
    if after == FileMode.EXECUTABLE:
        return f"sets the executable bit of {sc.target_resource} ({before.value} -> executable)"
    if before == FileMode.EXECUTABLE:
        return f"clears the executable bit of {sc.target_resource} (executable -> {after.value})"
    return ""


def _read(read_blob, digest: str) -> bytes | None:
    """Content to scan, or None (no reader, content not here, binary, too large)."""
    if read_blob is None or not digest:
        return None
    try:
        data = read_blob(digest)
    except Exception:  # noqa: BLE001 - content not here (erased, another machine): skip
        return None
    if len(data) > MAX_SCAN_BYTES or b"\x00" in data[:8192]:
        return None
    return data


def _added_lines(new: bytes, old: bytes | None) -> list[tuple[int, str]]:
    """Lines of ``new`` that ``old`` does not have (multiset), with 1-based line numbers."""
    text = new.decode("utf-8", "replace").splitlines()
    remaining: dict[str, int] = {}
    if old is not None:
        for line in old.decode("utf-8", "replace").splitlines():
            remaining[line] = remaining.get(line, 0) + 1
    out = []
    for number, line in enumerate(text, 1):
        if remaining.get(line):
            remaining[line] -= 1
        else:
            out.append((number, line))
    return out


def _patch_lines(patch: str) -> list[tuple[int, str]]:
    """Added lines of a unified diff (``+`` lines), numbered in the new file."""
    out, number, in_hunk = [], 0, False
    for line in patch.splitlines():
        if line.startswith("@@"):
            m = re.match(r"@@ -\d+(?:,\d+)? \+(\d+)", line)
            number = int(m.group(1)) - 1 if m else number
            in_hunk = True
        elif not in_hunk:  # file headers (---/+++, git's diff/index lines)
            continue
        elif line.startswith("+"):
            number += 1
            out.append((number, line[1:]))
        elif not line.startswith("-") and not line.startswith("\\"):
            number += 1
    return out
