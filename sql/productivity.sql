-- productivity: lines added/removed, commits, PRs, code edit decisions and cost per user and day
-- Parameters:
--   {database:Identifier}  the receiver's database (CLI --database; default otel)
--   {since:DateTime64(9)}  window start, inclusive (CLI --since; default 7d)
--   {until:DateTime64(9)}  window end, exclusive (CLI --until; default now)
-- Columns: day, user (user.id), user_email (user.email; hashed by the receiver's default
--   redaction, still one value per person), sessions, lines_added, lines_removed, commits,
--   pull_requests, edits_accepted, edits_rejected (code_edit_tool.decision), cost_usd.
-- Source: Claude Code metrics only (codex exports none of these): claude_code.lines_of_code.count
--   (type = added / removed), claude_code.commit.count, claude_code.pull_request.count,
--   claude_code.code_edit_tool.decision (decision = accept / reject) and, for cost, the same
--   claude_code.cost.usage as `sessions` and `tokens_by_model`. DELTA points are summed;
--   CUMULATIVE points count what each added since the previous point of the same series
--   (metric, resource, attributes, StartTimeUnix), a new StartTimeUnix being a reset; a point
--   counts on the day of its TimeUnix.
-- Table: day, user, sessions, lines_added, lines_removed, commits, pull_requests, edits_accepted, edits_rejected, cost_usd
WITH
    points AS (
        -- metric increments, one row per point: the view metric_increments
        -- (schema/0015_metric_increments.sql) holds the cumulative-to-delta rule
        SELECT MetricName, Attributes, TimeUnix, Delta
        FROM {database:Identifier}.metric_increments
        WHERE MetricName IN ('claude_code.lines_of_code.count', 'claude_code.commit.count',
                           'claude_code.pull_request.count',
                           'claude_code.code_edit_tool.decision', 'claude_code.cost.usage')
          AND TimeUnix >= {since:DateTime64(9)} AND TimeUnix < {until:DateTime64(9)}
    )
SELECT toDate(TimeUnix, 'UTC') AS day,
       Attributes['user.id'] AS user,
       anyIf(Attributes['user.email'], Attributes['user.email'] != '') AS user_email,
       uniqExactIf(Attributes['session.id'], Attributes['session.id'] != '') AS sessions,
       toUInt64(round(sumIf(Delta, MetricName = 'claude_code.lines_of_code.count'
                                   AND Attributes['type'] = 'added'))) AS lines_added,
       toUInt64(round(sumIf(Delta, MetricName = 'claude_code.lines_of_code.count'
                                   AND Attributes['type'] = 'removed'))) AS lines_removed,
       toUInt64(round(sumIf(Delta, MetricName = 'claude_code.commit.count'))) AS commits,
       toUInt64(round(sumIf(Delta, MetricName = 'claude_code.pull_request.count')))
           AS pull_requests,
       toUInt64(round(sumIf(Delta, MetricName = 'claude_code.code_edit_tool.decision'
                                   AND Attributes['decision'] = 'accept'))) AS edits_accepted,
       toUInt64(round(sumIf(Delta, MetricName = 'claude_code.code_edit_tool.decision'
                                   AND Attributes['decision'] = 'reject'))) AS edits_rejected,
       round(sumIf(Delta, MetricName = 'claude_code.cost.usage'), 6) AS cost_usd
FROM points
GROUP BY day, user
ORDER BY day, lines_added + lines_removed DESC, cost_usd DESC, user
