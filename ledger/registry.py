"""The project registry: which projects a tenant has, and where each one's work tree is.

Every project that has events is registered (a trigger on the events table registers a
tenant/project pair with its first event, whatever path inserted it). ``ledger import git``, ``ledger exec`` and ``ledger agent
install`` also record the project's **root** (the repository's top-level directory,
absolute) and an **identity** (e.g. the repository's first commit), so that a command run
anywhere inside that repository picks that project, even with several projects in the
ledger. A mixin of ``ledger.store.Ledger``.
"""

from __future__ import annotations

import difflib
import os
import time
from dataclasses import dataclass
from pathlib import Path

from ledger import chain
from ledger.errors import AmbiguousProject, ProjectNotFound, StoreError


@dataclass(frozen=True)
class ProjectInfo:
    """A registered project: ``root`` (absolute path of its work tree, or None) and
    ``identity`` (e.g. ``git:<first commit>``, or None); ``created_ns`` (ns)."""

    tenant_id: str
    project_id: str
    root: str | None
    identity: str | None
    created_ns: int


def _contains(root: str, path: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


class LedgerRegistry:
    """Project registry queries and updates (see the module docstring)."""

    def register_project(self, tenant_id: str, project_id: str, *, root: str | os.PathLike | None = None,
                         identity: str | None = None) -> ProjectInfo:
        """Create a project, or set its ``root``/``identity`` (None keeps the current
        value). Raises ``StoreError`` when another project of the tenant already has that
        root (one work tree, one project)."""
        root_s = os.path.realpath(root) if root is not None else None
        with self.write_transaction() as conn:
            if root_s is not None:
                other = conn.execute(
                    "SELECT project_id FROM projects WHERE tenant_id = ? AND root = ? AND project_id != ?",
                    (tenant_id, root_s, project_id)).fetchone()
                if other is not None:
                    raise StoreError(
                        f"{root_s} is already the work tree of project {other[0]!r}; use --project "
                        f"{other[0]}, or `ledger projects rename {other[0]} {project_id}`")
            conn.execute(
                "INSERT INTO projects (tenant_id, project_id, root, identity, created_ns) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (tenant_id, project_id) DO UPDATE SET root = coalesce(excluded.root, root), "
                "identity = coalesce(excluded.identity, identity)",
                (tenant_id, project_id, root_s, identity, time.time_ns()))
        return self.project_info(tenant_id, project_id)

    def project_info(self, tenant_id: str, project_id: str) -> ProjectInfo | None:
        """The registered project, or None."""
        with self._converted("query"):
            row = self._conn().execute(
                "SELECT tenant_id, project_id, root, identity, created_ns FROM projects "
                "WHERE tenant_id = ? AND project_id = ?", (tenant_id, project_id)).fetchone()
        return ProjectInfo(*row) if row else None

    def project_infos(self, tenant_id: str | None = None) -> list[ProjectInfo]:
        """Registered projects (of one tenant, or all), by tenant and name."""
        sql = "SELECT tenant_id, project_id, root, identity, created_ns FROM projects"
        params: tuple = ()
        if tenant_id is not None:
            sql += " WHERE tenant_id = ?"
            params = (tenant_id,)
        with self._converted("query"):
            return [ProjectInfo(*r) for r in self._conn().execute(sql + " ORDER BY tenant_id, project_id", params)]

    def project_for_path(self, tenant_id: str, path: str | os.PathLike) -> ProjectInfo | None:
        """The project whose root contains ``path`` (the innermost root wins), or None."""
        real = os.path.realpath(path)
        found = [p for p in self.project_infos(tenant_id) if p.root and _contains(p.root, real)]
        return max(found, key=lambda p: len(p.root or "")) if found else None

    def choose_project(self, tenant_id: str, requested: str | None = None, *,
                       cwd: str | os.PathLike | None = None, first_may_be_new: bool = False) -> str:
        """The project a command acts on: ``requested`` (must be registered: a typo is an
        error suggesting the closest names, never a silent new project — except, with
        ``first_may_be_new``, the tenant's very first project); else the project whose
        root contains ``cwd`` (default: the current directory); else the tenant's only
        project. Raises ``ProjectNotFound`` / ``AmbiguousProject`` listing choices."""
        names = [p.project_id for p in self.project_infos(tenant_id)]
        if requested is not None:
            if requested in names or (first_may_be_new and not names):
                return requested
            close = difflib.get_close_matches(requested, names, n=3)
            raise ProjectNotFound(
                f"no project {requested!r} in this ledger (tenant {tenant_id!r})"
                + (f"; did you mean {', '.join(close)}?" if close else "")
                + (f" Projects: {', '.join(names)}." if names else "")
                + f" To start it: `ledger projects add {requested}`")
        here = self.project_for_path(tenant_id, cwd if cwd is not None else Path.cwd())
        if here is not None:
            return here.project_id
        if len(names) == 1:
            return names[0]
        if not names:
            raise ProjectNotFound(
                f"no projects for tenant {tenant_id!r} in {self.path}: record some first "
                "(`ledger import git REPO`, `ledger agent install AGENT`, or the nervous_system SDK)")
        raise AmbiguousProject(
            f"tenant {tenant_id!r} has several projects ({', '.join(names)}) and the current directory "
            "is in none of their work trees: pass --project")

    def rename_project(self, tenant_id: str, old: str, new: str) -> int:
        """Rename a project: its events (their stored bodies carry the project id), its
        path-state projection and its registration, in one transaction. Only while none
        of its events has reached the hub (the hub keeps them under the old name). Returns
        the number of events rewritten. Raises ``ProjectNotFound`` and ``StoreError``."""
        from schemas import event_from_bytes

        if self.project_info(tenant_id, old) is None:
            raise ProjectNotFound(f"no project {old!r} of tenant {tenant_id!r} in {self.path}")
        if self.project_info(tenant_id, new) is not None:
            raise StoreError(f"project {new!r} already exists: choose another name")
        with self.write_transaction() as conn:
            synced = conn.execute("SELECT count(*) FROM events WHERE tenant_id = ? AND project_id = ? "
                                  "AND hub_versionstamp IS NOT NULL", (tenant_id, old)).fetchone()[0]
            if synced:
                raise StoreError(
                    f"{synced} event(s) of project {old!r} are already on the hub under that name; a "
                    "project can be renamed only before its first sync")
            rows = conn.execute("SELECT seq, body FROM events WHERE tenant_id = ? AND project_id = ?",
                                (tenant_id, old)).fetchall()
            for seq, body in rows:
                event = event_from_bytes(bytes(body)).model_copy(update={"project_id": new})
                data = event.to_bytes()
                conn.execute("UPDATE events SET project_id = ?, body = ?, body_bytes = ?, body_sha256 = ? "
                             "WHERE seq = ?", (new, data, len(data), chain.digest(data), seq))
            if rows:  # the owner rewrote history: re-link it and re-sign (ledger.chain)
                first = min(seq for seq, _ in rows)
                chain.rechain(conn, self.ledger_id, first - 1)
                conn.execute("DELETE FROM chain_checkpoints WHERE seq >= ?", (first,))
                self._write_checkpoint(conn)
            conn.execute("UPDATE path_state SET project_id = ? WHERE tenant_id = ? AND project_id = ?",
                         (new, tenant_id, old))
            conn.execute("UPDATE projects SET project_id = ? WHERE tenant_id = ? AND project_id = ?",
                         (new, tenant_id, old))
        return len(rows)

    def remove_project(self, tenant_id: str, project_id: str) -> int:
        """Delete a project from this ledger: its events, path-state projection and
        registration (contents stay in the blob store: other projects may share them; the
        hub keeps what was synced). Returns the number of events deleted. Raises
        ``ProjectNotFound``."""
        if self.project_info(tenant_id, project_id) is None:
            raise ProjectNotFound(f"no project {project_id!r} of tenant {tenant_id!r} in {self.path}")
        with self.write_transaction() as conn:
            chain.remember_removed(conn, "tenant_id = ? AND project_id = ?", (tenant_id, project_id),
                                   reason=f"projects rm {project_id}", removed_ns=time.time_ns())
            deleted = conn.execute("DELETE FROM events WHERE tenant_id = ? AND project_id = ?",
                                   (tenant_id, project_id)).rowcount
            conn.execute("DELETE FROM path_state WHERE tenant_id = ? AND project_id = ?", (tenant_id, project_id))
            conn.execute("DELETE FROM projects WHERE tenant_id = ? AND project_id = ?", (tenant_id, project_id))
        return deleted
