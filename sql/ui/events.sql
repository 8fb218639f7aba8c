-- events: agent log events (prompts, API requests and errors, tool results, hooks) in time order
--   The web UI's timeline of a session (its runs) and its live tail (every run, recent window).
-- Parameters:
--   {database:Identifier}  the receiver's database (default otel)
--   {since:DateTime64(9)}  window start, inclusive (default 1h)
--   {until:DateTime64(9)}  window end, exclusive (default now)
--   {runs:Array(String)}   only these Claude session ids / codex run ids; all when empty (default: [])
--   {limit:UInt32}         at most this many events, the newest (default 1000)
-- Columns: ts, agent (claude | codex), run_id (Claude session.id; codex: the shim's
--   agent.run.id, else the thread id conversation.id), event (EventName), trace_id, span_id,
--   severity, body, attributes (LogAttributes), event_key (a hash of the row, to tell rows
--   apart across polls).
-- Source: otel_logs rows whose EventName starts with claude_code. (hooks included:
--   claude_code.hook.<Event>) or codex.; of codex's per-chunk codex.sse_event only the
--   response.completed ones (they carry the tokens).
-- Table: ts, agent, run_id, event, body
SELECT ts, agent, run_id, event, trace_id, span_id, severity, body, attributes, event_key
FROM (
    SELECT Timestamp AS ts,
           if(startsWith(EventName, 'claude_code.'), 'claude', 'codex') AS agent,
           if(agent = 'claude', LogAttributes['session.id'],
              if(ResourceAttributes['agent.run.id'] != '', ResourceAttributes['agent.run.id'],
                 LogAttributes['conversation.id'])) AS run_id,
           EventName AS event, TraceId AS trace_id, SpanId AS span_id,
           SeverityText AS severity, Body AS body, LogAttributes AS attributes,
           toString(cityHash64(Timestamp, EventName, TraceId, SpanId, Body, LogAttributes,
                               ResourceAttributes)) AS event_key
    FROM {database:Identifier}.otel_logs
    WHERE Timestamp >= {since:DateTime64(9)} AND Timestamp < {until:DateTime64(9)}
      AND (startsWith(EventName, 'claude_code.') OR startsWith(EventName, 'codex.'))
      AND (EventName != 'codex.sse_event' OR LogAttributes['event.kind'] = 'response.completed')
)
WHERE empty({runs:Array(String)}) OR has({runs:Array(String)}, run_id)
ORDER BY ts DESC
LIMIT {limit:UInt32}
