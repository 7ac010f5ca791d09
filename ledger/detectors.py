"""Finding secrets in text: a cheap prefilter, detect-secrets' plugins, built-in and
configured patterns, and an allow-list. Used by the redaction policy (``ledger.redaction``).

``Detector.redact(text)`` returns the text with every secret it finds replaced by a typed
placeholder (``[REDACTED:github-token]``). Rules:

* **Prefilter first** (string methods on the UTF-8 bytes, microseconds): a text is
  scanned only when it holds a run of 16+ token characters (``[A-Za-z0-9_+/=-]``) with a
  digit in it, a secret-sounding word (``pass``, ``secret``, ``token``, ``key``, ``auth``,
  ``cred``, ``pwd``, any case), ``://`` or ``PuTTY``; only such lines go to
  detect-secrets' plugins (token plugins: lines with a run; keyword, basic-auth and
  private-key plugins: lines with a word; entropy: run lines with a quote). Text holding
  backslash escapes (JSON) is scanned unescaped and its findings replaced in their
  written (escaped) form. detect-secrets (Yelp, https://github.com/Yelp/detect-secrets) is imported the
  first time a line passes the prefilter, never at import time (it pulls in ``requests``:
  ~0.25 s).
* **Detectors**, in priority order (the first that claims a value names its type):
  built-in specific patterns (PEM private key blocks, whole, across lines; Anthropic,
  OpenAI project, Google, GitHub fine-grained, npm, Stripe, Hugging Face, Azure, AWS
  secret keys) and the configured ``redact_patterns``; every specific detect-secrets
  plugin (AWS, GitHub, GitLab, Slack, Stripe, OpenAI, JWT, npm, PyPI, Twilio, SendGrid,
  Azure storage, Discord, Telegram, Mailchimp, Square, Artifactory, IBM, Softlayer,
  Cloudant, basic-auth URLs, private key headers; not ``IPPublicDetector``); the generic
  built-in patterns (passwords in URLs, bearer tokens, ``UPPER_CASE_SECRET=value``
  assignments); then detect-secrets' generic plugins (secret keywords in quoted
  assignments, high-entropy quoted strings: base64 over 4.5 bits/char, hex over 3.0).
  detect-secrets' plugins run through ``analyze_string`` only: its network verification
  is never called.
* **Filters** (detect-secrets' own heuristics): sequential strings, UUIDs, ``id``-named
  values, templates (``${X}``, ``{{x}}``), ``$VAR`` references, non-alphanumeric values;
  values shorter than ``MIN_SECRET_CHARS``; references and templates (``$VAR``,
  ``${VAR}``, ``<name>``, ``{{x}}``), placeholder words (``password``, ``changeme``...),
  SRI hashes (``sha512-...`` in lock files); 16/32/40/64-character lowercase hex strings
  found only by the hex-entropy plugin (span and trace ids, git commit ids, SHA-256
  digests, which the ledger itself writes everywhere); values the ``redact_allow``
  regexes match in full.
* **Replacement**: every occurrence of a found value in the text is replaced (longest
  first), so the secret appears nowhere in the result. Deterministic (same text, same
  configuration: same output) and idempotent (placeholders are never found again).

Pure functions, no I/O.
"""

from __future__ import annotations

import re
import string
import threading
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

__all__ = ["Detector", "placeholder", "might_hold_secret", "MIN_SECRET_CHARS", "BUILTIN_PATTERNS",
           "GENERIC_PATTERNS"]

#: Found values shorter than this are not replaced (replacing "abc" everywhere would
#: mangle text; such values are weak secrets anyway).
MIN_SECRET_CHARS = 6

_PLACEHOLDER = re.compile(r"\[REDACTED:[a-z0-9-]+\]")

#: Built-in patterns ``(type, regex)``: where the regex has a group, group 1 is the
#: secret, else the whole match. Checked before detect-secrets' plugins. Each starts with
#: a literal where it can (Python's ``re`` then skips ahead with a fast substring search:
#: no leading ``\b``, no ``(?i)``); ``_NEEDLES`` gate the others.
BUILTIN_PATTERNS: tuple[tuple[str, str], ...] = (
    ("private-key", r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----.*?"
                    r"(?:-----END[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|\Z)"),
    ("private-key", r"PuTTY-User-Key-File-\d:.*?(?:Private-MAC: *[0-9a-f]+|\Z)"),
    ("anthropic-api-key", r"sk-ant-[A-Za-z0-9_-]{20,}"),
    ("openai-api-key", r"sk-(?:proj|svcacct|admin|None)-[A-Za-z0-9_-]{20,}"),
    ("openai-api-key", r"sk-[A-Za-z0-9]{48}(?![A-Za-z0-9])"),
    ("google-api-key", r"AIza[0-9A-Za-z_-]{35}"),
    ("github-token", r"github_pat_[A-Za-z0-9_]{22,}"),
    ("github-token", r"gh[pousr]_[A-Za-z0-9_]{30,}"),
    ("npm-token", r"npm_[A-Za-z0-9]{36}(?![A-Za-z0-9])"),
    ("stripe-key", r"[sr]k_(?:live|test)_[0-9A-Za-z]{16,}"),
    ("huggingface-token", r"hf_[A-Za-z0-9]{30,}"),
    ("slack-token", r"xapp-\d-[A-Za-z0-9-]{20,}"),
    ("azure-client-secret", r"(?<![A-Za-z0-9_~.-])[A-Za-z0-9_~.-]{3}\dQ~[A-Za-z0-9_~.-]{31,34}"),
    ("azure-key", r"(?:SharedAccessKey|AccountKey|sig)=([A-Za-z0-9%+/=]{30,})"),
    ("jwt", r"eyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{10,}"),
    ("aws-secret-key", r"(?i)aws.{0,20}?(?:secret|key).{0,20}?[=:]\s*[\"']?([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+])"),
)
#: Generic built-in patterns: checked after every specific detector (a value they find
#: is named by the specific detector when one finds it too).
GENERIC_PATTERNS: tuple[tuple[str, str], ...] = (
    ("password-in-url", r"://[^\s:/@\"']+:([^\s/@\"']{3,})@"),
    ("bearer-token", r"(?i)bearer\s+([A-Za-z0-9._~+/-]{20,}=*)"),
    ("secret-assignment",
     r"(?<![A-Za-z0-9_])[A-Z0-9_]*(?:PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|CREDENTIALS?)"
     r"[A-Z0-9_]*[ \t]*[=:][ \t]*[\"']?([^\s\"'$(][^\s\"'(),;]{7,}+)(?!\()"),
)
#: A pattern is tried only when the text holds one of its needles (a cheap ``in`` test):
#: for patterns that cannot start with a literal.
_NEEDLES: dict[str, tuple[str, ...]] = {
    "azure-client-secret": ("Q~",),
    "aws-secret-key": ("aws", "AWS", "Aws"),
    "bearer-token": ("earer", "EARER"),
    "secret-assignment": ("PASSW", "SECRET", "TOKEN", "KEY", "CREDENTIAL"),
}

#: Characters of a token run (anything else separates runs).
_TOKEN_CHARS = frozenset(string.ascii_letters + string.digits + "_+/=-")
_SEPARATE = bytes(c if (c >= 128 or chr(c) in _TOKEN_CHARS) else 32 for c in range(256))
_DIGIT = re.compile(rb"\d")
#: Secret-sounding words (searched in the lower-cased text) and markers.
_HINT_WORDS = (b"pass", b"secret", b"token", b"key", b"auth", b"cred", b"pwd", b"://", b"putty")
#: Shortest token run worth scanning (with a digit in it).
MIN_RUN = 16
#: Values that are references, templates or integrity hashes, never secrets: ``$VAR``,
#: ``${VAR}``, ``<placeholder>``, ``{{ var }}``, ``%(name)s``, ``sha512-...`` (SRI hashes
#: of lock files), a run of one character.
_NOT_A_SECRET = re.compile(r"[$<{%*]|.*(?:\$\{|\{\{|<[a-z_-]+>)|sha(?:1|256|384|512)-[A-Za-z0-9+/]+=*$|(.)\1*$")
#: Values the generic detectors (keywords, assignments, entropy, URLs) find that are
#: names, not secrets: a CONSTANT_NAME (``YOUR_APP_SECRET``), a dotted.name
#: (``settings.DB_PASSWORD``, ``compat.quote``).
_A_NAME = re.compile(r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+$|[a-z_][a-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)+$")
_GENERIC_KINDS = frozenset({"password-in-url", "bearer-token", "secret-assignment", "secret-keyword",
                            "high-entropy-string", "high-entropy-hex"})
#: Placeholder words people write where a secret goes (lower case).
_PLACEHOLDER_WORDS = frozenset({
    "password", "passwd", "pass", "secret", "changeme", "change-me", "example", "redacted", "hunter2",
    "your-password", "your_password", "yourpassword", "mypassword", "my-secret", "your-token", "your_token",
    "your-api-key", "your_api_key", "token", "apikey", "api_key", "xxxxxxxx", "placeholder", "dummy", "test",
})
#: Lowercase hex of the lengths of OpenTelemetry span (16) and trace ids (32), git
#: commit ids (40) and SHA-256 digests (64): what the ledger itself writes everywhere.
_HEX_DIGEST = re.compile(r"[0-9a-f]{16}|[0-9a-f]{32}|[0-9a-f]{40}|[0-9a-f]{64}")

#: detect-secrets secret_type -> placeholder type (others: lower-case, dashes).
_TYPE_NAMES = {
    "Base64 High Entropy String": "high-entropy-string",
    "Hex High Entropy String": "high-entropy-hex",
    "Secret Keyword": "secret-keyword",
    "Basic Auth Credentials": "password-in-url",
    "JSON Web Token": "jwt",
    "NPM tokens": "npm-token",
    "AWS Access Key": "aws-access-key",
    "Azure Storage Account access key": "azure-key",
}
_EXCLUDED_PLUGINS = frozenset({"IPPublicDetector"})


def placeholder(kind: str) -> str:
    """The text put in place of a secret of type ``kind`` (``[REDACTED:kind]``)."""
    return f"[REDACTED:{kind}]"


def _type_name(secret_type: str) -> str:
    name = _TYPE_NAMES.get(secret_type)
    if name is None:
        name = re.sub(r"[^a-z0-9]+", "-", secret_type.lower()).strip("-")
    return name


def might_hold_secret(text: str) -> bool:
    """The prefilter: False when no detector could find anything in ``text`` (by the
    rules in the module docstring), so it is stored as is without scanning. Pure string
    methods (``str.translate``, ``str.find``): a few microseconds per kilobyte."""
    runs, hints = _candidate_lines(text)
    return bool(runs or hints)


def _line_of(data: bytes, pos: int) -> tuple[int, int]:
    start = data.rfind(b"\n", 0, pos) + 1
    end = data.find(b"\n", pos)
    return start, len(data) if end == -1 else end


def _candidate_lines(text: str) -> tuple[dict[int, str], dict[int, str]]:
    """The lines of ``text`` worth a scan, by start offset: ``(lines with a 16+ token run
    holding a digit, lines with a secret-sounding word or marker)``. Works on the UTF-8
    bytes (``bytes.translate``/``split``/``find``: C speed, a few microseconds per KB)."""
    data = text.encode("utf-8", "surrogatepass")
    found_runs: list[int] = []
    if len(data) >= MIN_RUN:
        pos = 0
        for token in [t for t in data.translate(_SEPARATE).split() if len(t) >= MIN_RUN]:
            if _DIGIT.search(token):
                at = data.find(token, pos)
                found_runs.append(at)
                pos = at + len(token)
    lower = data.lower()
    found_hints: list[int] = []
    for word in _HINT_WORDS:
        at = lower.find(word)
        while at != -1:
            found_hints.append(at)
            at = lower.find(word, data.find(b"\n", at) if data.find(b"\n", at) != -1 else len(data))
    out: list[dict[int, str]] = []
    for positions in (found_runs, found_hints):
        lines: dict[int, str] = {}
        for at in positions:
            start, end = _line_of(data, at)
            if start not in lines:
                lines[start] = data[start:end].decode("utf-8", "surrogatepass")
        out.append(lines)
    return out[0], out[1]


_ESCAPES = re.compile(r"\\[nrt\"'\\/]")
_UNESCAPE = {"\\n": "\n", "\\r": "\n", "\\t": "\t", '\\"': '"', "\\'": "'", "\\\\": "\\", "\\/": "/"}


def _unescaped(text: str) -> str:
    """``text`` with JSON/shell backslash escapes of newlines, tabs, quotes, slashes and
    backslashes resolved (one pass, left to right)."""
    return _ESCAPES.sub(lambda m: _UNESCAPE[m.group()], text)


def _written_forms(value: str) -> tuple[str, ...]:
    """How a value found in the unescaped text may be written in the original: as is, and
    JSON-escaped (a PEM block's newlines as ``\\n``)."""
    if not any(c in value for c in '\n\t"\\'):
        return (value,)
    escaped = value.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t").replace('"', '\\"')
    return (value, escaped, value.replace("\n", "\\n"), value.replace("\n", "\\r\\n"))


def _cut(value: str) -> str:
    """A found value up to its first backslash: in escaped text (JSON) a match may run
    over ``\\n`` into the next line or end in the ``\\`` of an escaped quote, and
    replacing that would break the escape (secrets hold no backslashes)."""
    return value.split("\\", 1)[0] if "\\" in value else value


def _regex_values(denylist, line: str) -> list[str]:
    """The secrets a detect-secrets regex plugin's ``denylist`` finds in ``line``: the
    longest group of each match, or the whole match when there is no group or the group is
    just a prefix such as ``ghp`` (its ``analyze_string`` yields ``findall`` groups, which
    for e.g. the GitHub and GitLab patterns are the token's prefix, not the token)."""
    out = []
    for regex in denylist:
        for m in regex.finditer(line):
            groups = [g for g in m.groups() if g]
            value = max(groups, key=len) if groups else ""
            if not value or (len(value) < MIN_SECRET_CHARS + 2 and m.group(0).startswith(value)):
                value = m.group(0).strip(" \t\"'=:")
            out.append(value)
    return out


class _Plugins:
    """detect-secrets' plugins and filters, loaded on first use (thread-safe)."""

    _lock = threading.Lock()
    _loaded: tuple | None = None

    @classmethod
    def get(cls) -> tuple:
        if cls._loaded is None:
            with cls._lock:
                if cls._loaded is None:
                    cls._loaded = cls._load()
        return cls._loaded

    @staticmethod
    def _load() -> tuple:
        from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
        from detect_secrets.filters import heuristic
        from detect_secrets.plugins.base import RegexBasedDetector
        from detect_secrets.plugins.high_entropy_strings import HighEntropyStringsPlugin
        from detect_secrets.plugins.keyword import KeywordDetector

        classes = sorted(get_mapping_from_secret_type_to_class().values(), key=lambda c: c.__name__)
        specific, generic = [], []
        for cls in classes:
            if cls.__name__ in _EXCLUDED_PLUGINS:
                continue
            plugin = cls()
            is_generic = isinstance(plugin, (HighEntropyStringsPlugin, KeywordDetector))
            (generic if is_generic else specific).append(plugin)
        # Keyword before entropy: a keyword assignment names the value better.
        generic.sort(key=lambda p: (not isinstance(p, KeywordDetector), type(p).__name__))
        # Regex plugins are run through their ``denylist`` (``_regex_values``); the others
        # (keyword, entropy) through ``analyze_string``.
        specific = [(p, tuple(p.denylist) if isinstance(p, RegexBasedDetector) else None) for p in specific]
        generic = [(p, tuple(p.denylist) if isinstance(p, RegexBasedDetector) else None) for p in generic]
        return tuple(specific), tuple(generic), heuristic, HighEntropyStringsPlugin


@dataclass
class Detector:
    """Finds and replaces secrets in text (see the module docstring).

    ``patterns``: extra ``{type: regex}`` (group 1 is the secret when there is a group);
    ``allow``: regexes of values never replaced (full match). Raises ``ValueError`` (naming
    the pattern) when a regex does not compile.
    """

    patterns: Mapping[str, str] = field(default_factory=dict)
    allow: Sequence[str] = ()

    def __post_init__(self) -> None:
        self._patterns = self._compiled((*BUILTIN_PATTERNS, *self.patterns.items()))
        self._generic = self._compiled(GENERIC_PATTERNS)
        try:
            self._allow = tuple(re.compile(a) for a in self.allow)
        except re.error as exc:
            raise ValueError(f"redact_allow entry is not a valid regex: {exc}") from None

    @staticmethod
    def _compiled(patterns) -> tuple:
        compiled = []
        for kind, pattern in patterns:
            try:
                compiled.append((_type_name(kind), re.compile(pattern, re.DOTALL if kind == "private-key" else 0)))
            except re.error as exc:
                raise ValueError(f"redaction pattern {kind!r} ({pattern!r}) is not a valid regex: {exc}") from None
        return tuple(compiled)

    # ------------------------------------------------------------------ finding
    def _match(self, patterns, text: str, found: dict[str, str]) -> None:
        for kind, regex in patterns:
            needles = _NEEDLES.get(kind)
            if needles is not None and not any(n in text for n in needles):
                continue
            for m in regex.finditer(text):
                value = m.group(1) if regex.groups else m.group(0)
                if kind != "private-key":
                    value = _cut(value)
                if value and value not in found and not self._allowed(value, kind):
                    found[value] = kind
    def _allowed(self, value: str, kind: str = "") -> bool:
        if len(value) < MIN_SECRET_CHARS or _PLACEHOLDER.fullmatch(value) or "[REDACTED:" in value:
            return True
        if kind in _GENERIC_KINDS and _A_NAME.match(value):
            return True
        if _NOT_A_SECRET.match(value) or value.lower().strip("`'\";,.") in _PLACEHOLDER_WORDS:
            return True
        return any(a.fullmatch(value) for a in self._allow)

    def find(self, text: str) -> list[tuple[str, str]]:
        """Every ``(type, value)`` found in ``text``, each value once, in priority order
        (an empty list when the prefilter rules the text out). Text holding escapes (JSON
        or a shell's ``\\n``, ``\\"``: tool inputs and outputs serialized as JSON) is
        scanned both as is and unescaped, so ``secret = \\"...\\"`` inside a JSON string
        is found like ``secret = "..."``."""
        if "\\" in text:
            text = _unescaped(text)
        runs, hints = _candidate_lines(text)
        if not (runs or hints):
            return []
        found: dict[str, str] = {}
        self._find(text, runs, hints, found)
        return [(kind, value) for value, kind in found.items()]

    def _find(self, text: str, runs: dict[int, str], hints: dict[int, str], found: dict[str, str]) -> None:
        self._match(self._patterns, text, found)
        if runs or hints:
            specific, generic, heuristic, entropy_cls = _Plugins.get()
            # Which plugins a line needs: token plugins a 16+ run with a digit; the URL and
            # private-key plugins their marker; keywords a word and a quote; entropy a run
            # and a quote (each plugin's own rule is stricter).
            with_quotes = {k: v for k, v in runs.items() if '"' in v or "'" in v}
            self._scan_lines(specific, runs, hints, found, heuristic, entropy_cls)
        self._match(self._generic, text, found)
        if runs or hints:
            keyword_lines = {k: v for k, v in hints.items() if '"' in v or "'" in v}
            self._scan_lines(generic, with_quotes, keyword_lines, found, heuristic, entropy_cls)

    def _scan_lines(self, plugins, runs: dict[int, str], hints: dict[int, str], found: dict[str, str],
                    heuristic, entropy_cls) -> None:
        for plugin, denylist in plugins:
            name = type(plugin).__name__
            if name in ("BasicAuthDetector", "PrivateKeyDetector", "KeywordDetector"):
                lines: Iterable[str] = hints.values()
            else:
                lines = runs.values()
            for line in lines:
                try:
                    values = _regex_values(denylist, line) if denylist is not None else list(plugin.analyze_string(line))
                except Exception:  # noqa: BLE001 - a plugin bug must not lose the event
                    continue
                kind = _type_name(plugin.secret_type)
                for value in map(_cut, values):
                    if not value or value in found or self._allowed(value, kind):
                        continue
                    if any(value in known for known in found):
                        continue  # part of a secret already found (e.g. in a PEM block)
                    if isinstance(plugin, entropy_cls):
                        if plugin.calculate_shannon_entropy(value) <= plugin.entropy_limit:
                            continue
                        if plugin.secret_type == "Hex High Entropy String" and _HEX_DIGEST.fullmatch(value):
                            continue
                    if self._filtered(heuristic, plugin, value, line):
                        continue
                    found[value] = kind

    @staticmethod
    def _filtered(heuristic, plugin, value: str, line: str) -> bool:
        try:
            return bool(
                heuristic.is_sequential_string(value)
                or heuristic.is_potential_uuid(value)
                or heuristic.is_likely_id_string(value, line, plugin)
                or heuristic.is_templated_secret(value)
                or heuristic.is_prefixed_with_dollar_sign(value)
                or heuristic.is_not_alphanumeric_string(value)
                or (plugin.secret_type == "Secret Keyword" and heuristic.is_indirect_reference(line))
            )
        except Exception:  # noqa: BLE001 - a filter bug: keep the finding (redact)
            return False

    # ------------------------------------------------------------------ replacing
    def redact(self, text: str) -> tuple[str, list[str]]:
        """``(text with placeholders, types replaced)``; the text unchanged (same object)
        and ``[]`` when nothing was found."""
        found = self.find(text)
        if not found:
            return text, []
        kinds = []
        for kind, value in sorted(found, key=lambda kv: (-len(kv[1]), kv[1])):
            for form in _written_forms(value):
                if form in text:
                    text = text.replace(form, placeholder(kind))
                    kinds.append(kind)
        return text, kinds
