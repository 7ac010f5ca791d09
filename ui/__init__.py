"""``ledger ui``: mission control, a local web app over the ledger (and the hub).

Views: a timeline of sessions and agents, a scrubber over the project's files in time,
decision cards with the changes they caused and the session's trace, a file's history
and blame, and the audit reports. Served by Starlette + uvicorn on loopback, guarded by
a token (``ui.security``); the front end is plain ES modules and SVG in ``ui/static``,
shipped in the package (no CDN, no network). See docs/ui.md.

    from ui.server import UIServer
    with UIServer(LocalHistory(ledger, "default", "web")) as server:
        print(server.url)
"""
