"""The local ledger: SQLite event log, content-addressed blobs, migrations, queries.

Public API::

    from ledger import Ledger, open_ledger, load_settings
    with open_ledger() as lg:
        lg.append(event, blobs={sha: data})
        for stored in lg.events(project_id="web", kind="decision"):
            print(stored.event.decision.rationale)
"""

from ledger.blobs import sha256_hex
from ledger.config import Settings, load_settings
from ledger.errors import *  # noqa: F401,F403 - the error hierarchy is public
from ledger.errors import __all__ as _errors
from ledger.records import Appended, ChangeRow, PathState, ProjectSummary, StoredEvent
from ledger.store import Ledger, open_ledger

__all__ = [
    "Ledger",
    "open_ledger",
    "Settings",
    "load_settings",
    "sha256_hex",
    "Appended",
    "ChangeRow",
    "PathState",
    "ProjectSummary",
    "StoredEvent",
    *_errors,
]
