"""Choosing the project a command acts on (shared by the local ledger and the hub)."""

from __future__ import annotations

from typing import Sequence

from ledger.errors import AmbiguousProject, ProjectNotFound


def pick_project(names: Sequence[str], requested: str | None, *, tenant_id: str, where: str,
                 empty_hint: str) -> str:
    """The project to use: ``requested`` if ``names`` has it, else the only one.

    ``names``: the tenant's projects in ``where`` (e.g. "ledger.db", "the hub");
    ``empty_hint``: what to do when there are none. Raises ``ProjectNotFound`` or
    ``AmbiguousProject``, listing the choices.
    """
    if requested is not None:
        if requested not in names:
            raise ProjectNotFound(
                f"no events for project {requested!r} of tenant {tenant_id!r} in {where}"
                + (f"; projects there: {', '.join(names)}" if names else "")
            )
        return requested
    if len(names) == 1:
        return names[0]
    if not names:
        raise ProjectNotFound(f"no events for tenant {tenant_id!r} in {where}: {empty_hint}")
    raise AmbiguousProject(
        f"tenant {tenant_id!r} has several projects in {where} ({', '.join(names)}): pass --project"
    )
