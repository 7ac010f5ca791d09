-- Decisions before a moment: what the agents had decided up to {before}, newest first,
-- with how many changes each decision caused (changes whose caused_by is the decision).
--
-- Parameters:
--   {tenant:String}            tenant id
--   {project:String}           project id, or '' for every project of the tenant
--   {before:DateTime64(9)}     inclusive upper bound on the decision time (UTC)
--   {limit:UInt32}             most rows to return
WITH decisions AS
(
    SELECT event_id, project_id, time, agent_id, agent_role, session_id, confidence, rationale,
           input_trigger, rejected_alternatives, commit_hash
    FROM swarm_events
    WHERE tenant_id = {tenant:String}
      AND ({project:String} = '' OR project_id = {project:String})
      AND event_type = 'decision'
      AND time <= {before:DateTime64(9)}
    ORDER BY time DESC, event_id DESC
    LIMIT 1 BY event_id
    LIMIT {limit:UInt32}
),
caused AS
(
    SELECT caused_by, uniqExact(event_id) AS changes, groupUniqArray(10)(target_path) AS paths
    FROM swarm_events
    WHERE tenant_id = {tenant:String}
      AND event_type = 'state_change'
      AND caused_by IN (SELECT event_id FROM decisions)
    GROUP BY caused_by
)
SELECT d.time AS time, d.event_id AS decision_id, d.project_id AS project_id, d.agent_id AS agent_id,
       d.agent_role AS agent_role, round(d.confidence, 3) AS confidence, d.rationale AS rationale,
       d.rejected_alternatives AS rejected_alternatives, d.input_trigger AS input_trigger,
       coalesce(c.changes, 0) AS changes, c.paths AS paths
FROM decisions AS d
LEFT JOIN caused AS c ON c.caused_by = d.event_id
ORDER BY d.time DESC, d.event_id DESC
