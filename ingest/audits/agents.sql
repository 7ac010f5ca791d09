-- Activity per agent and role: events by kind, lines changed, files touched, sessions,
-- average decision confidence, first and last activity. Busiest agents first.
--
-- Parameters:
--   {tenant:String}             tenant id
--   {project:String}            project id, or '' for every project of the tenant
--   {since:DateTime64(9)}       inclusive lower bound on event time (UTC)
--   {until:DateTime64(9)}       inclusive upper bound on event time (UTC)
SELECT
    agent_id,
    agent_role,
    uniqExact(event_id)                                      AS events,
    uniqExactIf(event_id, event_type = 'decision')           AS decisions,
    uniqExactIf(event_id, event_type = 'state_change')       AS changes,
    uniqExactIf(event_id, event_type = 'message')            AS messages,
    uniqExactIf(event_id, event_type = 'signal')             AS signals,
    uniqExactIf(event_id, event_type = 'span')               AS spans,
    sumIf(lines_added, event_type = 'state_change')          AS lines_added,
    sumIf(lines_removed, event_type = 'state_change')        AS lines_removed,
    uniqExactIf(target_path, event_type = 'state_change')    AS files,
    uniqExact(session_id)                                    AS sessions,
    round(avgIf(confidence, event_type = 'decision' AND confidence > 0), 3) AS avg_confidence,
    min(time)                                                AS first_event,
    max(time)                                                AS last_event
FROM
(
    SELECT * FROM swarm_events
    WHERE tenant_id = {tenant:String}
      AND ({project:String} = '' OR project_id = {project:String})
      AND time >= {since:DateTime64(9)} AND time <= {until:DateTime64(9)}
    LIMIT 1 BY event_id
)
GROUP BY agent_id, agent_role
ORDER BY events DESC, agent_id, agent_role
