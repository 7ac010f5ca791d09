"""The rules of a file change, each in one place.

Every producer of file changes (the SDK, JSON Lines, git import, ``exec`` and the agent
hooks) builds its ``StateChange`` with ``file_state_change``; every projection of file
state (the ledger's ``path_state`` table, a batch's overlay of uncommitted states,
git import's recorded tree, replay's in-memory tree) applies a change with
``projected``; the ledger and the syncer ask ``content_hash`` which content an event
needs. No I/O here: callers read previous states and contents themselves.

Rules (SPEC, "The event" / ``StateChange``):

* the operation is ``rename`` when a previous path is given, else ``delete`` when
  there is no new content, else ``modify`` when the path has a previous state, else
  ``create``;
* hashes are SHA-256 hex of the bytes (of the link target for a symlink), empty where
  there is no content; the new mode defaults to the previous mode, else ``regular``;
* ``diff_patch``/``lines_added``/``lines_removed`` come from ``ledger.diffs`` and are
  left empty when the old bytes are not at hand (the SPEC allows omitting the patch);
* a change needs its new content in the blob store unless it is a delete.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ledger.blobs import sha256_hex
from ledger.diffs import describe_change
from ledger.records import PathState
from schemas.enums import FileMode, Operation, TargetType
from schemas.errors import InvalidEvent

if TYPE_CHECKING:  # pydantic loads when a change is built, not when one is read
    from schemas import StateChange, SwarmEvent

__all__ = ["UNKNOWN", "file_state_change", "projected", "projected_change", "apply_change", "content_hash", "is_file_change"]


class _Unknown:
    """Marker: the old bytes are not at hand (the diff is omitted)."""

    def __repr__(self) -> str:
        return "UNKNOWN"


#: Pass as ``old_bytes`` when the previous content is not available: no diff is made.
UNKNOWN = _Unknown()

_MODES = {m.value: m for m in FileMode}


def file_state_change(
    path: str,
    new_bytes: bytes | None,
    *,
    before: PathState | None,
    old_bytes: bytes | None | _Unknown = None,
    new_mode: str | None = None,
    previous_path: str | None = None,
    operation: Operation | None = None,
    new_hash: str | None = None,
    is_reversible: bool = True,
    diff: bool = True,
    lines: tuple[int, int] | None = None,
) -> StateChange:
    """The ``StateChange`` of the file at ``path`` becoming ``new_bytes``.

    ``new_bytes``: the whole new content (for a symlink: the target), ``None`` for a
    delete. ``before``: the state the change applies to — of ``previous_path`` for a
    rename, else of ``path`` (``None``: the path does not exist yet). ``old_bytes``: its
    content (``None`` when absent, ``UNKNOWN`` when not at hand: no diff).
    ``new_mode``: "regular", "executable" or "symlink" (default: ``before``'s mode, else
    regular). ``operation`` overrides the derived one (git import knows it from git);
    ``new_hash`` may pass a SHA-256 hex already computed. ``diff=False`` skips the line
    diff (and its counts). ``lines=(added, removed)``: line counts known without a diff
    (git import takes them from git's ``--numstat``); no patch is made then.

    Raises ``InvalidEvent`` for a derived delete or rename of a path with no previous
    state (an explicit ``operation`` is the caller's word: replay reports a conflict if
    it does not apply), a mode that is not a file mode, and whatever ``StateChange`` validation refuses
    (bad paths).
    """
    if new_mode is not None and new_mode not in ("regular", "executable", "symlink"):
        raise InvalidEvent(f"mode must be regular, executable or symlink, not {new_mode!r}")
    if operation is None:
        if previous_path:
            operation = Operation.RENAME
        elif new_bytes is None:
            operation = Operation.DELETE
        else:
            operation = Operation.MODIFY if before is not None else Operation.CREATE
        if operation in (Operation.DELETE, Operation.RENAME) and before is None:
            what = previous_path if operation == Operation.RENAME else path
            verb = "rename" if operation == Operation.RENAME else "delete"
            raise InvalidEvent(f"cannot {verb} {what!r}: the ledger has no content for it")
    old_mode = before.mode if before is not None else ""
    if new_bytes is None:
        digest, mode = "", FileMode.UNSPECIFIED
    else:
        digest = new_hash or sha256_hex(new_bytes)
        mode = _MODES[new_mode or old_mode or "regular"]
    from schemas import StateChange

    if lines is not None:
        patch, (added, removed) = "", lines
    elif diff and not isinstance(old_bytes, _Unknown):
        patch, added, removed = describe_change(
            path, old_bytes if before is not None else None, new_bytes,
            previous_path=previous_path or None, old_mode=old_mode, new_mode=mode.value)
    else:
        patch, added, removed = "", 0, 0
    try:
        return StateChange(
            target_type=TargetType.FILE,
            target_resource=path,
            operation=operation,
            previous_resource=previous_path or "",
            previous_state_hash=before.hash if before is not None else "",
            previous_file_mode=_MODES.get(old_mode, FileMode.UNSPECIFIED),
            new_state_hash=digest,
            file_mode=mode,
            diff_patch=patch,
            size_bytes=len(new_bytes) if new_bytes is not None else 0,
            is_reversible=is_reversible,
            lines_added=added,
            lines_removed=removed,
        )
    except ValueError as exc:
        raise InvalidEvent(f"invalid file change of {path!r}: {exc}") from exc


def projected(operation: str, path: str, previous_path: str, new_hash: str,
              mode: str) -> list[tuple[str, tuple[str, str] | None]]:
    """What a file change does to a path-state projection: ``[(path, (sha256, mode) or
    None)]`` in the order to apply (None removes the path). A rename removes its source
    first; a delete removes its path; anything else sets ``(new_hash, mode)``.

    Arguments are plain strings (an operation and mode name), so ``StateChange``s
    (``projected_change``) and replay's ``ChangeRow``s use the same rule."""
    out: list[tuple[str, tuple[str, str] | None]] = []
    if operation == "rename" and previous_path:
        out.append((previous_path, None))
    if operation == "delete":
        out.append((path, None))
    else:
        out.append((path, (new_hash, mode)))
    return out


def projected_change(sc: StateChange) -> list[tuple[str, tuple[str, str] | None]]:
    """``projected`` of a ``StateChange``."""
    return projected(sc.operation.value, sc.target_resource, sc.previous_resource,
                     sc.new_state_hash, sc.file_mode.value)


def apply_change(states: dict, sc: StateChange) -> None:
    """Apply ``sc`` to a ``{path: PathState | None}`` overlay (a batch's uncommitted
    states, an importer's view of the ledger): a removed path maps to ``None`` (the
    overlay must remember that it is gone), a written one to its new ``PathState``."""
    for path, state in projected_change(sc):
        states[path] = None if state is None else PathState(path=path, hash=state[0], mode=state[1])


def is_file_change(event: SwarmEvent) -> bool:
    """True for a state change of a file (it moves the path-state projection)."""
    sc = event.state_change
    return sc is not None and sc.target_type == TargetType.FILE


#: ``content_withheld`` prefix of sealed content (``ledger.sealed_content``):
#: ``sealed:v1:<key id>:<SHA-256 hex of the ciphertext blob>``.
SEALED_CONTENT = "sealed:v1:"


def sealed_content(withheld: str) -> tuple[str, str] | None:
    """``(key_id, ciphertext address)`` of a ``content_withheld`` value that says the
    content is sealed, else None."""
    if not withheld.startswith(SEALED_CONTENT):
        return None
    key_id, _, address = withheld[len(SEALED_CONTENT):].rpartition(":")
    return (key_id, address) if key_id and len(address) == 64 else None


def content_hash(event: SwarmEvent) -> str | None:
    """SHA-256 hex of the content ``event`` needs in the blob store, or None: a file
    state change that is not a delete, names new content and does not withhold it
    (``content_withheld``: a secret file, recorded by hash only; ``ledger.secret_files``).
    Sealed content (``ledger.sealed_content``) needs its ciphertext blob: its address."""
    sc = event.state_change
    if sc is None or sc.target_type != TargetType.FILE or sc.operation == Operation.DELETE:
        return None
    if sc.content_withheld:
        sealed = sealed_content(sc.content_withheld)
        return sealed[1] if sealed else None
    return sc.new_state_hash or None
