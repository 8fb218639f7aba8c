-- waiting: sessions waiting for a person now (a permission or idle prompt), and since when
--   A session waits from a Notification hook whose notification_type is permission_prompt or
--   idle_prompt until its next PostToolUse, PostToolUseFailure, UserPromptSubmit, Stop or
--   SessionEnd hook. Only hooks say this (otel-receiver hooks install, cc-launch --hooks, or
--   agent-hook for command hooks); sessions without hooks never show here.
-- Parameters:
--   {database:Identifier}  the receiver's database (CLI --database; default otel)
--   {since:DateTime64(9)}  consider hook events from then on (CLI --since; default 1d)
--   {until:DateTime64(9)}  "now" of the report: hooks before it count (CLI --until; default now)
-- Columns: session (session.id), agent (claude | codex), waiting_since (the first notification
--   of the wait), waiting_s (from then to the report's now), reason (permission_prompt |
--   idle_prompt, of the latest notification), message (its text), tool (for a permission
--   prompt: the tool the session's latest PreToolUse or PermissionRequest named), cwd,
--   notifications (in this wait).
-- Table: session, agent, waiting_since, waiting_s, reason, tool, message
WITH
    hooks AS (
        SELECT LogAttributes['session.id'] AS session, Timestamp AS ts, LogAttributes AS a,
               if(startsWith(EventName, 'codex.'), 'codex', 'claude') AS agent,
               a['hook_event_name'] AS event,
               event = 'Notification'
                   AND a['notification_type'] IN ('permission_prompt', 'idle_prompt') AS opens,
               event IN ('PostToolUse', 'PostToolUseFailure', 'UserPromptSubmit', 'Stop',
                         'SessionEnd') AS closes
        FROM {database:Identifier}.otel_logs
        WHERE Timestamp >= {since:DateTime64(9)} AND Timestamp < {until:DateTime64(9)}
          AND (startsWith(EventName, 'claude_code.hook.') OR startsWith(EventName, 'codex.hook.'))
          AND LogAttributes['session.id'] != ''
    ),
    last_close AS (
        SELECT session, maxIf(ts, closes) AS closed_at, countIf(closes) > 0 AS ever_closed,
               argMaxIf(a['tool_name'], ts, event IN ('PreToolUse', 'PermissionRequest'))
                   AS asked_tool
        FROM hooks
        GROUP BY session
    )
SELECT h.session AS session, any(h.agent) AS agent, min(h.ts) AS waiting_since,
       round((toUnixTimestamp64Nano({until:DateTime64(9)}) - toUnixTimestamp64Nano(min(h.ts)))
             / 1e9, 3) AS waiting_s,
       argMax(h.a['notification_type'], h.ts) AS reason,
       argMax(h.a['message'], h.ts) AS message,
       if(reason = 'permission_prompt', any(c.asked_tool), '') AS tool,
       argMax(h.a['cwd'], h.ts) AS cwd,
       count() AS notifications
FROM hooks AS h
LEFT JOIN last_close AS c ON c.session = h.session
WHERE h.opens AND (NOT c.ever_closed OR h.ts > c.closed_at)
GROUP BY h.session
ORDER BY waiting_since
