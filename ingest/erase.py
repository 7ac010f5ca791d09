"""Deleting the analytics rows of an erased session or agent (docs/trust.md, "Erasure").

Deleted rows must also leave the disk: ClickHouse keeps the parts a mutation or merge
replaced ("outdated") for ``old_parts_lifetime`` (8 minutes by default) before removing
their directories, and its cleanup task may sleep for half a minute. So the table's
cleanup settings are lowered for the deletion (and reset after), the table is detached
and attached again (its background task restarts with them and removes the outdated
parts within about a second: measured 2 s for the whole erase on chdb, against 30-40 s
without the restart) and the call waits until no outdated part is left.
"""

from __future__ import annotations

import time

#: Seconds to wait for ClickHouse to remove the parts the deletion replaced.
CLEANUP_TIMEOUT_S = 90.0
_CLEANUP = {"old_parts_lifetime": 0, "cleanup_delay_period": 1, "max_cleanup_delay_period": 1,
            "cleanup_delay_period_random_add": 0}
_OUTDATED = ("SELECT count() FROM system.parts WHERE database = 'analytics' AND table = 'swarm_events' "
             "AND NOT active")


def delete_rows(url: str, *, tenant_id: str, session_id: str | None = None, agent_id: str | None = None) -> int:
    """Delete the ``swarm_events`` rows of ``session_id`` or ``agent_id`` (of
    ``tenant_id``) at ``url``, rewrite the table's parts without them (a synchronous
    mutation, then ``OPTIMIZE ... FINAL``) and wait until the replaced parts are removed
    from disk. Returns the rows deleted. Raises ``AnalyticsError`` subclasses
    (``AnalyticsUnavailable``; ``AnalyticsBusy`` when the replaced parts are still on
    disk after ``CLEANUP_TIMEOUT_S``: run the erase again to finish)."""
    from ingest.client import connected
    from ingest.errors import AnalyticsBusy

    column, value = ("session_id", session_id) if session_id else ("agent_id", agent_id)
    if not value:
        raise ValueError("name what to delete: a session or an agent")
    params = {"tenant": tenant_id, "value": value}
    where = f"tenant_id = {{tenant:String}} AND {column} = {{value:String}}"
    with connected(url) as ch:
        count = ch.query(f"SELECT count() FROM analytics.swarm_events WHERE {where}", params).result_rows[0][0]
        if not count and not ch.query(_OUTDATED).result_rows[0][0]:
            return 0
        settings = ", ".join(f"{k} = {v}" for k, v in _CLEANUP.items())
        ch.command(f"ALTER TABLE analytics.swarm_events MODIFY SETTING {settings}", what="speed up part cleanup")
        try:
            if count:
                ch.command(f"ALTER TABLE analytics.swarm_events DELETE WHERE {where} SETTINGS mutations_sync = 2",
                           params, what="delete erased rows")
                ch.command("OPTIMIZE TABLE analytics.swarm_events FINAL", what="rewrite parts without erased rows")
            ch.command("DETACH TABLE analytics.swarm_events", what="restart part cleanup")
            ch.command("ATTACH TABLE analytics.swarm_events", what="restart part cleanup")
            ch.command("SYSTEM WAIT LOADING PARTS analytics.swarm_events", what="load outdated parts")
            deadline = time.monotonic() + CLEANUP_TIMEOUT_S
            while ch.query(_OUTDATED).result_rows[0][0]:
                if time.monotonic() > deadline:
                    raise AnalyticsBusy("ClickHouse has not yet removed the parts that held the erased rows from "
                                        "disk; run the same `ledger erase` again in a few minutes to finish")
                time.sleep(0.1)
        finally:
            ch.command("ALTER TABLE analytics.swarm_events RESET SETTING " + ", ".join(_CLEANUP),
                       what="restore part cleanup")
    return int(count)
