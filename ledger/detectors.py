"""Finding secrets in text: a cheap prefilter, detect-secrets' plugins, built-in and
configured patterns, and an allow-list. Used by the redaction policy (``ledger.redaction``).

``Detector.redact(text)`` returns the text with every secret it finds replaced by a typed
placeholder (``[REDACTED:github-token]``). Rules:

* **Prefilter first** (pure ``re``, microseconds): a text is scanned only when it holds a
  run of 16+ token characters (``[A-Za-z0-9_+/=-]``) with a digit in it, a secret-sounding
  word (``pass``, ``secret``, ``token``, ``key``, ``auth``, ``cred``, ``pwd``), a URL with
  a password (``://user:pass@``) or a ``PRIVATE KEY`` marker; only such lines go to the
  detectors. detect-secrets (Yelp, https://github.com/Yelp/detect-secrets) is imported the
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
  values shorter than ``MIN_SECRET_CHARS``; 40/64-character lowercase hex strings found
  only by the hex-entropy plugin (git commit ids and SHA-256 digests, which the ledger
  itself writes everywhere); values the ``redact_allow`` regexes match in full.
* **Replacement**: every occurrence of a found value in the text is replaced (longest
  first), so the secret appears nowhere in the result. Deterministic (same text, same
  configuration: same output) and idempotent (placeholders are never found again).

Pure functions, no I/O.
"""

from __future__ import annotations

import re
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
#: secret, else the whole match. Checked before detect-secrets' plugins.
BUILTIN_PATTERNS: tuple[tuple[str, str], ...] = (
    ("private-key", r"-----BEGIN[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----.*?"
                    r"(?:-----END[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----|\Z)"),
    ("private-key", r"PuTTY-User-Key-File-\d:.*?(?:Private-MAC: *[0-9a-f]+|\Z)"),
    ("anthropic-api-key", r"\bsk-ant-[A-Za-z0-9_-]{20,}"),
    ("openai-api-key", r"\bsk-(?:proj|svcacct|admin|None)-[A-Za-z0-9_-]{20,}"),
    ("openai-api-key", r"\bsk-[A-Za-z0-9]{48}\b"),
    ("google-api-key", r"\bAIza[0-9A-Za-z_-]{35}"),
    ("github-token", r"\bgithub_pat_[A-Za-z0-9_]{22,}"),
    ("github-token", r"\bgh[pousr]_[A-Za-z0-9_]{30,}"),
    ("npm-token", r"\bnpm_[A-Za-z0-9]{36}\b"),
    ("stripe-key", r"\b(?:sk|rk)_(?:live|test)_[0-9A-Za-z]{16,}"),
    ("huggingface-token", r"\bhf_[A-Za-z0-9]{30,}"),
    ("slack-token", r"\bxapp-\d-[A-Za-z0-9-]{20,}"),
    ("azure-client-secret", r"(?<![A-Za-z0-9_~.-])[A-Za-z0-9_~.-]{3}\dQ~[A-Za-z0-9_~.-]{31,34}"),
    ("azure-key", r"(?i)\b(?:SharedAccessKey|AccountKey|sig)=([A-Za-z0-9%+/=]{30,})"),
    ("jwt", r"\beyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{10,}"),
    ("aws-secret-key", r"(?i)aws.{0,20}?(?:secret|key).{0,20}?[=:]\s*[\"']?([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+])"),
)
#: Generic built-in patterns: checked after every specific detector (a value they find
#: is named by the specific detector when one finds it too).
GENERIC_PATTERNS: tuple[tuple[str, str], ...] = (
    ("password-in-url", r"[a-zA-Z][a-zA-Z0-9+.-]*://[^\s:/@\"']+:([^\s/@\"']{3,})@"),
    ("bearer-token", r"(?i)\bbearer\s+([A-Za-z0-9._~+/-]{20,}=*)"),
    ("secret-assignment",
     r"\b[A-Z0-9_]*(?:PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY|CREDENTIALS?)"
     r"[A-Z0-9_]*\s*[=:]\s*[\"']?([^\s\"'$][^\s\"']{7,})"),
)

_TOKEN_RUN = re.compile(r"[A-Za-z0-9_+/=-]{16,}")
_DIGIT = re.compile(r"\d")
_HINT = re.compile(r"(?i)pass|secret|token|key|auth|cred|pwd|://[^\s/@]*:[^\s/@]*@|PuTTY")
_HEX_DIGEST = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")

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
    rules in the module docstring), so it is stored as is without scanning."""
    if _HINT.search(text):
        return True
    for m in _TOKEN_RUN.finditer(text):
        if _DIGIT.search(m.group()):
            return True
    return False


_ESCAPES = re.compile(r"\\[nrt\"'\\/]")
_UNESCAPE = {"\\n": "\n", "\\r": "\n", "\\t": "\t", '\\"': '"', "\\'": "'", "\\\\": "\\", "\\/": "/"}


def _unescaped(text: str) -> str:
    """``text`` with JSON/shell backslash escapes of newlines, tabs, quotes, slashes and
    backslashes resolved (one pass, left to right)."""
    return _ESCAPES.sub(lambda m: _UNESCAPE[m.group()], text)


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
            if len(value) < MIN_SECRET_CHARS + 2:
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
            for m in regex.finditer(text):
                value = m.group(1) if regex.groups else m.group(0)
                if kind != "private-key":
                    value = _cut(value)
                if value and value not in found and not self._allowed(value):
                    found[value] = kind
    def _allowed(self, value: str) -> bool:
        if len(value) < MIN_SECRET_CHARS or _PLACEHOLDER.fullmatch(value) or "[REDACTED:" in value:
            return True
        return any(a.fullmatch(value) for a in self._allow)

    def find(self, text: str) -> list[tuple[str, str]]:
        """Every ``(type, value)`` found in ``text``, each value once, in priority order
        (an empty list when the prefilter rules the text out). Text holding escapes (JSON
        or a shell's ``\\n``, ``\\"``: tool inputs and outputs serialized as JSON) is
        scanned both as is and unescaped, so ``secret = \\"...\\"`` inside a JSON string
        is found like ``secret = "..."``."""
        if not might_hold_secret(text):
            return []
        found: dict[str, str] = {}
        self._find(text, found)
        if "\\" in text:
            self._find(_unescaped(text), found)
        return [(kind, value) for value, kind in found.items()]

    def _find(self, text: str, found: dict[str, str]) -> None:
        self._match(self._patterns, text, found)
        lines = [line for line in text.splitlines() if might_hold_secret(line)]
        specific, generic, heuristic, entropy_cls = _Plugins.get() if lines else ((), (), None, None)
        self._scan_lines(specific, lines, found, heuristic, entropy_cls)
        self._match(self._generic, text, found)
        self._scan_lines(generic, lines, found, heuristic, entropy_cls)

    def _scan_lines(self, plugins, lines: Iterable[str], found: dict[str, str], heuristic, entropy_cls) -> None:
        for line in lines:
            for plugin, denylist in plugins:
                try:
                    values = _regex_values(denylist, line) if denylist is not None else list(plugin.analyze_string(line))
                except Exception:  # noqa: BLE001 - a plugin bug must not lose the event
                    continue
                for value in map(_cut, values):
                    if not value or value in found or self._allowed(value):
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
                    found[value] = _type_name(plugin.secret_type)

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
            if value in text:
                text = text.replace(value, placeholder(kind))
                kinds.append(kind)
        return text, kinds
