-- Hot files and loops: paths changed at least {min_changes} times within some window of
-- {window_s} seconds (agents churning on one file), busiest first.
--
-- Parameters:
--   {tenant:String}       tenant id
--   {project:String}      project id, or '' for every project of the tenant
--   {window_s:UInt32}     window length in seconds (a path's changes are counted over the
--                         {window_s} seconds ending at each change; second resolution)
--   {min_changes:UInt32}  report a path when some window holds at least this many changes
--
-- Columns: max_in_window (most changes in one window), window_start/window_end (that
-- busiest window), total_changes, agents (distinct), loop_revisits (changes that produced
-- content the path already had before: A -> B -> A flip-flops), last_change.
-- Counts use uniqExact(event_id) / LIMIT 1 BY event_id, so they stay exact even if a row
-- was ever loaded twice.
WITH changes AS
(
    SELECT project_id, target_path AS path, event_id, time, agent_id, new_state_hash,
           toUInt32(toUnixTimestamp(time)) AS t_s
    FROM swarm_events
    WHERE tenant_id = {tenant:String}
      AND ({project:String} = '' OR project_id = {project:String})
      AND event_type = 'state_change' AND target_path != ''
    LIMIT 1 BY event_id
),
windowed AS
(
    SELECT *,
           count() OVER (PARTITION BY project_id, path ORDER BY t_s
                         RANGE BETWEEN {window_s:UInt32} PRECEDING AND CURRENT ROW) AS in_window,
           count() OVER (PARTITION BY project_id, path, new_state_hash ORDER BY time, event_id
                         ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS hash_seen
    FROM changes
)
SELECT
    project_id,
    path,
    max(in_window)                                         AS max_in_window,
    toDateTime64(argMax(t_s, (in_window, t_s)) - {window_s:UInt32}, 0, 'UTC') AS window_start,
    toDateTime64(argMax(t_s, (in_window, t_s)), 0, 'UTC')  AS window_end,
    count()                                                AS total_changes,
    uniqExact(agent_id)                                    AS agents,
    countIf(hash_seen > 1 AND new_state_hash != '')        AS loop_revisits,
    max(time)                                              AS last_change
FROM windowed
GROUP BY project_id, path
HAVING max_in_window >= {min_changes:UInt32}
ORDER BY max_in_window DESC, total_changes DESC, project_id, path
LIMIT {limit:UInt32}
