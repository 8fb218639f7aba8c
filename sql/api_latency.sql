-- api_latency: model API latency by agent kind and model: p50/p95/p99 and time to first token
-- Parameters:
--   {database:Identifier}  the receiver's database (CLI --database; default otel)
--   {since:DateTime64(9)}  window start, inclusive (CLI --since; default 7d)
--   {until:DateTime64(9)}  window end, exclusive (CLI --until; default now)
-- Columns: agent (claude | codex), model, requests (successful requests measured), p50_ms,
--   p95_ms, p99_ms, avg_ms, ttft_samples, ttft_p50_ms, ttft_p95_ms (percentiles interpolated
--   between the exact values, as quantileExactInclusive does).
-- Source: log events, one per request. Claude Code: claude_code.api_request (duration_ms,
--   ttft_ms), i.e. successful requests (failed ones are claude_code.api_error, see
--   `api_errors`). Codex: codex.api_request with a 2xx status and no error (duration_ms);
--   its time to first token is per turn, from codex.turn_ttft (duration_ms).
-- Table: agent, model, requests, p50_ms, p95_ms, p99_ms, avg_ms, ttft_p50_ms, ttft_p95_ms
SELECT agent, model,
       count(duration_ms) AS requests,
       round(quantileExactInclusive(0.5)(duration_ms), 1) AS p50_ms,
       round(quantileExactInclusive(0.95)(duration_ms), 1) AS p95_ms,
       round(quantileExactInclusive(0.99)(duration_ms), 1) AS p99_ms,
       round(avg(duration_ms), 1) AS avg_ms,
       count(ttft_ms) AS ttft_samples,
       round(quantileExactInclusive(0.5)(ttft_ms), 1) AS ttft_p50_ms,
       round(quantileExactInclusive(0.95)(ttft_ms), 1) AS ttft_p95_ms
FROM (
    SELECT if(startsWith(EventName, 'claude_code.'), 'claude', 'codex') AS agent,
           LogAttributes['model'] AS model,
           if(EventName = 'codex.turn_ttft', NULL,
              toFloat64OrNull(LogAttributes['duration_ms'])) AS duration_ms,
           multiIf(EventName = 'codex.turn_ttft', toFloat64OrNull(LogAttributes['duration_ms']),
                   EventName = 'claude_code.api_request', toFloat64OrNull(LogAttributes['ttft_ms']),
                   NULL) AS ttft_ms
    FROM {database:Identifier}.otel_logs
    WHERE Timestamp >= {since:DateTime64(9)} AND Timestamp < {until:DateTime64(9)}
      AND (EventName IN ('claude_code.api_request', 'codex.turn_ttft')
           OR (EventName = 'codex.api_request'
               AND LogAttributes['error.message'] = ''
               AND toUInt16OrZero(LogAttributes['http.response.status_code']) BETWEEN 200 AND 299))
)
GROUP BY agent, model
ORDER BY agent, requests DESC, model
