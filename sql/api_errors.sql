-- api_errors: failed model API requests by agent kind, model and status code, latest message
-- Parameters:
--   {database:Identifier}  the receiver's database (CLI --database; default otel)
--   {since:DateTime64(9)}  window start, inclusive (CLI --since; default 7d)
--   {until:DateTime64(9)}  window end, exclusive (CLI --until; default now)
-- Columns: agent (claude | codex), model, status_code ('' when the request got no HTTP
--   status), errors, runs (distinct sessions / codex runs), first_seen, last_seen,
--   latest_error.
-- Source: log events. Claude Code: claude_code.api_error (model, status_code, error), one per
--   failed attempt. Codex: codex.api_request whose http.response.status_code is not 2xx or
--   that carries error.message. The same events count api_errors in `sessions` and
--   `codex_runs`.
-- Table: agent, model, status_code, errors, runs, last_seen, latest_error
SELECT agent, model, status_code,
       count() AS errors,
       uniqExact(run_id) AS runs,
       min(Timestamp) AS first_seen,
       max(Timestamp) AS last_seen,
       argMax(message, Timestamp) AS latest_error
FROM (
    SELECT if(EventName = 'claude_code.api_error', 'claude', 'codex') AS agent,
           LogAttributes['model'] AS model,
           if(agent = 'claude', LogAttributes['status_code'],
              LogAttributes['http.response.status_code']) AS status_code,
           if(agent = 'claude', LogAttributes['error'], LogAttributes['error.message']) AS message,
           multiIf(agent = 'claude', LogAttributes['session.id'],
                   ResourceAttributes['agent.run.id'] != '', ResourceAttributes['agent.run.id'],
                   LogAttributes['conversation.id']) AS run_id,
           Timestamp
    FROM {database:Identifier}.otel_logs
    WHERE Timestamp >= {since:DateTime64(9)} AND Timestamp < {until:DateTime64(9)}
      AND (EventName = 'claude_code.api_error'
           OR (EventName = 'codex.api_request'
               AND (LogAttributes['error.message'] != ''
                    OR NOT toUInt16OrZero(LogAttributes['http.response.status_code'])
                           BETWEEN 200 AND 299)))
)
GROUP BY agent, model, status_code
ORDER BY errors DESC, last_seen DESC, agent, model, status_code
