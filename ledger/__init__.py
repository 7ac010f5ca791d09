"""The local ledger: SQLite event log, content-addressed blobs, migrations, queries.

Public API::

    from ledger import Ledger, open_ledger, load_settings
    with open_ledger() as lg:
        lg.append(event, blobs={sha: data})
        for stored in lg.events(project_id="web", kind="decision"):
            print(stored.event.decision.rationale)

Names are loaded on first use (``schemas.lazy``): ``import ledger`` is cheap.
"""

from ledger.errors import __all__ as _errors
from schemas.lazy import lazy_exports

_EXPORTS = {
    "Ledger": "ledger.store",
    "open_ledger": "ledger.store",
    "Settings": "ledger.config",
    "load_settings": "ledger.config",
    "sha256_hex": "ledger.blobs",
    **dict.fromkeys(["Appended", "ChangeRow", "PathState", "ProjectSummary", "StoredEvent"], "ledger.records"),
    "ProjectInfo": "ledger.registry",
    **dict.fromkeys(_errors, "ledger.errors"),
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)
