-- active_users: daily, weekly and monthly active Claude Code users (DAU/WAU/MAU) per day
-- Parameters:
--   {database:Identifier}  the receiver's database (CLI --database; default otel)
--   {since:DateTime64(9)}  window start, inclusive (CLI --since; default 30d)
--   {until:DateTime64(9)}  window end, exclusive (CLI --until; default now)
-- Columns: day, dau (users active that day), wau (in the 7 days ending that day), mau (in the
--   30 days ending that day), sessions (Claude sessions active that day). WAU and MAU look
--   back before the window start; days after now are not listed.
-- Source: any Claude Code metric point or log event (user.id and session.id are on every one
--   of them): a user is active on a day when Claude Code sent telemetry for them that day.
--   Codex telemetry names no user, so codex runs count under no one here.
-- Table: day, dau, wau, mau, sessions
WITH
    activity AS (
        SELECT toDate(TimeUnix, 'UTC') AS day, Attributes['user.id'] AS user,
               Attributes['session.id'] AS session
        FROM {database:Identifier}.otel_metrics_sum
        WHERE startsWith(MetricName, 'claude_code.') AND Attributes['user.id'] != ''
          AND TimeUnix >= toDateTime64(toDate({since:DateTime64(9)}, 'UTC'), 9, 'UTC') - INTERVAL 29 DAY
          AND TimeUnix < {until:DateTime64(9)}
        UNION ALL
        SELECT toDate(Timestamp, 'UTC'), LogAttributes['user.id'], LogAttributes['session.id']
        FROM {database:Identifier}.otel_logs
        WHERE startsWith(EventName, 'claude_code.') AND LogAttributes['user.id'] != ''
          AND Timestamp >= toDateTime64(toDate({since:DateTime64(9)}, 'UTC'), 9, 'UTC') - INTERVAL 29 DAY
          AND Timestamp < {until:DateTime64(9)}
    ),
    user_days AS (
        SELECT day, user, groupUniqArray(session) AS sessions FROM activity GROUP BY day, user
    ),
    days AS (
        SELECT arrayJoin(arrayMap(i -> toDate({since:DateTime64(9)}, 'UTC') + i,
                                  range(toUInt32(greatest(0, dateDiff('day',
                                      toDate({since:DateTime64(9)}, 'UTC'),
                                      toDate(least({until:DateTime64(9)} - INTERVAL 1 NANOSECOND,
                                                   now64(9)), 'UTC')) + 1))))) AS day
    ),
    counts AS (
        SELECT d.day AS day,
               uniqExactIf(u.user, u.day = d.day) AS dau,
               uniqExactIf(u.user, u.day > d.day - 7) AS wau,
               uniqExact(u.user) AS mau,
               length(arrayDistinct(arrayFlatten(groupArrayIf(u.sessions, u.day = d.day))))
                   AS sessions
        FROM days AS d
        CROSS JOIN user_days AS u
        WHERE u.day > d.day - 30 AND u.day <= d.day
        GROUP BY d.day
    )
SELECT d.day AS day, c.dau AS dau, c.wau AS wau, c.mau AS mau, c.sessions AS sessions
FROM days AS d
LEFT JOIN counts AS c ON c.day = d.day
ORDER BY d.day
