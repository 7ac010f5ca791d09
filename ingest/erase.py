"""Deleting the analytics rows of an erased session or agent (docs/trust.md, "Erasure")."""

from __future__ import annotations


def delete_rows(url: str, *, tenant_id: str, session_id: str | None = None, agent_id: str | None = None) -> int:
    """Delete the ``swarm_events`` rows of ``session_id`` or ``agent_id`` (of
    ``tenant_id``) at ``url`` and rewrite the table's parts without them (a synchronous
    mutation, then ``OPTIMIZE ... FINAL``). Returns the rows deleted. Raises
    ``AnalyticsError`` subclasses (``AnalyticsUnavailable``, ``AnalyticsBusy``)."""
    from ingest.client import connected

    column, value = ("session_id", session_id) if session_id else ("agent_id", agent_id)
    if not value:
        raise ValueError("name what to delete: a session or an agent")
    params = {"tenant": tenant_id, "value": value}
    where = f"tenant_id = {{tenant:String}} AND {column} = {{value:String}}"
    with connected(url) as ch:
        count = ch.query(f"SELECT count() FROM analytics.swarm_events WHERE {where}", params).result_rows[0][0]
        if count:
            ch.command(f"ALTER TABLE analytics.swarm_events DELETE WHERE {where} SETTINGS mutations_sync = 2",
                       params, what="delete erased rows")
            ch.command("OPTIMIZE TABLE analytics.swarm_events FINAL", what="rewrite parts without erased rows")
    return int(count)
