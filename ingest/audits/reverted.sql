-- Low-confidence changes later reverted.
--
-- A change C of a path is LOW-CONFIDENCE when the decision it was caused by (caused_by)
-- has confidence below {max_confidence}. A confidence of 0 means "not given" (proto3 has no
-- presence for a double: imported git history and agents that state none record 0), so
-- such decisions are not judged. C is REVERTED by the first later change R
-- (R.time > C.time) of the same path that either
--   * restores the content the path had before C: R.new_state_hash = C.previous_state_hash
--     (C a modify, rename or delete), or
--   * deletes the file C created: C.operation = 'create' and R.operation = 'delete'.
-- Changes in between do not matter: the path went back to its state before C.
--
-- Parameters:
--   {tenant:String}            tenant id
--   {project:String}           project id, or '' for every project of the tenant
--   {max_confidence:Float64}   report changes whose decision's confidence is below this
WITH changes AS
(
    SELECT project_id, target_path AS path, event_id, time, agent_id, operation, caused_by,
           previous_state_hash, new_state_hash,
           if(operation = 'create', 'deleted', concat('hash:', previous_state_hash)) AS undo_key,
           if(operation = 'delete', 'deleted', concat('hash:', new_state_hash)) AS result_key
    FROM swarm_events
    WHERE tenant_id = {tenant:String}
      AND ({project:String} = '' OR project_id = {project:String})
      AND event_type = 'state_change' AND target_type = 'file'
    LIMIT 1 BY event_id
),
decisions AS
(
    SELECT event_id, confidence, rationale, agent_id
    FROM swarm_events
    WHERE tenant_id = {tenant:String}
      AND ({project:String} = '' OR project_id = {project:String})
      AND event_type = 'decision' AND confidence > 0 AND confidence < {max_confidence:Float64}
    LIMIT 1 BY event_id
),
suspects AS
(
    SELECT c.*, d.confidence AS confidence, d.rationale AS rationale
    FROM changes AS c
    INNER JOIN decisions AS d ON d.event_id = c.caused_by
    WHERE NOT (c.operation != 'create' AND c.previous_state_hash = '')
)
SELECT s.project_id AS project_id, s.path AS path, s.time AS changed_at, s.event_id AS change_id,
       s.operation AS operation, s.agent_id AS agent_id, round(s.confidence, 3) AS confidence,
       s.rationale AS rationale, r.time AS reverted_at, r.event_id AS reverted_by,
       r.agent_id AS reverted_by_agent,
       if(s.operation = 'create', 'deleted the created file', 'restored the previous content') AS how
FROM suspects AS s
ASOF INNER JOIN changes AS r
    ON r.project_id = s.project_id AND r.path = s.path AND r.result_key = s.undo_key AND r.time > s.time
ORDER BY changed_at, change_id
