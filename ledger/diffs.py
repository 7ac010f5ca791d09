"""Unified diffs and line counts of a file change (for people; replay never uses them)."""

from __future__ import annotations

import difflib

#: Content larger than this (bytes, either side) gets no diff: line diffs are
#: quadratic in the worst case and a huge patch is not read by anyone.
MAX_DIFF_INPUT_BYTES = 1024 * 1024
#: A patch longer than this (characters) is omitted rather than truncated.
MAX_PATCH_CHARS = 256 * 1024


def _text(data: bytes | None) -> list[str] | None:
    if data is None:
        return []
    if b"\x00" in data[:8192]:
        return None
    try:
        return data.decode("utf-8").splitlines(keepends=True)
    except UnicodeDecodeError:
        return None


def describe_change(
    path: str,
    old: bytes | None,
    new: bytes | None,
    *,
    previous_path: str | None = None,
    old_mode: str = "",
    new_mode: str = "",
) -> tuple[str, int, int]:
    """Return ``(diff_patch, lines_added, lines_removed)`` for ``old`` -> ``new``.

    ``None`` means the file does not exist on that side. Binary content (a NUL byte or
    invalid UTF-8), content over ``MAX_DIFF_INPUT_BYTES``, and a symlink on either side
    (``old_mode``/``new_mode`` "symlink": its content is a link target, not text) give
    ``("", 0, 0)``. The patch uses git's ``a/``/``b/`` labels.
    """
    if "symlink" in (old_mode, new_mode):
        return "", 0, 0
    if (old is not None and len(old) > MAX_DIFF_INPUT_BYTES) or (
        new is not None and len(new) > MAX_DIFF_INPUT_BYTES
    ):
        return "", 0, 0
    a, b = _text(old), _text(new)
    if a is None or b is None or old == new:
        return "", 0, 0
    added = removed = 0
    lines: list[str] = []
    from_label = "/dev/null" if old is None else f"a/{previous_path or path}"
    to_label = "/dev/null" if new is None else f"b/{path}"
    for line in difflib.unified_diff(a, b, from_label, to_label, n=3):
        if line.startswith("+") and not line.startswith("+++"):
            added += 1
        elif line.startswith("-") and not line.startswith("---"):
            removed += 1
        lines.append(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n")
    patch = "".join(lines)
    if len(patch) > MAX_PATCH_CHARS:
        patch = ""
    return patch, added, removed
