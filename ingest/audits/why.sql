-- Why did this path change? Every change of {path} (as target or rename source), oldest
-- first, with the decision behind it (the change's caused_by): who decided, when, why,
-- with what confidence and which alternatives were rejected. Changes with no recorded
-- decision show empty decision columns.
--
-- Parameters:
--   {tenant:String}    tenant id
--   {project:String}   project id, or '' for every project of the tenant
--   {path:String}      project-relative path, e.g. 'src/app.py'
WITH changes AS
(
    SELECT project_id, event_id, time, operation, target_path, previous_path, agent_id,
           agent_role, lines_added, lines_removed, commit_hash, caused_by
    FROM swarm_events
    WHERE tenant_id = {tenant:String}
      AND ({project:String} = '' OR project_id = {project:String})
      AND event_type = 'state_change'
      AND (target_path = {path:String} OR previous_path = {path:String})
    LIMIT 1 BY event_id
),
decisions AS
(
    SELECT event_id, time, agent_id, agent_role, confidence, rationale, rejected_alternatives,
           input_trigger
    FROM swarm_events
    WHERE tenant_id = {tenant:String}
      AND event_type = 'decision'
      AND event_id IN (SELECT caused_by FROM changes WHERE caused_by != '')
    LIMIT 1 BY event_id
)
SELECT c.time AS changed_at, c.event_id AS change_id, c.project_id AS project_id,
       c.operation AS operation, c.target_path AS path, c.previous_path AS previous_path,
       c.agent_id AS agent_id, c.lines_added AS lines_added, c.lines_removed AS lines_removed,
       c.commit_hash AS commit_hash, c.caused_by AS decision_id,
       if(d.event_id = '', NULL, d.time) AS decided_at, d.agent_id AS decided_by,
       d.agent_role AS decider_role, if(d.event_id = '', NULL, round(d.confidence, 3)) AS confidence, d.rationale AS rationale,
       d.rejected_alternatives AS rejected_alternatives, d.input_trigger AS input_trigger
FROM changes AS c
LEFT JOIN decisions AS d ON d.event_id = c.caused_by
ORDER BY changed_at, change_id
