-- agent_spans sorted by RunId as well (a projection: ClickHouse keeps a second copy of these
-- four columns per part, ordered by RunId, and reads it when a query filters on RunId).
-- The table is ordered by SpanId, so without it the run resolver's "spans of these runs"
-- (receiver/processors/stitch.py, every second) and the tree's "spans of this run" read the
-- whole table: at 3 M rows about 0.6 s of ClickHouse CPU per resolver tick, against 0.12 s
-- with it (docs/BENCHMARKS.md, round 3, "ClickHouse cost"). Parts written before the
-- projection existed get it when they are merged (or with
-- ALTER TABLE agent_spans MATERIALIZE PROJECTION by_run); until then they are read whole.
-- Placeholders (string.Template): database; cluster = '' or 'ON CLUSTER <name>'.
-- tuning: projection by_run (a failure, e.g. a user without ALTER ADD PROJECTION, is logged
-- and does not stop the receiver)
ALTER TABLE "${database}"."agent_spans" ${cluster}
    ADD PROJECTION IF NOT EXISTS by_run (SELECT RunId, SpanId, ParentSpanId, Timestamp ORDER BY RunId);
